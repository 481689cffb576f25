"""Consistency rules over join buckets built by the real engine from canonical events."""

from __future__ import annotations

from decimal import Decimal

import pytest

from streams.join_driver import JoinDriver
from streams.joins import live_members
from streams.rules import CATALOG, Candidate, RuleConfig, evaluate

CFG = RuleConfig(subscription_sla_ms=10_000, sales_order_sla_ms=10_000, posting_sla_ms=10_000,
                 orphan_payment_sla_ms=10_000, dangling_reference_sla_ms=10_000, tolerance=Decimal("0.00"))
SYSTEM = {"account": "crm", "opportunity": "crm", "billing_customer": "billing", "subscription": "billing",
          "invoice": "billing", "payment": "billing", "erp_customer": "erp", "sales_order": "erp",
          "ar_posting": "erp"}


class World:
    def __init__(self) -> None:
        self.driver = JoinDriver()
        self.lsn = 100

    def put(self, entity: str, eid: str, ts: int = 1_000, **fields) -> None:
        self.lsn += 1
        self.driver.feed({
            "entity_type": entity, "entity_id": eid, "op": "update", "after": fields, "system": SYSTEM[entity],
            "source_table": entity, "position": {"order": [1, 0, self.lsn], "lsn": self.lsn, "tx_id": 1},
            "source_ts": ts, "correlation_id": f"cid-{eid}",
        })

    def delete(self, entity: str, eid: str) -> None:
        self.lsn += 1
        self.driver.feed({
            "entity_type": entity, "entity_id": eid, "op": "delete", "after": None, "system": SYSTEM[entity],
            "source_table": entity, "position": {"order": [1, 0, self.lsn], "lsn": self.lsn, "tx_id": 1},
            "source_ts": 0, "correlation_id": "",
        })

    def findings(self, bucket: str) -> list[Candidate]:
        bucket_type, _, bucket_id = bucket.partition("|")
        state = self.driver.states.get(bucket)
        return evaluate(bucket_type, bucket_id, live_members(state) if state else {}, CFG)


def eur(amount: str, currency: str = "EUR") -> dict:
    return {"amount": Decimal(amount), "currency": currency}


def rules_of(candidates) -> set[tuple[str, str, str]]:
    return {(c.finding.rule_id, c.finding.entity_type, c.finding.entity_id) for c in candidates}


def healthy_invoice(w: World, inv="in_1", paid="100.00", status="paid", posted="100.00") -> None:
    w.put("invoice", inv, id=inv, customer_id="cus_1", amount_due=eur("100.00"), status=status)
    if paid:
        w.put("payment", f"py_{inv}", id=f"py_{inv}", invoice_id=inv, customer_id="cus_1", amount=eur(paid),
              kind="charge", status="succeeded")
    if posted:
        w.put("ar_posting", f"AR{inv}", ts=2_000, id=f"AR{inv}", invoice_ref=inv, customer_no="C1",
              amount=eur(posted))


def test_every_rule_has_a_severity_and_description():
    for rule_id, (severity, description) in CATALOG.items():
        assert severity in ("low", "medium", "high", "critical") and description and rule_id.islower()


def test_a_healthy_invoice_raises_nothing():
    w = World()
    healthy_invoice(w)
    assert w.findings("INV|in_1") == []


def test_invoice_not_posted_waits_for_erp_watermark_past_the_sla():
    w = World()
    healthy_invoice(w, posted=None)
    [c] = w.findings("INV|in_1")
    assert (c.finding.rule_id, c.finding.entity_id) == ("invoice_not_posted", "in_1")
    assert c.waits_for == (("erp", 11_000),) and c.finding.deadline_ms == 11_000
    assert not c.due({"erp": 10_999}) and c.due({"erp": 11_000})
    assert not c.due({}), "an unknown watermark never raises"


def test_posting_mismatch_names_both_amounts_and_waits_for_both_sides():
    w = World()
    healthy_invoice(w, posted="90.00")
    [c] = w.findings("INV|in_1")
    assert c.finding.rule_id == "posting_mismatch" and c.finding.severity == "critical"
    assert c.finding.message == "Invoice in_1 for 100.00 EUR was posted to ERP as 90.00 EUR"
    assert dict(c.waits_for) == {"erp": 1_000, "billing": 2_000}
    assert {e.system for e in c.finding.evidence} == {"billing", "erp"}


