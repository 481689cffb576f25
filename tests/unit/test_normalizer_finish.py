"""streams.normalizer.finish: duplicates, stale changes, snapshot/stream ordering, TOAST placeholders, and the
canonical event it builds. Pure logic."""

from __future__ import annotations

from decimal import Decimal

import pytest

from streams.normalizer import Dropped, Parsed, parse, finish
from tests.unit.envelopes import (
    UNAVAILABLE,
    data_record,
    envelope,
    record,
    row,
    sequence,
    shipped_mapping,
    topic,
    unwrapped,
)

OPP = ("crm", "opportunities")
CAPTURED = 1795814156000


@pytest.fixture(scope="module")
def mapping():
    return shipped_mapping()


def change(mapping, op="u", *, offset=7, table=OPP, **kw) -> Parsed:
    out = parse(data_record(*table, op, offset=offset, **kw), mapping)
    assert isinstance(out, Parsed), out
    return out


def apply(parsed: Parsed, state):
    event, new_state, dropped = finish(parsed, state, CAPTURED)
    return event, new_state, dropped


# --- the event ---------------------------------------------------------------------------------------------


def test_first_change_builds_the_event_and_the_state(mapping):
    p = change(mapping, "c")
    event, state, dropped = apply(p, None)
    assert dropped is None
    assert event["idempotency_key"] == p.idempotency_key and len(event["idempotency_key"]) == 32
    assert event["correlation_id"] == "crm-tx-882"
    assert event["entity_type"] == "opportunity" and event["entity_id"] == "OPP-0001"
    assert event["system"] == "crm" and event["source_table"] == "opportunities" and event["op"] == "create"
    assert event["position"]["order"] == [1, 36001240, 36001656] and event["position"]["kind"] == "stream"
    assert event["source_ts"] == 1795814155780 and event["captured_ts"] == CAPTURED
    assert event["after"] == p.after and event["before"] is None
    assert event["after"]["amount"] == {"amount": Decimal("1200.00"), "currency": "EUR"}
    assert event["extra"] == p.extra and event["unavailable"] == [] and event["repair"] is False
    assert state == {"order": [1, 36001240, 36001656], "fields": p.after}


def test_finish_does_not_mutate_its_inputs(mapping):
    first = change(mapping, "c")
    _, state, _ = apply(first, None)
    snapshot_state = {"order": list(state["order"]), "fields": dict(state["fields"])}
    p = change(mapping, "u", lsn=36002000, last_commit=36001900,
               after=row(*OPP, amount=UNAVAILABLE, stage="negotiation"))
    after_before = dict(p.after)
    event, new_state, _ = apply(p, state)
    assert state == snapshot_state
    assert p.after == after_before and "amount" not in p.after
    assert new_state is not state


def test_delete_leaves_empty_fields(mapping):
    _, state, _ = apply(change(mapping, "c"), None)
    event, state, dropped = apply(change(mapping, "d", lsn=36002000, last_commit=36001900), state)
    assert dropped is None and event["op"] == "delete" and event["after"] is None
    assert event["before"]["stage"] == "proposal"
    assert state == {"order": [1, 36001900, 36002000], "fields": {}}


# --- 9. duplicates, staleness, ordering --------------------------------------------------------------------


def test_a_redelivered_change_is_a_duplicate(mapping):
    p = change(mapping, offset=7)
    _, state, _ = apply(p, None)
    again = change(mapping, offset=7)
    assert apply(again, state) == (None, None, Dropped("duplicate"))
    # the same change re-delivered at another Kafka offset is the same change
    moved = change(mapping, offset=9001)
    assert moved.idempotency_key == p.idempotency_key
    assert apply(moved, state) == (None, None, Dropped("duplicate"))


def test_an_older_change_is_stale(mapping):
    new = change(mapping, lsn=36002000, last_commit=36001900, after=row(*OPP, stage="negotiation"))
    old = change(mapping, lsn=36001656, last_commit=36001240, after=row(*OPP, stage="proposal"))
    _, state, _ = apply(new, None)
    assert apply(old, state) == (None, None, Dropped("stale"))


def test_a_newer_change_applies(mapping):
    old = change(mapping, lsn=36001656, last_commit=36001240, after=row(*OPP, stage="proposal"))
    new = change(mapping, lsn=36002000, last_commit=36001900, after=row(*OPP, stage="negotiation"))
    _, state, _ = apply(old, None)
    event, state2, dropped = apply(new, state)
    assert dropped is None and event["after"]["stage"] == "negotiation"
    assert state2["order"] == [1, 36001900, 36002000] and state2["fields"]["stage"] == "negotiation"


