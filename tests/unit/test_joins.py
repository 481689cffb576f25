"""The join engine as plain objects: `streams.joins.apply` with the real topology and projector, and the
in-memory JoinDriver. Last-writer-wins members, tombstones, redelivery, link moves, exact aggregates, no churn."""

from __future__ import annotations

import copy
from decimal import Decimal

from streams import join_topology, projections
from streams.join_driver import JoinDriver
from streams.join_topology import entity_message
from streams.joins import APPLIED, REPLAYED, Message, apply, live_members
from tests.unit.histories import World, driver_of, money


def run(state, message):
    return apply(state, message, join_topology.emits, projections.projector)


def totals(projection: dict, name: str) -> dict[str, Decimal]:
    return {m["currency"]: m["amount"] for m in projection["totals"][name]}


def invoice_of(driver: JoinDriver, invoice_id: str) -> dict:
    return driver.projections[("invoice", invoice_id)]


def emitted_for(driver: JoinDriver, name: str, pid: str) -> list:
    return [record for n, p, record in driver.emitted if (n, p) == (name, pid)]


# --- last writer wins, per member ----------------------------------------------------------------------


def test_older_upsert_of_the_same_member_is_ignored():
    w = World()
    older = w.upsert("payment", "py_1", invoice_id="in_1", amount=money("10.00"))
    newer = w.upsert("payment", "py_1", invoice_id="in_1", amount=money("99.00"))
    state, out, accepted = run(None, entity_message(newer))
    assert accepted == APPLIED and state["version"] == 1
    link = [m for m in out.links if m.bucket == "INV|in_1"]
    assert len(link) == 1 and link[0].data["fields"]["amount"] == money("99.00")

    after, out2, accepted2 = run(state, entity_message(older))
    assert accepted2 == REPLAYED
    assert after["members"] == state["members"] and after["version"] == 1
    assert live_members(after)[("self", "py_1")]["fields"]["amount"] == money("99.00")


def test_older_upsert_in_a_join_bucket_is_ignored():
    key = ("payment", "py_1")
    state, _, ok = run(None, Message("INV|in_1", key, [5], data={"fields": {"amount": money("5.00")}}))
    assert ok == APPLIED
    state, _, ok = run(state, Message("INV|in_1", key, [3], data={"fields": {"amount": money("3.00")}}))
    assert ok == REPLAYED
    assert state["members"][key]["order"] == [5]
    assert state["members"][key]["data"]["fields"]["amount"] == money("5.00")


def test_older_upsert_through_the_driver_keeps_the_newer_amount():
    w = World()
    inv = w.upsert("invoice", "in_1", amount_due=money("100.00"))
    older = w.upsert("payment", "py_1", invoice_id="in_1", amount=money("10.00"))
    newer = w.upsert("payment", "py_1", invoice_id="in_1", amount=money("70.00"))
    driver = driver_of([inv, newer, older])
    assert totals(invoice_of(driver, "in_1"), "paid") == {"EUR": Decimal("70.00")}


# --- redelivery ----------------------------------------------------------------------------------------


def _invoice_world():
    w = World()
    events = [
        w.upsert("opportunity", "OPP-1", stage="closed_won", amount=money("100.00")),
        w.upsert("subscription", "sub_1", crm_opportunity_id="OPP-1"),
        w.upsert("invoice", "in_1", subscription_id="sub_1", amount_due=money("100.00")),
        w.upsert("payment", "py_1", invoice_id="in_1", amount=money("40.00")),
    ]
    return w, events, driver_of(events)


def test_redelivered_entity_message_changes_nothing_but_resends_its_links():
    _, events, driver = _invoice_world()
    before = copy.deepcopy(driver.states["payment|py_1"])
    state, out, accepted = run(driver.states["payment|py_1"], entity_message(events[-1]))
    assert accepted == REPLAYED
    assert state == before
    assert [(m.bucket, m.member, m.order, m.deleted) for m in out.links] == [
        ("INV|in_1", ("payment", "py_1"), [before["version"]], False)]
    assert out.links[0].data == driver.states["INV|in_1"]["members"][("payment", "py_1")]["data"]
    assert out.projections == []  # an entity bucket maintains no projection