def test_posting_in_another_currency_is_a_mismatch():
    w = World()
    healthy_invoice(w, posted=None)
    w.put("ar_posting", "AR9", id="AR9", invoice_ref="in_1", customer_no="C1", amount=eur("100.00", "USD"))
    assert rules_of(w.findings("INV|in_1")) == {("posting_mismatch", "invoice", "in_1")}


@pytest.mark.parametrize("status,paid,expected", [
    ("paid", "60.00", True), ("open", "100.00", True), ("paid", "120.00", True),
    ("open", "60.00", False), ("paid", "100.00", False), ("void", "0.01", False),
])
def test_invoice_status_against_payments(status, paid, expected):
    w = World()
    healthy_invoice(w, status=status, paid=paid)
    assert (("invoice_status_mismatch", "invoice", "in_1") in rules_of(w.findings("INV|in_1"))) is expected


def test_orphan_payment_after_sla_and_resolved_when_the_invoice_appears():
    w = World()
    w.put("payment", "py_9", ts=5_000, id="py_9", invoice_id="in_9", customer_id="cus_1", amount=eur("5.00"),
          kind="charge", status="succeeded")
    [c] = w.findings("INV|in_9")
    assert rules_of([c]) == {("orphan_payment", "payment", "py_9")} and c.waits_for == (("billing", 15_000),)
    w.put("invoice", "in_9", id="in_9", customer_id="cus_1", amount_due=eur("5.00"), status="paid")
    assert "orphan_payment" not in {x.finding.rule_id for x in w.findings("INV|in_9")}


def test_payment_from_another_customer():
    w = World()
    healthy_invoice(w)
    w.put("payment", "py_x", id="py_x", invoice_id="in_1", customer_id="cus_2", amount=eur("0.00"),
          kind="charge", status="failed")
    assert ("payment_customer_mismatch", "payment", "py_x") in rules_of(w.findings("INV|in_1"))


def test_won_opportunity_without_subscription_or_order():
    w = World()
    w.put("opportunity", "OPP-1", ts=3_000, id="OPP-1", account_id="ACC-1", stage="closed_won", amount=eur("300.00"))
    found = {c.finding.rule_id: c for c in w.findings("OPP|OPP-1")}
    assert set(found) == {"opportunity_without_subscription", "opportunity_without_sales_order"}
    assert found["opportunity_without_subscription"].waits_for == (("billing", 13_000),)
    assert found["opportunity_without_sales_order"].waits_for == (("erp", 13_000),)
    w.put("subscription", "sub_1", id="sub_1", crm_opportunity_id="OPP-1", quantity=3, unit_amount=eur("100.00"),
          status="active")
    w.put("sales_order", "SO1", id="SO1", order_no="SO1", crm_opportunity_id="OPP-1", billing_subscription_id="sub_1",
          total_amount=eur("300.00"), status="billed")
    assert w.findings("OPP|OPP-1") == []


def test_lost_opportunity_needs_nothing():
    w = World()
    w.put("opportunity", "OPP-2", id="OPP-2", account_id="ACC-1", stage="closed_lost", amount=eur("1.00"))
    assert w.findings("OPP|OPP-2") == []


@pytest.mark.parametrize("sub,order,expected", [
    ({"quantity": 3, "unit_amount": eur("100.00"), "status": "active"}, {"total_amount": eur("250.00"), "status": "billed"}, True),
    ({"quantity": 3, "unit_amount": eur("100.00"), "status": "active"}, {"total_amount": eur("300.00", "USD"), "status": "billed"}, True),
    ({"quantity": 3, "unit_amount": eur("100.00"), "status": "canceled"}, {"total_amount": eur("300.00"), "status": "billed"}, True),
    ({"quantity": 3, "unit_amount": eur("100.00"), "status": "canceled"}, {"total_amount": eur("300.00"), "status": "cancelled"}, False),
    ({"quantity": 3, "unit_amount": eur("100.00"), "status": "active"}, {"total_amount": eur("300.00"), "status": "billed"}, False),
])
def test_subscription_against_its_sales_order(sub, order, expected):
    w = World()
    w.put("opportunity", "OPP-1", id="OPP-1", account_id="ACC-1", stage="closed_won", amount=eur("300.00"))
    w.put("subscription", "sub_1", id="sub_1", crm_opportunity_id="OPP-1", **sub)
    w.put("sales_order", "SO1", order_no="SO1", crm_opportunity_id="OPP-1", billing_subscription_id="sub_1", **order)
    found = ("subscription_order_mismatch", "subscription", "sub_1") in rules_of(w.findings("OPP|OPP-1"))
    assert found is expected


