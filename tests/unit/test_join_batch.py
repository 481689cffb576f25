"""A batch of join messages as a plain object: writes to a loaded bucket copy it once and never change it; a dict
sent to several targets is digested once, with the digest each target would get alone."""

from __future__ import annotations

import copy

from streams import join_topology, projections
from streams.join_batch import JoinBatch
from streams.identity_keys import domain_key, tax_key
from streams.join_topology import entity_message
from streams.joins import APPLIED, IGNORED, REPLAYED, Message, _digest, apply, live_members, split_key
from tests.unit.histories import World, money


def _invoice_state(w: World) -> dict:
    invoice = w.upsert("invoice", "in_1", amount_due=money("100.00"))
    message = Message("INV|in_1", ("invoice", "in_1"), [1], data=entity_message(invoice).data)
    state, _, _ = apply(None, message, join_topology.emits, projections.projector, source=("links", 0, 0))
    return state


def _payment(w: World, payment_id: str, order: int) -> Message:
    payment = w.upsert("payment", payment_id, invoice_id="in_1", amount=money("10.00"))
    return Message("INV|in_1", ("payment", payment_id), [order], data=entity_message(payment).data)


def test_writes_to_a_loaded_bucket_leave_the_loaded_state_as_it_was():
    w = World()
    loaded = _invoice_state(w)
    as_loaded = copy.deepcopy(loaded)
    batch = JoinBatch(join_topology.emits, projections.projector)
    batch.load("INV|in_1", loaded)
    statuses = [batch.write(_payment(w, f"py_{n}", 10 + n), ("links", 1, n)) for n in range(3)]
    assert statuses == [APPLIED] * 3
    assert loaded == as_loaded, "a batch write changed the state it loaded"
    [(bucket, touched, out)] = list(batch.finish())
    assert bucket == "INV|in_1" and touched.before is loaded
    payments = sorted(mid for kind, mid in live_members(touched.state) if kind == "payment")
    assert payments == ["py_0", "py_1", "py_2"]
    assert touched.state["version"] == loaded["version"] + 3
    assert out.projections, "the invoice view took three payments and projected nothing"


def test_a_batch_ends_where_one_message_at_a_time_ends():
    w = World()
    start = _invoice_state(w)
    messages = [_payment(w, "py_1", 10), _payment(w, "py_2", 11), _payment(w, "py_1", 12)]
    one_by_one = start
    for n, message in enumerate(messages):
        one_by_one, _, _ = apply(one_by_one, message, join_topology.emits, projections.projector,
                                 source=("links", 1, n))
    batch = JoinBatch(join_topology.emits, projections.projector)
    batch.load("INV|in_1", start)
    for n, message in enumerate(messages):
        batch.write(message, ("links", 1, n))
    [(_, touched, _)] = list(batch.finish())
    assert touched.state["members"] == one_by_one["members"]
    assert touched.state["routes"] == one_by_one["routes"]
    assert touched.state["projections"] == one_by_one["projections"]


def test_a_replayed_or_ignored_write_before_the_first_applied_one_leaves_the_loaded_state_as_it_was():
    w = World()
    loaded = _invoice_state(w)  # its invoice member was written by delivery ("links", 0, 0)
    as_loaded = copy.deepcopy(loaded)
    invoice = loaded["members"][("invoice", "in_1")]
    replay = Message("INV|in_1", ("invoice", "in_1"), list(invoice["order"]), data=invoice["data"])
    older = Message("INV|in_1", ("invoice", "in_1"), [0], data=invoice["data"])
    batch = JoinBatch(join_topology.emits, projections.projector)
    batch.load("INV|in_1", loaded)
    assert batch.write(replay, ("links", 0, 0)) == REPLAYED
    assert batch.write(older, ("links", 1, 0)) == IGNORED
    assert batch.write(_payment(w, "py_1", 10), ("links", 1, 1)) == APPLIED
    assert batch.write(_payment(w, "py_2", 11), ("links", 1, 2)) == APPLIED
    assert loaded == as_loaded, "a write after a replayed or ignored one changed the state it loaded"
    [(_, touched, _)] = list(batch.finish())
    assert {mid for kind, mid in touched.state["members"] if kind == "payment"} == {"py_1", "py_2"}


def test_one_dict_sent_to_several_targets_is_routed_with_its_own_digest_to_each():
    w = World()
    account = w.upsert("account", "acc_1", billing_customer_id="cus_1", erp_customer_no="C-1",
                       domain="example.com", tax_id="SE123")
    state, out, _ = apply(None, entity_message(account), join_topology.emits, projections.projector, source=1)
    # The same targets and data, asked of the topology again and digested one by one without the memo.
    desired = join_topology.emits(*split_key(entity_message(account).bucket), live_members(state))
    assert sorted(desired) == sorted(["ACC|acc_1", "BCL|cus_1", "ECL|C-1", "DOM|" + domain_key("example.com"),
                                      "TAX|" + tax_key("SE123")])
    assert {target: digest for target, (_, digest) in state["routes"].items()} == {
        target: _digest(data) for target, (_, data) in desired.items()}
    assert sorted(link.bucket for link in out.links) == sorted(desired)