def test_a_stream_change_after_the_snapshot_always_applies(mapping):
    """Snapshot rows order [0, lsn, 0]; a streamed change [1, last_commit, lsn] is newer even with a lower LSN."""
    snap = change(mapping, "r", lsn=35989824, tx_id=870, after=row(*OPP, stage="proposal"))
    assert snap.position["kind"] == "snapshot" and snap.position["order"] == [0, 35989824, 0]
    assert snap.position["sequence"] == '[null,"35989824"]'
    overlapping = change(mapping, "u", lsn=35989000, last_commit=35988000, after=row(*OPP, stage="negotiation"))
    assert overlapping.position["lsn"] < snap.position["lsn"]
    _, state, _ = apply(snap, None)
    event, state, dropped = apply(overlapping, state)
    assert dropped is None and event["after"]["stage"] == "negotiation"
    # and the snapshot row replayed afterwards changes nothing
    assert apply(snap, state) == (None, None, Dropped("stale"))


@pytest.mark.parametrize("marker", ["true", "first", "last", "first_in_data_collection",
                                    "last_in_data_collection"])
def test_every_snapshot_marker_orders_before_streaming(mapping, marker):
    snap = change(mapping, "r", lsn=40000000, snapshot=marker)
    stream = change(mapping, "u", lsn=100, last_commit=None)
    assert snap.position["kind"] == "snapshot"
    _, state, _ = apply(snap, None)
    assert apply(stream, state)[2] is None


def test_interleaved_transactions_order_by_commit(mapping):
    """Transaction A writes first but commits last: pgoutput streams it after B, and its sequence's first part
    (the last commit before it) is higher, although its change LSN is lower."""
    a = change(mapping, lsn=36003912, seq=sequence(36004384, 36003912), tx_id=901,
               after=row(*OPP, stage="closed_won"))
    b = change(mapping, lsn=36004152, seq=sequence(36003776, 36004152), tx_id=902,
               after=row(*OPP, stage="negotiation"))
    assert a.position["order"] == [1, 36004384, 36003912]
    assert b.position["order"] == [1, 36003776, 36004152]
    # in stream order: B then A -> A wins
    _, state, _ = apply(b, None)
    event, state, dropped = apply(a, state)
    assert dropped is None and state["fields"]["stage"] == "closed_won"
    # redelivered out of order: A then B -> B is stale
    _, state, _ = apply(a, None)
    assert apply(b, state) == (None, None, Dropped("stale"))


def test_two_changes_of_one_row_in_one_transaction(mapping):
    first = change(mapping, lsn=36001600, seq=sequence(36001240, 36001600), after=row(*OPP, stage="proposal"))
    second = change(mapping, lsn=36001656, seq=sequence(36001240, 36001656), after=row(*OPP, stage="negotiation"))
    assert first.correlation_id == second.correlation_id
    assert first.idempotency_key != second.idempotency_key
    _, state, _ = apply(second, None)
    assert apply(first, state) == (None, None, Dropped("stale"))


def test_changes_without_positions_order_by_offset(mapping):
    rec = lambda offset, stage: record(topic(*OPP), unwrapped(row(*OPP, stage=stage)), offset=offset)  # noqa: E731
    early, late = parse(rec(10, "proposal"), mapping), parse(rec(11, "negotiation"), mapping)
    _, state, _ = apply(late, None)
    assert apply(early, state) == (None, None, Dropped("stale"))
    assert apply(parse(rec(11, "negotiation"), mapping), state) == (None, None, Dropped("duplicate"))


def test_state_per_entity_is_independent(mapping):
    """Two rows in one snapshot share its LSN; each has its own state, so neither is a duplicate."""
    a = change(mapping, "r", lsn=35989824, after=row(*OPP, id="OPP-A"))
    b = change(mapping, "r", lsn=35989824, after=row(*OPP, id="OPP-B"))
    assert a.state_key != b.state_key and a.idempotency_key != b.idempotency_key
    assert apply(a, None)[2] is None and apply(b, None)[2] is None


# --- 5. TOAST ----------------------------------------------------------------------------------------------