def test_order_invoice_totals():
    w = World()
    w.put("sales_order", "SO1", order_no="SO1", crm_opportunity_id="OPP-1", total_amount=eur("300.00"), status="billed")
    w.put("invoice", "in_a", id="in_a", customer_id="cus_1", subscription_id="sub_1", erp_order_no="SO1",
          amount_due=eur("200.00"), status="open")
    [c] = w.findings("ORD|SO1")
    assert rules_of([c]) == {("order_invoice_total_mismatch", "sales_order", "SO1")}
    assert c.finding.message == "Sales order SO1 totals 300.00 EUR but its invoices total 200.00 EUR"
    w.put("invoice", "in_b", id="in_b", customer_id="cus_1", erp_order_no="SO1", amount_due=eur("100.00"),
          status="open")
    assert w.findings("ORD|SO1") == []


def test_account_attributes_judged_against_linked_customers():
    w = World()
    w.put("account", "ACC-1", id="ACC-1", name="Acme", country="DE", tax_id="DE1", billing_customer_id="cus_1",
          status="active")
    w.put("billing_customer", "cus_1", id="cus_1", name="Acme")
    w.put("erp_customer", "C1", customer_no="C1", crm_account_id="ACC-1", name="Acme", country="DE", tax_id="DE1")
    assert w.findings("ACC|ACC-1") == []
    w.put("erp_customer", "C1", ts=4_000, customer_no="C1", crm_account_id="ACC-1", name="Acme", country="AT",
          tax_id="DE1")
    [c] = w.findings("ACC|ACC-1")
    assert c.finding.rule_id == "account_attribute_mismatch"
    assert "country 'DE' in CRM but 'AT' in erp" in c.finding.message
    assert ("crm", 4_000) in c.waits_for and ("erp", 1_000) in c.waits_for


# ---- rule 10: duplicate accounts -------------------------------------------------------------------


def test_duplicate_accounts_by_domain_written_differently_flag_both():
    w = World()
    w.put("account", "ACC-1", ts=1_000, id="ACC-1", name="Kestrel GmbH", domain="kestrel.de", tax_id="DE1")
    w.put("account", "ACC-2", ts=2_000, id="ACC-2", name="Kestrel", domain="https://WWW.Kestrel.de/", tax_id="DE2")
    for me, other in (("ACC-1", "ACC-2"), ("ACC-2", "ACC-1")):
        [c] = [c for c in w.findings(f"ACC|{me}") if c.finding.rule_id == "duplicate_account"]
        assert c.finding.entity_id == me and other in c.finding.message and "domain kestrel.de" in c.finding.message
        assert c.waits_for == (("crm", 2_000),)
        # Both alerts name the change that made the pair: ACC-2's, the newer, whichever account they are about.
        assert c.finding.correlation_id == "cid-ACC-2"


def test_duplicates_changed_in_one_millisecond_name_the_same_change():
    w = World()
    for eid in ("ACC-7", "ACC-3", "ACC-5"):
        w.put("account", eid, ts=4_000, id=eid, domain="same.example")
    named = {c.finding.entity_id: c.finding.correlation_id
             for eid in ("ACC-3", "ACC-5", "ACC-7") for c in w.findings(f"ACC|{eid}")}
    assert named == {"ACC-3": "cid-ACC-7", "ACC-5": "cid-ACC-7", "ACC-7": "cid-ACC-7"}


def test_duplicate_accounts_by_tax_id_and_resolution_when_one_changes():
    w = World()
    w.put("account", "ACC-1", id="ACC-1", domain="a.com", tax_id="DE 123-456")
    w.put("account", "ACC-2", id="ACC-2", domain="b.com", tax_id="de123456")
    assert rules_of(w.findings("ACC|ACC-2")) == {("duplicate_account", "account", "ACC-2")}
    w.put("account", "ACC-2", id="ACC-2", domain="b.com", tax_id="DE999")
    assert rules_of(w.findings("ACC|ACC-1")) == set() and rules_of(w.findings("ACC|ACC-2")) == set()


def test_a_deleted_duplicate_resolves_both():
    w = World()
    w.put("account", "ACC-1", id="ACC-1", domain="a.com")
    w.put("account", "ACC-2", id="ACC-2", domain="a.com")
    w.delete("account", "ACC-2")
    assert rules_of(w.findings("ACC|ACC-1")) == set()


# ---- rule 11: credit hold -------------------------------------------------------------------------


