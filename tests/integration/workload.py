"""A billing workload written with plain SQL, and the oracle of what each invoice's payments add up to."""

from __future__ import annotations

import random
import threading
import time
from decimal import Decimal

import psycopg

PAID_ORACLE = """
    SELECT i.id,
           coalesce(sum(p.amount) FILTER (WHERE p.kind = 'charge' AND p.status IN ('succeeded', 'refunded')), 0)
         - coalesce(sum(p.amount) FILTER (WHERE p.kind = 'refund' AND p.status = 'succeeded'), 0)
    FROM invoices i LEFT JOIN payments p ON p.invoice_id = i.id
    WHERE i.id LIKE %s GROUP BY i.id"""


class PaymentWriter(threading.Thread):
    """Invoices and a stream of payment inserts, updates and deletes, one small transaction each."""

    def __init__(self, dsn: str, prefix: str, invoices: int = 20, seed: int = 1) -> None:
        super().__init__(daemon=True)
        self.dsn, self.prefix, self.invoices = dsn, prefix, invoices
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.writes = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                conn.execute("INSERT INTO customers (id, name, currency) VALUES ('cus_snap01', 'Workload', 'EUR') "
                             "ON CONFLICT DO NOTHING")
                for i in range(self.invoices):
                    conn.execute("INSERT INTO invoices (id, customer_id, amount_due, currency, status) VALUES "
                                 "(%s, 'cus_snap01', 500.00, 'EUR', 'open') ON CONFLICT DO NOTHING",
                                 (f"in_{self.prefix}{i}",))
                n = 0
                live: list[str] = []
                while not self.stop.is_set():
                    action = self.rng.random()
                    if action < 0.6 or not live:
                        pid = f"py_{self.prefix}{n}"
                        n += 1
                        conn.execute(
                            "INSERT INTO payments (id, invoice_id, customer_id, amount, currency, status, kind) "
                            "VALUES (%s, %s, 'cus_snap01', %s, 'EUR', 'succeeded', %s)",
                            (pid, f"in_{self.prefix}{self.rng.randrange(self.invoices)}",
                             Decimal(self.rng.randint(1, 9999)) / 100, "refund" if action < 0.1 else "charge"))
                        live.append(pid)
                    elif action < 0.8:
                        conn.execute("UPDATE payments SET amount = %s WHERE id = %s",
                                     (Decimal(self.rng.randint(1, 9999)) / 100, self.rng.choice(live)))
                    elif action < 0.9:
                        conn.execute("UPDATE payments SET invoice_id = %s WHERE id = %s",
                                     (f"in_{self.prefix}{self.rng.randrange(self.invoices)}", self.rng.choice(live)))
                    else:
                        conn.execute("DELETE FROM payments WHERE id = %s", (live.pop(self.rng.randrange(len(live))),))
                    self.writes += 1
                    time.sleep(0.005)
        except BaseException as exc:
            self.error = exc


def paid_oracle(dsn: str, prefix: str) -> dict[str, Decimal]:
    with psycopg.connect(dsn) as conn:
        return {row[0]: Decimal(row[1]).quantize(Decimal("0.01"))
                for row in conn.execute(PAID_ORACLE, (f"in_{prefix}%",)).fetchall()}


def touch_invoices(dsn: str, prefix: str) -> None:
    """Re-emit every invoice projection from whatever state the workers hold now."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE invoices SET status = 'draft' WHERE id LIKE %s", (f"in_{prefix}%",))
        conn.execute("UPDATE invoices SET status = 'open' WHERE id LIKE %s", (f"in_{prefix}%",))


def payment_links_oracle(dsn: str, prefix: str) -> dict[str, list[str]]:
    """Payment ids per invoice, straight from the billing database."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT i.id, coalesce(array_agg(p.id ORDER BY p.id) FILTER (WHERE p.id IS NOT NULL), "
                            "'{}') FROM invoices i LEFT JOIN payments p ON p.invoice_id = i.id "
                            "WHERE i.id LIKE %s GROUP BY i.id", (f"in_{prefix}%",)).fetchall()
    return {inv: list(ids) for inv, ids in rows}
