"""The rules read independently: every alert the rules' specification calls for in the source databases' rows,
in SQL and plain Python, never with trueup's own code. Tests hold the simulator's ground truth and trueup's
alerts against it."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import psycopg
from psycopg.rows import dict_row

TABLES = {"crm": ("accounts", "opportunities"),
          "billing": ("customers", "subscriptions", "invoices", "payments"),
          "erp": ("customers", "sales_orders", "ar_postings")}


def load(dsns: dict[str, str]) -> dict[str, list[dict]]:
    """Every row of the tables the rules read, keyed "<source>.<table>"."""
    db = {}
    for source, tables in TABLES.items():
        with psycopg.connect(dsns[source], row_factory=dict_row) as conn:
            for table in tables:
                db[f"{source}.{table}"] = conn.execute(f"SELECT * FROM {table}").fetchall()
    return db


def norm_domain(domain: str | None) -> str | None:
    if domain is None:
        return None
    domain = domain.strip().lower()
    return domain[4:] if domain.startswith("www.") else domain


def net_paid(payments: list[dict]) -> Decimal:
    charges = sum((p["amount"] for p in payments if p["kind"] == "charge" and p["status"] in ("succeeded", "refunded")),
                  Decimal(0))
    refunds = sum((p["amount"] for p in payments if p["kind"] == "refund" and p["status"] == "succeeded"), Decimal(0))
    return charges - refunds


def oracle(db: dict[str, list[dict]]) -> set[tuple[str, str, str]]:
    """Every alert the rules' specification calls for in this data (an independent reading of the rules)."""
    accounts = {a["id"]: a for a in db["crm.accounts"]}
    opps = {o["id"]: o for o in db["crm.opportunities"]}
    bcus = {c["id"]: c for c in db["billing.customers"]}
    subs = {s["id"]: s for s in db["billing.subscriptions"]}
    invs = {i["id"]: i for i in db["billing.invoices"]}
    pays = {p["id"]: p for p in db["billing.payments"]}
    ecus = {c["customer_no"]: c for c in db["erp.customers"]}
    orders = {o["order_no"]: o for o in db["erp.sales_orders"]}
    posts = db["erp.ar_postings"]
    out: set[tuple[str, str, str]] = set()

    subs_by_opp, orders_by_opp = defaultdict(list), defaultdict(list)
    for s in subs.values():
        subs_by_opp[s["crm_opportunity_id"]].append(s)
    for o in orders.values():
        orders_by_opp[o["crm_opportunity_id"]].append(o)
    for o in opps.values():
        if o["stage"] == "closed_won":
            if not subs_by_opp[o["id"]]:
                out.add(("opportunity_without_subscription", "opportunity", o["id"]))
            if not orders_by_opp[o["id"]]:
                out.add(("opportunity_without_sales_order", "opportunity", o["id"]))

    posts_by_inv, pays_by_inv = defaultdict(list), defaultdict(list)
    for p in posts:
        posts_by_inv[p["invoice_ref"]].append(p)
    for p in pays.values():
        pays_by_inv[p["invoice_id"]].append(p)
    for i in invs.values():
        if i["status"] in ("draft", "void"):
            continue
        ps = posts_by_inv[i["id"]]
        if not ps:
            out.add(("invoice_not_posted", "invoice", i["id"]))
        elif {p["currency"] for p in ps} != {i["currency"]} or sum(p["amount"] for p in ps) != i["amount_due"]:
            out.add(("posting_mismatch", "invoice", i["id"]))
        paid = net_paid([p for p in pays_by_inv[i["id"]] if p["currency"] == i["currency"]])
        if (i["status"] == "paid" and paid < i["amount_due"]) or paid > i["amount_due"] or (
                i["status"] == "open" and paid >= i["amount_due"]):
            out.add(("invoice_status_mismatch", "invoice", i["id"]))

    invs_by_order = defaultdict(list)
    for i in invs.values():
        if i["status"] != "void":
            invs_by_order[i["erp_order_no"]].append(i)
    for o in orders.values():
        named = invs_by_order[o["order_no"]]
        if named and ({i["currency"] for i in named} != {o["currency"]}
                      or sum(i["amount_due"] for i in named) != o["total_amount"]):
            out.add(("order_invoice_total_mismatch", "sales_order", o["order_no"]))

    for p in pays.values():
        if p["invoice_id"] is not None and p["invoice_id"] not in invs:
            out.add(("orphan_payment", "payment", p["id"]))
        elif p["invoice_id"] is not None and invs[p["invoice_id"]]["customer_id"] != p["customer_id"]:
            out.add(("payment_customer_mismatch", "payment", p["id"]))

    for s in subs.values():
        named = [o for o in orders.values() if o["billing_subscription_id"] == s["id"]]
        same_opp = orders_by_opp[s["crm_opportunity_id"]] if s["crm_opportunity_id"] else []
        for o in named or (same_opp if len(same_opp) == 1 else []):
            canceled = s["status"] == "canceled" and o["status"] not in ("closed", "cancelled")
            if canceled or s["currency"] != o["currency"] or s["quantity"] * s["unit_amount"] != o["total_amount"]:
                out.add(("subscription_order_mismatch", "subscription", s["id"]))

    def linked(customers: dict, link_field: str, account_id: str) -> list[dict]:
        return [c for key, c in customers.items() if c["crm_account_id"] == account_id
                or (c["crm_account_id"] is None and accounts[account_id][link_field] == key)]

    for a in accounts.values():
        for c in linked(bcus, "billing_customer_id", a["id"]):
            if c["name"] is not None and c["name"] != a["name"]:
                out.add(("account_attribute_mismatch", "account", a["id"]))
        for c in linked(ecus, "erp_customer_no", a["id"]):
            if any(c[f] is not None and a[f] is not None and c[f] != a[f] for f in ("name", "country", "tax_id")):
                out.add(("account_attribute_mismatch", "account", a["id"]))

    for key in (lambda a: norm_domain(a["domain"]), lambda a: a["tax_id"]):
        groups = defaultdict(list)
        for a in accounts.values():
            if key(a):
                groups[key(a)].append(a["id"])
        for ids in groups.values():
            if len(ids) > 1:
                out.update(("duplicate_account", "account", i) for i in ids)

    # Credit hold (state-based here: healthy traffic never puts a customer on hold).
    for c in ecus.values():
        if not c["credit_hold"]:
            continue
        held = {c["crm_account_id"]} | {a["id"] for a in accounts.values() if a["erp_customer_no"] == c["customer_no"]}
        held.discard(None)
        for account_id in held:
            billing_ids = {b["id"] for b in bcus.values() if b["crm_account_id"] == account_id}
            if account_id in accounts and accounts[account_id]["billing_customer_id"]:
                billing_ids.add(accounts[account_id]["billing_customer_id"])
            out.update(("credit_hold_violation", "invoice", i["id"]) for i in invs.values()
                       if i["customer_id"] in billing_ids)
            out.update(("credit_hold_violation", "opportunity", o["id"]) for o in opps.values()
                       if o["account_id"] == account_id and o["stage"] == "closed_won")

    links = [
        ("account", accounts, "billing_customer_id", bcus), ("account", accounts, "erp_customer_no", ecus),
        ("billing_customer", bcus, "crm_account_id", accounts), ("subscription", subs, "crm_opportunity_id", opps),
        ("sales_order", orders, "crm_opportunity_id", opps), ("sales_order", orders, "billing_subscription_id", subs),
        ("invoice", invs, "erp_order_no", orders), ("erp_customer", ecus, "crm_account_id", accounts),
    ]
    for holder, rows, column, targets in links:
        for key, row in rows.items():
            if row[column] is not None and row[column] not in targets:
                out.add(("dangling_reference", holder, key))
    return out
