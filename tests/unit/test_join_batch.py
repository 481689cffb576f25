"""A batch of join messages as a plain object: several writes to one bucket copy its loaded state once."""

from __future__ import annotations

import copy

from streams import join_topology, projections
from streams.join_batch import JoinBatch
from streams.join_topology import entity_message
from streams.joins import APPLIED, Message, apply, live_members
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