def test_toast_placeholder_is_filled_from_the_previous_state(mapping):
    _, state, _ = apply(change(mapping, "c"), None)
    toasted = change(mapping, lsn=36002000, last_commit=36001900,
                     after=row(*OPP, stage="negotiation", account_id=UNAVAILABLE, amount=UNAVAILABLE))
    assert toasted.unavailable == {"account_id", "amount"}
    assert "account_id" not in toasted.after and "amount" not in toasted.after
    event, state, _ = apply(toasted, state)
    assert event["after"]["account_id"] == "ACC-LSN1"
    assert event["after"]["amount"] == {"amount": Decimal("1200.00"), "currency": "EUR"}
    assert event["after"]["stage"] == "negotiation"
    assert event["unavailable"] == []
    assert state["fields"]["account_id"] == "ACC-LSN1"
    assert UNAVAILABLE not in repr(event)


def test_toast_placeholder_without_a_previous_value_is_null_and_listed(mapping):
    toasted = change(mapping, after=row(*OPP, account_id=UNAVAILABLE, currency=UNAVAILABLE))
    event, state, _ = apply(toasted, None)
    assert event["after"]["account_id"] is None and event["after"]["amount"] is None
    assert event["unavailable"] == ["account_id", "amount"]
    assert UNAVAILABLE not in repr(event)


def test_toast_after_a_delete_is_unknown(mapping):
    _, state, _ = apply(change(mapping, "c"), None)
    _, state, _ = apply(change(mapping, "d", lsn=36002000, last_commit=36001900), state)
    event, _, _ = apply(change(mapping, "c", lsn=36003000, last_commit=36002900,
                               after=row(*OPP, account_id=UNAVAILABLE)), state)
    assert event["after"]["account_id"] is None and event["unavailable"] == ["account_id"]


def test_an_unknown_toast_value_stays_unknown_on_the_next_change(mapping):
    """BUG: finish() stores the None it substituted for an unknown TOAST value in the state's fields, so the
    next change that again carries the placeholder "fills" it with that None and no longer lists it in
    `unavailable`: an unknown value silently becomes a real null."""
    first = change(mapping, lsn=36002000, last_commit=36001900, after=row(*OPP, account_id=UNAVAILABLE))
    event, state, _ = apply(first, None)
    assert event["unavailable"] == ["account_id"]
    second = change(mapping, lsn=36003000, last_commit=36002900,
                    after=row(*OPP, account_id=UNAVAILABLE, stage="negotiation"))
    event, state, _ = apply(second, state)
    assert event["after"]["account_id"] is None
    assert event["unavailable"] == ["account_id"]


def test_unavailable_unmapped_columns_stay_out_of_extra(mapping):
    p = change(mapping, after=row(*OPP, name=UNAVAILABLE))
    assert "name" not in p.extra and p.unavailable == set()


def test_unwrapped_snapshot_rows_order_before_streaming_without_a_snapshot_marker(mapping):
    """BUG: ExtractNewRecordState with add.fields=op,lsn (no source.snapshot) gives a snapshot read `__op: r`;
    parse() reports op "snapshot" but debezium_position sees no snapshot marker and orders it as a streamed
    change [1, 0, lsn], so a streamed change with a lower LSN (and no sequence) is dropped as stale."""
    snap = parse(record(topic(*OPP), unwrapped(row(*OPP, stage="proposal"), op="r", lsn=35989824)), mapping)
    stream = parse(record(topic(*OPP), unwrapped(row(*OPP, stage="negotiation"), op="u", lsn=35989000)), mapping)
    assert snap.op == "snapshot"
    assert snap.position["kind"] == "snapshot"
    _, state, _ = apply(snap, None)
    event, state, dropped = apply(stream, state)
    assert dropped is None and state["fields"]["stage"] == "negotiation"


def test_a_replay_of_the_record_that_wrote_the_state_is_sent_again_other_copies_are_not():
    """A crash can lose the send after the state write: the same Kafka record coming back must re-send."""
    parsed = parse(data_record("crm", "opportunities", "c", lsn=700, offset=5), shipped_mapping())
    source = ("crm.public.opportunities", 0, 5)
    event, state, dropped = finish(parsed, None, 1, source)
    assert dropped is None and state["source"] == source
    again, new_state, replay = finish(parsed, state, 2, source)
    assert replay == Dropped("replay") and new_state is None
    assert again["idempotency_key"] == event["idempotency_key"] and again["after"] == event["after"]
    copy, copy_state, duplicate = finish(parsed, state, 3, ("crm.public.opportunities", 0, 6))
    assert (copy, copy_state, duplicate) == (None, None, Dropped("duplicate"))