def _held_customer(w: World, hold_ts: int) -> None:
    w.put("account", "ACC-1", ts=500, id="ACC-1", billing_customer_id="cus_1", erp_customer_no="C1")
    w.put("billing_customer", "cus_1", ts=500, id="cus_1", crm_account_id="ACC-1")
    w.put("erp_customer", "C1", ts=hold_ts, customer_no="C1", crm_account_id="ACC-1", credit_hold=True)


def test_invoice_issued_after_the_hold_violates_it_and_one_issued_before_does_not():
    from datetime import datetime, timezone

    w = World()
    _held_customer(w, hold_ts=5_000)
    at = lambda ms: datetime.fromtimestamp(ms / 1000, timezone.utc)  # noqa: E731
    w.put("invoice", "in_old", ts=9_000, id="in_old", customer_id="cus_1", amount_due=eur("10.00"), status="paid",
          issued_at=at(4_000))
    w.put("invoice", "in_new", ts=6_000, id="in_new", customer_id="cus_1", amount_due=eur("10.00"), status="open",
          issued_at=at(6_000))
    w.put("invoice", "in_draft", ts=7_000, id="in_draft", customer_id="cus_1", amount_due=eur("1.00"),
          status="draft", issued_at=None)
    found = [c for c in w.findings("ACC|ACC-1") if c.finding.rule_id == "credit_hold_violation"]
    assert rules_of(found) == {("credit_hold_violation", "invoice", "in_new")}
    assert "C1 is on credit hold" in found[0].finding.message and found[0].waits_for == (("erp", 6_000),)


def test_opportunity_won_during_a_hold_violates_it_until_the_hold_is_lifted():
    w = World()
    _held_customer(w, hold_ts=5_000)
    w.put("opportunity", "OPP-1", ts=3_000, id="OPP-1", account_id="ACC-1", stage="closed_won", amount=eur("5.00"))
    w.put("opportunity", "OPP-2", ts=6_000, id="OPP-2", account_id="ACC-1", stage="closed_won", amount=eur("5.00"))
    w.put("opportunity", "OPP-3", ts=6_000, id="OPP-3", account_id="ACC-1", stage="prospecting", amount=eur("5.00"))
    found = [c for c in w.findings("ACC|ACC-1") if c.finding.rule_id == "credit_hold_violation"]
    assert rules_of(found) == {("credit_hold_violation", "opportunity", "OPP-2")}
    w.put("erp_customer", "C1", ts=7_000, customer_no="C1", crm_account_id="ACC-1", credit_hold=False)
    assert [c for c in w.findings("ACC|ACC-1") if c.finding.rule_id == "credit_hold_violation"] == []


# ---- rule 12: dangling references -----------------------------------------------------------------


@pytest.mark.parametrize(("entity", "eid", "fields", "bucket", "system"), [
    ("account", "ACC-9", {"billing_customer_id": "cus_ghost"}, "BCL|cus_ghost", "billing"),
    ("account", "ACC-9", {"erp_customer_no": "C-ghost"}, "ECL|C-ghost", "erp"),
    ("billing_customer", "cus_9", {"crm_account_id": "ACC-ghost"}, "ACC|ACC-ghost", "crm"),
    ("erp_customer", "C9", {"crm_account_id": "ACC-ghost"}, "ACC|ACC-ghost", "crm"),
    ("subscription", "sub_9", {"crm_opportunity_id": "OPP-ghost"}, "OPP|OPP-ghost", "crm"),
    ("sales_order", "SO9", {"crm_opportunity_id": "OPP-ghost"}, "OPP|OPP-ghost", "crm"),
    ("sales_order", "SO9", {"billing_subscription_id": "sub_ghost"}, "SUB|sub_ghost", "billing"),
    ("invoice", "in_9", {"erp_order_no": "SO-ghost", "customer_id": "cus_1"}, "ORD|SO-ghost", "erp"),
])
def test_a_link_to_a_record_that_never_appears_dangles_after_the_sla(entity, eid, fields, bucket, system):
    w = World()
    key = {"erp_customer": "customer_no", "sales_order": "order_no"}.get(entity, "id")
    w.put(entity, eid, ts=1_000, **{key: eid}, **fields)
    [c] = [c for c in w.findings(bucket) if c.finding.rule_id == "dangling_reference"]
    assert (c.finding.entity_type, c.finding.entity_id) == (entity, eid)
    assert c.waits_for == ((system, 11_000),) and c.finding.deadline_ms == 11_000
    assert not c.due({system: 10_999}) and c.due({system: 11_000})
    # The target appears: nothing dangles any more.
    target_type, _, target_id = bucket.partition("|")
    target = {"BCL": "billing_customer", "ECL": "erp_customer", "ACC": "account", "OPP": "opportunity",
              "SUB": "subscription", "ORD": "sales_order"}[target_type]
    target_key = {"erp_customer": "customer_no", "sales_order": "order_no"}.get(target, "id")
    w.put(target, target_id, ts=2_000, **{target_key: target_id})
    assert [c for c in w.findings(bucket) if c.finding.rule_id == "dangling_reference"] == []


