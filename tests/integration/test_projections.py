"""Corrected projections through the real stack, checked against oracles computed with independent SQL."""

from __future__ import annotations

import uuid
from decimal import Decimal

import psycopg
import pytest

from tests.canonical import events, projections, wait_until

pytestmark = pytest.mark.integration


def _sql(dsn: str, statement: str, params: tuple = ()):
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else None


def _paid_oracle(billing: str, invoice_id: str) -> Decimal:
    return _sql(billing, """
        SELECT coalesce(sum(amount) FILTER (WHERE kind = 'charge' AND status IN ('succeeded', 'refunded')), 0)
             - coalesce(sum(amount) FILTER (WHERE kind = 'refund' AND status = 'succeeded'), 0)
        FROM payments WHERE invoice_id = %s""", (invoice_id,))[0][0]


def _money(items, currency="EUR"):
    return next((m["amount"] for m in items if m["currency"] == currency), Decimal("0.00"))


def test_invoice_projection_follows_payments_postings_and_deletes(stack, stack_status):
    bootstrap = stack_status["kafka"]["bootstrap"]
    billing, erp = stack_status["postgres"]["billing"], stack_status["postgres"]["erp"]
    n = uuid.uuid4().hex[:8]
    inv = f"in_pj{n}"
    # The payments and the posting are written before the invoice: order must not matter.
    _sql(billing, "INSERT INTO payments (id, invoice_id, customer_id, amount, currency, status) VALUES "
                  "(%s, %s, 'cus_snap01', 60.00, 'EUR', 'succeeded'), (%s, %s, 'cus_snap01', 40.00, 'EUR', "
                  "'succeeded')", (f"py_a{n}", inv, f"py_b{n}", inv))
    _sql(erp, "INSERT INTO ar_postings (id, invoice_ref, customer_no, amount, currency) VALUES "
              "(%s, %s, 'C900001', 100.00, 'EUR')", (f"AR7{int(n, 16) % 10**7}", inv))
    _sql(billing, "INSERT INTO invoices (id, customer_id, amount_due, amount_paid, currency, status) VALUES "
                  "(%s, 'cus_snap01', 100.00, 100.00, 'EUR', 'paid')", (inv,))

    def current():
        return projections(bootstrap, "invoice", headers=True).get(inv)

    proj = wait_until(current, lambda p: p is not None and p["status"] == "paid"
                      and len(p["links"]["payments"]) == 2 and p["links"]["postings"], what="paid projection")
    posted = _sql(erp, "SELECT sum(amount) FROM ar_postings WHERE invoice_ref = %s", (inv,))[0][0]
    assert _money(proj["totals"]["paid"]) == _paid_oracle(billing, inv) == Decimal("100.00")
    assert _money(proj["totals"]["posted"]) == posted
    assert _money(proj["totals"]["outstanding"]) == Decimal("0.00")
    assert proj["fields"]["amount_due"]["value"] == {"amount": Decimal("100.00"), "currency": "EUR"}
    assert proj["fields"]["amount_due"]["system"] == "billing"
    assert proj["fields"]["amount_due"]["position"].startswith("lsn:")
    assert proj["correlation_id"]

    # A payment deleted: billing still says paid; the corrected status says open and keeps billing's value.
    _sql(billing, "DELETE FROM payments WHERE id = %s", (f"py_b{n}",))
    proj = wait_until(current, lambda p: p is not None and p["status"] == "open", what="open after delete")
    assert _money(proj["totals"]["paid"]) == _paid_oracle(billing, inv) == Decimal("60.00")
    assert proj["fields"]["status"]["value"] == "open"
    assert [a["value"] for a in proj["fields"]["status"]["alternatives"]] == ["paid"]
    # The record names the payment's delete, which reached it through a link, not the invoice's own change.
    deleted = [e for e in events(bootstrap, "payment") if e["entity_id"] == f"py_b{n}" and e["op"] == "delete"]
    assert len(deleted) == 1
    assert proj["_headers"]["caused_by"] == deleted[0]["correlation_id"] != proj["correlation_id"]

    _sql(billing, "DELETE FROM invoices WHERE id = %s", (inv,))
    wait_until(lambda: projections(bootstrap, "invoice"), lambda ps: inv in ps and ps[inv] is None,
               what="tombstone after the invoice is deleted")