def _repair_record(mapping, *, seq: int, offset: int, stage: str) -> Parsed:
    """A row `trueup verify --repair` re-read from the source, sent to the row's own raw partition."""
    value = envelope("crm", "opportunities", "r", after={**row("crm", "opportunities"), "stage": stage})
    value["source"] = {**value["source"], "connector": "trueup-repair", "repair_seq": seq, "reason": "drift"}
    parsed = parse(record(topic("crm", "opportunities"), value, key={"id": "OPP-0001"}, offset=offset), mapping)
    assert isinstance(parsed, Parsed) and parsed.repair, parsed
    return parsed


RAW = "crm.public.opportunities"


def test_a_replay_of_the_repair_that_wrote_the_state_is_sent_again_other_copies_are_not(mapping):
    """As for any change: a crash can lose the repair's send after its state write."""
    _, state, _ = finish(change(mapping, "c", lsn=700, offset=5), None, 1, (RAW, 0, 5))
    repair = _repair_record(mapping, seq=1_795_814_157_000_000, offset=6, stage="negotiation")
    event, repaired, dropped = finish(repair, state, 2, (RAW, 0, 6))
    assert dropped is None and event["repair"] is True and repaired["fields"]["stage"] == "negotiation"
    assert repaired["order"] == [*state["order"], 1_795_814_157_000_000] == event["position"]["order"]
    assert repaired["repaired"] == [RAW, 0, 6]
    again, unchanged, replay = finish(repair, repaired, 3, (RAW, 0, 6))
    assert replay == Dropped("replay") and unchanged is None
    assert again["position"]["order"] == event["position"]["order"] and again["after"] == event["after"]
    assert again["idempotency_key"] == event["idempotency_key"] and again["repair"] is True
    assert finish(repair, repaired, 4, (RAW, 0, 9)) == (None, None, Dropped("duplicate"))


def test_a_replay_from_before_a_repair_leaves_the_newer_change_that_followed_it(mapping):
    """Change, repair, newer change; then a crash replays the partition from the first change."""
    first = change(mapping, "c", lsn=700, offset=5)
    repair = _repair_record(mapping, seq=1_795_814_157_000_000, offset=6, stage="negotiation")
    newer = change(mapping, "u", lsn=900, offset=8, after={**row("crm", "opportunities"), "stage": "closed_won"})
    _, state, _ = finish(first, None, 1, (RAW, 0, 5))
    _, state, _ = finish(repair, state, 2, (RAW, 0, 6))
    event, state, dropped = finish(newer, state, 3, (RAW, 0, 8))
    assert dropped is None and state["fields"]["stage"] == "closed_won"
    assert state["repaired"] == [RAW, 0, 6]  # kept by every later change
    assert finish(first, state, 4, (RAW, 0, 5)) == (None, None, Dropped("stale"))
    assert finish(repair, state, 5, (RAW, 0, 6)) == (None, None, Dropped("stale"))
    again, unchanged, replay = finish(newer, state, 6, (RAW, 0, 8))
    assert replay == Dropped("replay") and unchanged is None and again["after"]["stage"] == "closed_won"


def test_a_later_repair_lands_whatever_its_clock_and_an_earlier_one_never_lands_again(mapping):
    _, state, _ = finish(change(mapping, "c", lsn=700, offset=5), None, 1, (RAW, 0, 5))
    earlier = _repair_record(mapping, seq=2_000, offset=6, stage="negotiation")
    later = _repair_record(mapping, seq=1_000, offset=7, stage="closed_lost")  # timed by a clock behind
    _, state, _ = finish(earlier, state, 2, (RAW, 0, 6))
    event, state, dropped = finish(later, state, 3, (RAW, 0, 7))
    assert dropped is None and state["fields"]["stage"] == "closed_lost" and state["repaired"] == [RAW, 0, 7]
    assert finish(earlier, state, 4, (RAW, 0, 6)) == (None, None, Dropped("stale"))


# --- a snapshot after streaming (offsets lost, a blocking snapshot asked for) --------------------------------