def test_redelivered_link_resends_the_buckets_links_and_projections():
    _, _, driver = _invoice_world()
    inv_state = driver.states["INV|in_1"]
    member = inv_state["members"][("payment", "py_1")]
    before = copy.deepcopy(inv_state)
    redelivered = Message("INV|in_1", ("payment", "py_1"), list(member["order"]), data=member["data"])
    state, out, accepted = run(inv_state, redelivered)
    assert accepted == REPLAYED
    assert state == before
    assert out.projections == [("invoice", "in_1", driver.projections[("invoice", "in_1")])]
    assert [(m.bucket, m.member, m.deleted) for m in out.links] == [("SUB|sub_1", ("invoice", "in_1"), False)]
    # The receiver already holds it: applying the re-sent link there is again a no-op with re-sends.
    sub_before = copy.deepcopy(driver.states["SUB|sub_1"])
    sub_state, sub_out, sub_ok = run(driver.states["SUB|sub_1"], out.links[0])
    assert sub_ok == REPLAYED and sub_state == sub_before
    assert [m.bucket for m in sub_out.links] == ["OPP|OPP-1"]


def test_redelivery_through_the_driver_changes_no_projection():
    _, events, driver = _invoice_world()
    snapshot = copy.deepcopy(driver.projections)
    members = {k: live_members(s) for k, s in driver.states.items()}
    for ev in events:
        driver.feed(ev)
    assert driver.projections == snapshot
    assert {k: live_members(s) for k, s in driver.states.items()} == members


def test_redelivery_resends_a_retraction_lost_in_a_crash():
    """apply's contract: a crash between the state write and the sends loses nothing. Here the payment moves
    from in_A to in_B, the state is written, the outputs (retract from INV|in_A, add to INV|in_B) are lost,
    and the event is redelivered: the retraction must be sent again, or in_A keeps the payment for good."""
    w = World()
    first = w.upsert("payment", "py_1", invoice_id="in_A", amount=money("40.00"))
    moved = w.upsert("payment", "py_1", invoice_id="in_B", amount=money("40.00"))
    state, _, _ = run(None, entity_message(first))
    state, lost, accepted = run(state, entity_message(moved))
    assert accepted == APPLIED
    assert ("INV|in_A", True) in [(m.bucket, m.deleted) for m in lost.links]
    _, resent, accepted = run(state, entity_message(moved))
    assert accepted == REPLAYED
    assert ("INV|in_B", False) in [(m.bucket, m.deleted) for m in resent.links]
    assert ("INV|in_A", True) in [(m.bucket, m.deleted) for m in resent.links], (
        "redelivery re-sent only current routes; the retraction from INV|in_A is lost for good")


def test_redelivery_resends_a_projection_tombstone_lost_in_a_crash():
    """Same contract for projections: an invoice deleted, state written, the tombstone never sent; the
    redelivered retraction must send the tombstone again or the compacted topic keeps the invoice."""
    w = World()
    inv = w.upsert("invoice", "in_1", amount_due=money("10.00"))
    state, out, _ = run(None, Message("INV|in_1", ("invoice", "in_1"), [1], data=entity_message(inv).data))
    assert [p[:2] for p in out.projections] == [("invoice", "in_1")]
    retraction = Message("INV|in_1", ("invoice", "in_1"), [2], deleted=True)
    state, lost, _ = run(state, retraction)
    assert lost.projections == [("invoice", "in_1", None)]
    _, resent, accepted = run(state, retraction)
    assert accepted == REPLAYED
    assert resent.projections == [("invoice", "in_1", None)], (
        "redelivery did not re-send the projection tombstone")


# --- retractions and tombstones ------------------------------------------------------------------------


def test_retraction_leaves_a_tombstone_against_late_older_upserts():
    key = ("payment", "py_1")
    state, _, _ = run(None, Message("INV|in_1", key, [3], data={"fields": {"amount": money("1.00")}}))
    state, _, ok = run(state, Message("INV|in_1", key, [5], deleted=True))
    assert ok == APPLIED and key not in live_members(state)
    assert state["members"][key] == {"order": [5], "deleted": True, "data": None}
    state, _, ok = run(state, Message("INV|in_1", key, [4], data={"fields": {"amount": money("1.00")}}))
    assert ok == REPLAYED and key not in live_members(state)
    # A newer upsert does bring it back.
    state, _, ok = run(state, Message("INV|in_1", key, [6], data={"fields": {"amount": money("2.00")}}))
    assert ok == APPLIED and live_members(state)[key]["fields"]["amount"] == money("2.00")


def test_retraction_before_any_upsert_still_wins_over_the_older_upsert():
    key = ("payment", "py_1")
    state, _, ok = run(None, Message("INV|in_1", key, [5], deleted=True))
    assert ok == APPLIED
    state, _, ok = run(state, Message("INV|in_1", key, [4], data={"fields": {}}))
    assert ok == REPLAYED and live_members(state) == {}