# ---- sync SLA of amendment-driven mismatches ------------------------------------------------------


def test_an_amendment_gets_the_sync_sla_before_its_order_mismatch_is_due():
    cfg = RuleConfig(**{**CFG.__dict__, "sync_sla_ms": 5_000})
    w = World()
    w.put("sales_order", "SO1", ts=1_000, order_no="SO1", total_amount=eur("100.00"), status="active")
    w.put("invoice", "in_1", ts=3_000, id="in_1", erp_order_no="SO1", amount_due=eur("120.00"), status="open")
    state = w.driver.states["ORD|SO1"]
    [c] = evaluate("ORD", "SO1", live_members(state), cfg)
    assert c.finding.rule_id == "order_invoice_total_mismatch"
    assert c.waits_for == (("billing", 8_000), ("erp", 8_000)) and c.finding.deadline_ms == 8_000


# ---- edge cases: tolerance, partial payments and refunds, deletes ----------------------------------


@pytest.mark.parametrize(("posted", "tolerance", "mismatch"), [
    ("99.99", "0.01", False), ("100.01", "0.01", False), ("99.98", "0.01", True), ("99.99", "0.00", True),
])
def test_money_tolerance_bounds_a_posting_difference(posted, tolerance, mismatch):
    cfg = RuleConfig(**{**CFG.__dict__, "tolerance": Decimal(tolerance)})
    w = World()
    healthy_invoice(w, posted=posted)
    found = evaluate("INV", "in_1", live_members(w.driver.states["INV|in_1"]), cfg)
    assert (("posting_mismatch", "invoice", "in_1") in rules_of(found)) is mismatch


def test_partial_payments_add_up_and_refunds_count_against_them():
    w = World()
    healthy_invoice(w, paid="40.00", status="paid")
    w.put("payment", "py_2", id="py_2", invoice_id="in_1", customer_id="cus_1", amount=eur("60.00"),
          kind="charge", status="succeeded")
    assert rules_of(w.findings("INV|in_1")) == set()  # 40 + 60 covers 100
    w.put("payment", "py_3", id="py_3", invoice_id="in_1", customer_id="cus_1", amount=eur("0.00"),
          kind="charge", status="failed")
    assert rules_of(w.findings("INV|in_1")) == set()  # a failed attempt counts for nothing
    w.put("payment", "re_1", id="re_1", invoice_id="in_1", customer_id="cus_1", amount=eur("60.00"),
          kind="refund", status="succeeded")
    [c] = w.findings("INV|in_1")
    assert c.finding.rule_id == "invoice_status_mismatch" and "only 40.00 EUR" in c.finding.message


def test_a_payment_in_another_currency_does_not_pay_the_invoice():
    w = World()
    healthy_invoice(w, paid=None, status="paid")
    w.put("payment", "py_usd", id="py_usd", invoice_id="in_1", customer_id="cus_1", amount=eur("100.00", "USD"),
          kind="charge", status="succeeded")
    assert ("invoice_status_mismatch", "invoice", "in_1") in rules_of(w.findings("INV|in_1"))


def test_deleting_the_offending_record_resolves_the_finding():
    w = World()
    healthy_invoice(w)
    w.put("payment", "py_x", id="py_x", invoice_id="in_1", customer_id="cus_2", amount=eur("0.00"),
          kind="charge", status="failed")
    w.put("ar_posting", "AR2", id="AR2", invoice_ref="in_1", customer_no="C1", amount=eur("5.00"))
    assert rules_of(w.findings("INV|in_1")) == {("payment_customer_mismatch", "payment", "py_x"),
                                                 ("posting_mismatch", "invoice", "in_1")}
    w.delete("payment", "py_x")
    w.delete("ar_posting", "AR2")
    assert rules_of(w.findings("INV|in_1")) == set()
    w.delete("invoice", "in_1")  # the invoice gone: its own payment is now the orphan
    assert rules_of(w.findings("INV|in_1")) == {("orphan_payment", "payment", "py_in_1")}