def test_a_snapshot_after_streaming_lands_over_older_changes_and_below_later_ones(mapping):
    """The connector lost its offsets and snapshotted again at S: the snapshot is the only record of what was
    committed while nobody streamed, so it lands over the streamed state; a change in flight at S comes after it."""
    created = change(mapping, "c", lsn=36001000, last_commit=36000900, after=row(*OPP, stage="proposal"), offset=1)
    _, state, _ = apply(created, None)
    snap = change(mapping, "r", lsn=36050000, after=row(*OPP, stage="closed_lost"), offset=40)
    event, state, dropped = apply(snap, state)
    assert dropped is None and event["op"] == "snapshot" and event["after"]["stage"] == "closed_lost"
    assert state["order"] == [1, 36000900, 36001000, -1, 36050000] == event["position"]["order"]
    assert state["snapshot_lsn"] == 36050000 and state["fields"]["stage"] == "closed_lost"
    # the streamed change before it, delivered again, is stale; so is the snapshot's own copy once overtaken
    assert apply(created, state) == (None, None, Dropped("stale"))
    in_flight = change(mapping, "u", lsn=36040000, last_commit=36030000, after=row(*OPP, stage="closed_won"),
                       offset=41)
    event, state, dropped = apply(in_flight, state)
    assert dropped is None and state["fields"]["stage"] == "closed_won"
    assert state["snapshot_lsn"] == 36050000  # kept, so the snapshot cannot land again below this change
    assert apply(snap, state) == (None, None, Dropped("stale"))


def test_a_snapshot_read_that_wrote_the_state_is_sent_again_other_copies_are_duplicates(mapping):
    _, state, _ = finish(change(mapping, "c", lsn=36001000, last_commit=36000900), None, 1, ("t", 0, 1))
    snap = change(mapping, "r", lsn=36050000, after=row(*OPP, stage="closed_lost"))
    event, state, _ = finish(snap, state, 2, ("t", 0, 40))
    again, new_state, replay = finish(snap, state, 3, ("t", 0, 40))
    assert replay == Dropped("replay") and new_state is None
    assert again["position"]["order"] == event["position"]["order"] and again["after"] == event["after"]
    assert finish(snap, state, 4, ("t", 0, 77)) == (None, None, Dropped("duplicate"))


def test_a_snapshot_older_than_the_state_is_stale(mapping):
    later = change(mapping, "u", lsn=36060000, last_commit=36059000, after=row(*OPP, stage="closed_won"))
    _, state, _ = apply(later, None)
    assert apply(change(mapping, "r", lsn=36050000), state) == (None, None, Dropped("stale"))
    # a second snapshot lands over the first; the first, delivered again, is stale
    _, state, _ = apply(change(mapping, "r", lsn=36050000, after=row(*OPP, stage="proposal")), None)
    assert state["order"] == [0, 36050000, 0]
    _, state, dropped = apply(change(mapping, "r", lsn=36070000, after=row(*OPP, stage="closed_lost")), state)
    assert dropped is None and state["order"] == [0, 36050000, 0, -1, 36070000]
    assert state["fields"]["stage"] == "closed_lost"
    assert apply(change(mapping, "r", lsn=36050000), state) == (None, None, Dropped("stale"))


def test_a_snapshot_without_an_lsn_never_lands_over_a_state(mapping):
    _, state, _ = apply(change(mapping, "u", lsn=36001000, last_commit=36000900), None)
    unwrapped_snap = parse(record(topic(*OPP), unwrapped(row(*OPP, stage="closed_lost"), op="r",
                                                         source_snapshot="true")), mapping)
    assert unwrapped_snap.position["order"] == [0, 0, 0]
    assert apply(unwrapped_snap, state) == (None, None, Dropped("stale"))


def test_a_snapshot_read_out_of_topic_order_lands_only_on_a_row_without_state(mapping):
    """Replayed from the dead-letter topic, a snapshot read may come after a change that was in flight at its
    start: where it would land depends on what came before it, so it lands only where nothing came."""
    _, state, _ = apply(change(mapping, "u", lsn=36001000, last_commit=36000900), None)
    snap = change(mapping, "r", lsn=36050000, after=row(*OPP, stage="closed_lost"))
    assert finish(snap, state, CAPTURED, ("trueup.dlq.replay", 0, 3), in_order=False) == (
        None, None, Dropped("stale"))
    event, fresh, dropped = finish(snap, None, CAPTURED, ("trueup.dlq.replay", 0, 3), in_order=False)
    assert dropped is None and fresh["order"] == [0, 36050000, 0] and event["after"]["stage"] == "closed_lost"