def test_deleted_entity_is_not_resurrected_by_a_late_older_event():
    w = World()
    inv = w.upsert("invoice", "in_1", amount_due=money("100.00"))
    pay = w.upsert("payment", "py_1", invoice_id="in_1", amount=money("30.00"))
    gone = w.delete("payment", "py_1")
    driver = driver_of([inv, gone, pay])  # the delete overtook the create
    assert totals(invoice_of(driver, "in_1"), "paid") == {}
    assert ("payment", "py_1") not in live_members(driver.states["INV|in_1"])
    assert invoice_of(driver, "in_1")["links"]["payments"] == []


# --- link changes and exact aggregates -----------------------------------------------------------------


def test_payment_moving_between_invoices_adjusts_both_exactly():
    w = World()
    driver = driver_of([
        w.upsert("invoice", "in_A", amount_due=money("100.00")),
        w.upsert("invoice", "in_B", amount_due=money("50.00")),
        w.upsert("payment", "py_0", invoice_id="in_A", amount=money("10.01")),
        w.upsert("payment", "py_1", invoice_id="in_A", amount=money("40.00")),
    ])
    a = invoice_of(driver, "in_A")
    assert totals(a, "paid") == {"EUR": Decimal("50.01")}
    assert a["links"]["payments"] == ["py_0", "py_1"]
    assert "in_B" in [pid for _, pid in driver.projections]

    driver.feed(w.upsert("payment", "py_1", invoice_id="in_B", amount=money("40.00")))
    a, b = invoice_of(driver, "in_A"), invoice_of(driver, "in_B")
    assert totals(a, "paid") == {"EUR": Decimal("10.01")}
    assert totals(a, "outstanding") == {"EUR": Decimal("89.99")}
    assert a["links"]["payments"] == ["py_0"]
    assert totals(b, "paid") == {"EUR": Decimal("40.00")}
    assert totals(b, "outstanding") == {"EUR": Decimal("10.00")}
    assert b["links"]["payments"] == ["py_1"]
    assert ("payment", "py_1") not in live_members(driver.states["INV|in_A"])
    assert driver.states["INV|in_A"]["members"][("payment", "py_1")]["deleted"] is True
    assert ("payment", "py_1") in live_members(driver.states["INV|in_B"])

    driver.feed(w.upsert("payment", "py_1", invoice_id=None, amount=money("40.00")))
    assert totals(invoice_of(driver, "in_B"), "paid") == {}
    assert totals(invoice_of(driver, "in_B"), "outstanding") == {"EUR": Decimal("50.00")}


def test_deleted_payment_adjusts_the_paid_total_exactly():
    w = World()
    driver = driver_of([
        w.upsert("invoice", "in_1", amount_due=money("100.00")),
        w.upsert("payment", "py_1", invoice_id="in_1", amount=money("30.33")),
        w.upsert("payment", "py_2", invoice_id="in_1", amount=money("69.67")),
    ])
    assert invoice_of(driver, "in_1")["status"] == "paid"
    assert totals(invoice_of(driver, "in_1"), "paid") == {"EUR": Decimal("100.00")}
    driver.feed(w.delete("payment", "py_1"))
    inv = invoice_of(driver, "in_1")
    assert totals(inv, "paid") == {"EUR": Decimal("69.67")}
    assert totals(inv, "outstanding") == {"EUR": Decimal("30.33")}
    assert inv["status"] == "open"
    assert inv["fields"]["amount_paid"]["value"] == money("69.67")


def test_subscription_moving_between_opportunities_moves_its_invoices():
    w = World()
    driver = driver_of([
        w.upsert("opportunity", "OPP-1", stage="closed_won"),
        w.upsert("opportunity", "OPP-2", stage="closed_won"),
        w.upsert("subscription", "sub_1", crm_opportunity_id="OPP-1"),
        w.upsert("invoice", "in_1", subscription_id="sub_1", amount_due=money("20.00")),
    ])
    assert totals(driver.projections[("quote_to_cash", "OPP-1")], "billed") == {"EUR": Decimal("20.00")}
    driver.feed(w.upsert("subscription", "sub_1", crm_opportunity_id="OPP-2"))
    one, two = driver.projections[("quote_to_cash", "OPP-1")], driver.projections[("quote_to_cash", "OPP-2")]
    assert totals(one, "billed") == {} and one["links"]["invoices"] == [] and one["status"] == "awaiting_provisioning"
    assert totals(two, "billed") == {"EUR": Decimal("20.00")} and two["links"]["invoices"] == ["in_1"]


# --- no churn ------------------------------------------------------------------------------------------