def test_account_golden_record_takes_each_field_from_its_owner(stack, stack_status):
    bootstrap = stack_status["kafka"]["bootstrap"]
    dsn = stack_status["postgres"]
    n = uuid.uuid4().hex[:8]
    acc, cus, cno = f"ACC-GR{n}", f"cus_gr{n}", f"C8{int(n, 16) % 10**6:06d}"
    # The ERP customer names the account; the account names the billing customer (links either way).
    _sql(dsn["erp"], "INSERT INTO customers (customer_no, crm_account_id, name, tax_id, country, credit_hold) "
                     "VALUES (%s, %s, 'Golden Ltd', 'GB123', 'GB', true)", (cno, acc))
    _sql(dsn["billing"], "INSERT INTO customers (id, name, currency, delinquent) VALUES "
                         "(%s, 'Golden Billing Ltd', 'GBP', true)", (cus,))
    _sql(dsn["crm"], "INSERT INTO accounts (id, name, domain, country, tax_id, status, billing_customer_id) "
                     "VALUES (%s, 'Golden Ltd', 'golden.example', 'IE', 'GB999', 'active', %s)", (acc, cus))
    proj = wait_until(lambda: projections(bootstrap, "account").get(acc),
                      lambda p: p is not None and p["links"]["billing_customers"] and p["links"]["erp_customers"],
                      what="account linked to both customers")
    f = proj["fields"]
    assert f["name"]["value"] == "Golden Ltd" and f["name"]["system"] == "crm"
    assert [a["value"] for a in f["name"]["alternatives"]] == ["Golden Billing Ltd"]
    assert f["country"]["value"] == "IE" and [a["value"] for a in f["country"]["alternatives"]] == ["GB"]
    assert f["tax_id"]["value"] == "GB123" and f["tax_id"]["system"] == "erp"
    assert [a["value"] for a in f["tax_id"]["alternatives"]] == ["GB999"]
    assert f["credit_hold"]["value"] is True and f["delinquent"]["value"] is True
    assert f["erp_customer_no"]["value"] == cno and f["billing_customer_id"]["value"] == cus


def test_quote_to_cash_totals_match_sql(stack, stack_status):
    bootstrap = stack_status["kafka"]["bootstrap"]
    dsn = stack_status["postgres"]
    n = uuid.uuid4().hex[:8]
    opp, sub, inv, so = f"OPP-Q{n}", f"sub_q{n}", f"in_q{n}", f"SO6{int(n, 16) % 10**7:07d}"
    _sql(dsn["crm"], "INSERT INTO opportunities (id, account_id, stage, amount, currency) VALUES "
                     "(%s, 'ACC-SNAP01', 'closed_won', 300.00, 'EUR')", (opp,))
    _sql(dsn["billing"], "INSERT INTO subscriptions (id, customer_id, crm_opportunity_id, quantity, unit_amount, "
                         "currency, status) VALUES (%s, 'cus_snap01', %s, 3, 100.00, 'EUR', 'active')", (sub, opp))
    _sql(dsn["billing"], "INSERT INTO invoices (id, customer_id, subscription_id, amount_due, currency, status) "
                         "VALUES (%s, 'cus_snap01', %s, 300.00, 'EUR', 'open')", (inv, sub))
    _sql(dsn["billing"], "INSERT INTO payments (id, invoice_id, customer_id, amount, currency, status) VALUES "
                         "(%s, %s, 'cus_snap01', 120.00, 'EUR', 'succeeded')", (f"py_q{n}", inv))
    _sql(dsn["erp"], "INSERT INTO sales_orders (order_no, customer_no, crm_opportunity_id, total_amount, currency) "
                     "VALUES (%s, 'C900001', %s, 300.00, 'EUR')", (so, opp))
    proj = wait_until(lambda: projections(bootstrap, "quote_to_cash").get(opp),
                      lambda p: p is not None and p["links"]["payments"] and p["links"]["sales_orders"],
                      what="quote to cash with payment and order")
    billed = _sql(dsn["billing"], "SELECT sum(i.amount_due) FROM invoices i JOIN subscriptions s "
                                  "ON s.id = i.subscription_id WHERE s.crm_opportunity_id = %s", (opp,))[0][0]
    paid = _paid_oracle(dsn["billing"], inv)
    assert _money(proj["totals"]["billed"]) == billed == Decimal("300.00")
    assert _money(proj["totals"]["paid"]) == paid == Decimal("120.00")
    assert _money(proj["totals"]["outstanding"]) == billed - paid
    assert proj["status"] == "invoiced"
    assert proj["links"]["subscriptions"] == [sub] and proj["links"]["invoices"] == [inv]
