"""A small quote-to-cash traffic loop for the demo: one customer journey across the three sources per tick."""

from __future__ import annotations

import random
import threading
import time
from decimal import Decimal

import psycopg

COUNTRIES = ("DE", "FR", "GB", "US", "NL", "ES")
CURRENCIES = {"DE": "EUR", "FR": "EUR", "NL": "EUR", "ES": "EUR", "GB": "GBP", "US": "USD"}


def journey(conns: dict[str, psycopg.Connection], n: int, rng: random.Random) -> int:
    """Write one account's quote-to-cash across CRM, billing and ERP; return the number of row changes."""
    country = rng.choice(COUNTRIES)
    currency = CURRENCIES[country]
    acc, opp = f"ACC-{n:07d}", f"OPP-{n:07d}"
    cus, sub, inv, pay = f"cus_demo{n}", f"sub_demo{n}", f"in_demo{n}", f"py_demo{n}"
    cno, so, ar = f"C{100000 + n}", f"SO{200000 + n}", f"AR{300000 + n}"
    qty = rng.randint(1, 20)
    unit = Decimal(rng.randint(1000, 50000)) / 100
    total = unit * qty
    name = f"Demo Customer {n}"
    with conns["crm"].transaction():
        conns["crm"].execute(
            "INSERT INTO accounts (id, name, domain, country, status, billing_customer_id, erp_customer_no) "
            "VALUES (%s, %s, %s, %s, 'active', %s, %s)",
            (acc, name, f"demo{n}.example", country, cus, cno),
        )
        conns["crm"].execute(
            "INSERT INTO opportunities (id, account_id, stage, amount, currency, close_date) "
            "VALUES (%s, %s, 'negotiation', %s, %s, CURRENT_DATE)",
            (opp, acc, total, currency),
        )
    conns["crm"].execute("UPDATE opportunities SET stage = 'closed_won' WHERE id = %s", (opp,))
    conns["crm"].commit()
    with conns["billing"].transaction():
        conns["billing"].execute(
            "INSERT INTO customers (id, crm_account_id, name, email, currency) VALUES (%s, %s, %s, %s, %s)",
            (cus, acc, name, f"billing@demo{n}.example", currency),
        )
        conns["billing"].execute(
            "INSERT INTO subscriptions (id, customer_id, crm_opportunity_id, quantity, unit_amount, currency, status) "
            "VALUES (%s, %s, %s, %s, %s, %s, 'active')",
            (sub, cus, opp, qty, unit, currency),
        )
        conns["billing"].execute(
            "INSERT INTO invoices (id, customer_id, subscription_id, erp_order_no, amount_due, currency, status) "
            "VALUES (%s, %s, %s, %s, %s, %s, 'open')",
            (inv, cus, sub, so, total, currency),
        )
    with conns["erp"].transaction():
        conns["erp"].execute(
            "INSERT INTO customers (customer_no, crm_account_id, name, country) VALUES (%s, %s, %s, %s)",
            (cno, acc, name, country),
        )
        conns["erp"].execute(
            "INSERT INTO sales_orders (order_no, customer_no, crm_opportunity_id, billing_subscription_id, "
            "total_amount, currency, status) VALUES (%s, %s, %s, %s, %s, %s, 'pending_fulfillment')",
            (so, cno, opp, sub, total, currency),
        )
        conns["erp"].execute(
            "INSERT INTO ar_postings (id, invoice_ref, order_no, customer_no, amount, currency) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            (ar, inv, so, cno, total, currency),
        )
    with conns["billing"].transaction():
        conns["billing"].execute(
            "INSERT INTO payments (id, invoice_id, customer_id, amount, currency, status) "
            "VALUES (%s, %s, %s, %s, %s, 'succeeded')",
            (pay, inv, cus, total, currency),
        )
        conns["billing"].execute(
            "UPDATE invoices SET amount_paid = %s, status = 'paid' WHERE id = %s", (total, inv)
        )
    return 14


class DemoTraffic(threading.Thread):
    """Runs journeys at a steady rate until stopped; counts row changes written."""

    def __init__(self, dsns: dict[str, str], rate: float, seed: int = 7) -> None:
        super().__init__(name="demo-traffic", daemon=True)
        self.dsns, self.rate, self.rng = dsns, rate, random.Random(seed)
        self.stopped = threading.Event()
        self.changes = 0
        self.error: str | None = None

    def run(self) -> None:
        try:
            conns = {name: psycopg.connect(dsn) for name, dsn in self.dsns.items()}
            with conns["crm"].cursor() as cur:
                cur.execute("SELECT count(*) FROM accounts WHERE id LIKE 'ACC-%%'")
                start = cur.fetchone()[0] + 1
            conns["crm"].commit()
            n = start
            while not self.stopped.is_set():
                began = time.monotonic()
                self.changes += journey(conns, n, self.rng)
                n += 1
                self.stopped.wait(max(0.0, 1.0 / self.rate - (time.monotonic() - began)))
        except Exception as exc:  # the demo view shows it instead of dying silently
            self.error = f"{type(exc).__name__}: {exc}"

    def stop(self) -> None:
        self.stopped.set()