def test_identical_rewrite_sends_nothing():
    w = World()
    pay = w.upsert("payment", "py_1", invoice_id="in_1", amount=money("5.00"))
    state, _, _ = run(None, entity_message(pay))
    again = w.rewrite(pay, same_position_text=True)
    assert again["position"]["order"] > pay["position"]["order"]
    state2, out, accepted = run(state, entity_message(again))
    assert accepted == APPLIED and state2["version"] == state["version"] + 1
    assert out.links == [] and out.projections == []


def test_unchanged_rewrite_produces_no_projection_output():
    _, events, driver = _invoice_world()
    w = World(start=100_000)  # later positions than _invoice_world's
    before = list(driver.emitted)
    projected = copy.deepcopy(driver.projections)
    driver.feed(w.rewrite(events[3]))  # the payment, same fields, new position
    driver.feed(w.rewrite(events[1]))  # the subscription, same fields, new position
    assert driver.emitted == before, "a re-write without a change re-emitted a projection"
    assert driver.projections == projected


def test_unchanged_link_data_is_not_resent():
    w = World()
    inv = w.upsert("invoice", "in_1", amount_due=money("100.00"))
    state, out, _ = run(None, Message("INV|in_1", ("invoice", "in_1"), [1], data=entity_message(inv).data))
    assert out.projections and out.links == []  # no subscription or order: nothing to link to
    # A posting member that is not linked anywhere else changes posted totals: one projection out.
    post = {"fields": {"amount": money("1.00")}, "system": "erp", "table": "ar_postings", "position": "x",
            "source_ts": 0, "correlation_id": "c"}
    state, out, _ = run(state, Message("INV|in_1", ("posting", "ar_1"), [1], data=post))
    assert len(out.projections) == 1
    # The same posting data at a newer order: no projection change, nothing sent.
    state, out, ok = run(state, Message("INV|in_1", ("posting", "ar_1"), [2], data=dict(post)))
    assert ok == APPLIED and out.projections == [] and out.links == []


# --- projection tombstones -----------------------------------------------------------------------------


def test_projection_tombstone_only_after_a_projection_was_emitted():
    pay = {"fields": {"invoice_id": "in_1", "amount": money("1.00"), "kind": "charge", "status": "succeeded"},
           "system": "billing", "table": "payments", "position": "p", "source_ts": 0, "correlation_id": "c"}
    state, out, _ = run(None, Message("INV|in_1", ("payment", "py_1"), [1], data=pay))
    assert out.projections == []  # no invoice yet: nothing projected, no tombstone either
    state, out, _ = run(state, Message("INV|in_1", ("payment", "py_1"), [2], deleted=True))
    assert out.projections == []

    w = World()
    inv = entity_message(w.upsert("invoice", "in_1", amount_due=money("3.00"))).data
    state, out, _ = run(state, Message("INV|in_1", ("invoice", "in_1"), [1], data=inv))
    assert len(out.projections) == 1 and out.projections[0][2]["id"] == "in_1"
    state, out, _ = run(state, Message("INV|in_1", ("invoice", "in_1"), [2], deleted=True))
    assert out.projections == [("invoice", "in_1", None)]
    # Once tombstoned, further changes of a rootless bucket send no second tombstone.
    state, out, _ = run(state, Message("INV|in_1", ("payment", "py_1"), [3], data=pay))
    assert out.projections == []


def test_driver_tombstones_quote_to_cash_only_after_emitting_it():
    w = World()
    driver = driver_of([
        w.upsert("opportunity", "OPP-1", stage="proposal"),
        w.upsert("opportunity", "OPP-1", stage="closed_lost"),
        w.delete("opportunity", "OPP-1"),
    ])
    assert emitted_for(driver, "quote_to_cash", "OPP-1") == []
    driver.feed(w.upsert("opportunity", "OPP-2", stage="closed_won"))
    driver.feed(w.upsert("opportunity", "OPP-2", stage="negotiation"))
    records = emitted_for(driver, "quote_to_cash", "OPP-2")
    assert len(records) == 2 and records[0]["status"] == "awaiting_provisioning" and records[1] is None
    assert ("quote_to_cash", "OPP-2") not in driver.projections
    driver.feed(w.delete("opportunity", "OPP-2"))
    assert emitted_for(driver, "quote_to_cash", "OPP-2") == records


def test_deleted_invoice_is_tombstoned_once():
    w = World()
    driver = driver_of([w.upsert("invoice", "in_1", amount_due=money("3.00"))])
    driver.feed(w.delete("invoice", "in_1"))
    driver.feed(w.upsert("payment", "py_1", invoice_id="in_1", amount=money("3.00")))
    records = emitted_for(driver, "invoice", "in_1")
    assert [r is None for r in records] == [False, True]
    assert ("invoice", "in_1") not in driver.projections

