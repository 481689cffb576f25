"""streams.positions: comparable orders for Debezium source positions and stable idempotency keys."""

from __future__ import annotations

import pytest

from streams.positions import debezium_position, idempotency_key, is_newer, snapshot_landing
from tests.unit.envelopes import sequence, source_block


def pos(offset=0, **kw):
    return debezium_position(source_block("crm", "accounts", **kw), offset)


def test_streamed_change():
    p = pos(lsn=36001656, last_commit=36001240, tx_id=882)
    assert p == {"kind": "stream", "lsn": 36001656, "tx_id": 882, "sequence": '["36001240","36001656"]',
                 "cursor": None, "order": [1, 36001240, 36001656]}


@pytest.mark.parametrize("marker", ["true", "first", "last", "first_in_data_collection", "last_in_data_collection",
                                    "TRUE"])
def test_snapshot_rows(marker):
    p = pos(lsn=35989824, snapshot=marker)
    assert p["kind"] == "snapshot" and p["order"] == [0, 35989824, 0]
    assert p["sequence"] == '[null,"35989824"]'


def test_legacy_boolean_snapshot_flag():
    source = source_block("crm", "accounts", lsn=35989824)
    source["snapshot"] = True
    assert debezium_position(source, 0)["order"] == [0, 35989824, 0]


def test_incremental_snapshot_reads_order_with_the_stream():
    p = pos(lsn=36005000, snapshot="incremental", seq=sequence(36004000, 36005000))
    assert p["kind"] == "snapshot" and p["order"] == [1, 36004000, 36005000]


def test_snapshot_sorts_before_any_streamed_change():
    snap = pos(lsn=99999999999, snapshot="last")
    first_stream = pos(lsn=1, last_commit=None)
    assert first_stream["order"] == [1, 1, 1]  # no last commit: the change's own LSN stands in
    assert is_newer(first_stream["order"], snap["order"])
    assert not is_newer(snap["order"], first_stream["order"])


def test_interleaved_transactions_order_by_last_commit_first():
    committed_last = pos(lsn=36003912, seq=sequence(36004384, 36003912))
    committed_first = pos(lsn=36004152, seq=sequence(36003776, 36004152))
    assert is_newer(committed_last["order"], committed_first["order"])
    assert not is_newer(committed_first["order"], committed_last["order"])


def test_string_lsn_and_txid_are_read_as_numbers():
    source = source_block("crm", "accounts", lsn=36001656)
    source["lsn"], source["txId"] = "36001656", "882"
    p = debezium_position(source, 0)
    assert p["lsn"] == 36001656 and p["tx_id"] == 882 and p["order"] == [1, 36001240, 36001656]


@pytest.mark.parametrize("seq", ["not json", "[]", "{}", '"x"', "[true, \"1\"]", "[\"abc\", \"1\"]"])
def test_broken_sequences_fall_back_to_the_lsn(seq):
    p = pos(lsn=36001656, seq=seq)
    assert p["order"] == [1, 36001656, 36001656]


def test_without_an_lsn_the_kafka_offset_orders():
    source = {"ts_ms": 1, "snapshot": "false"}
    assert debezium_position(source, 41)["order"] == [1, 0, 0, 41]
    assert is_newer(debezium_position(source, 42)["order"], debezium_position(source, 41)["order"])
    assert debezium_position({}, 5)["kind"] == "stream"


@pytest.mark.parametrize("bad", [True, 1.5, "abc", None, "-5"])
def test_non_integer_lsns_are_ignored(bad):
    source = source_block("crm", "accounts")
    source["lsn"] = bad
    assert debezium_position(source, 3)["lsn"] is None


def test_is_newer():
    assert is_newer([1, 0, 5], None)
    assert is_newer([1, 0, 6], [1, 0, 5]) and not is_newer([1, 0, 5], [1, 0, 5])
    assert is_newer((1, 2, 0), [1, 1, 9])
    assert not is_newer([0, 99, 0], [1, 0, 0])


def test_idempotency_key_is_stable_and_specific():
    p = pos(lsn=36001656)
    key = idempotency_key("crm", "accounts", "ACC-1", p)
    assert key == idempotency_key("crm", "accounts", "ACC-1", dict(p)) and len(key) == 32
    int(key, 16)
    assert key == idempotency_key("crm", "accounts", "ACC-1", debezium_position(source_block(
        "crm", "accounts", lsn=36001656), 12345))  # the Kafka offset is not part of a positioned change
    others = {
        idempotency_key("billing", "accounts", "ACC-1", p),
        idempotency_key("crm", "opportunities", "ACC-1", p),
        idempotency_key("crm", "accounts", "ACC-2", p),
        idempotency_key("crm", "accounts", "ACC-1", pos(lsn=36001657)),
        idempotency_key("crm", "accounts", "ACC-1", pos(lsn=36001656, snapshot="true")),
    }
    assert key not in others and len(others) == 5


def test_a_snapshot_lands_just_above_an_older_streamed_change_and_below_any_later_one():
    state = [1, 36000900, 36001000]
    landed = snapshot_landing(36050000, state, None)
    assert landed == [1, 36000900, 36001000, -1, 36050000]
    assert is_newer(landed, state)
    # a change committed after the snapshot changed the row after the state's change: its LSN is higher
    assert is_newer([1, 36000950, 36001100], landed)


def test_a_snapshot_never_lands_over_a_change_at_or_past_its_start():
    assert snapshot_landing(36001000, [1, 36000900, 36001000], None) is None
    assert snapshot_landing(36001000, [1, 36000900, 36002000], None) is None


def test_a_snapshot_lands_over_an_older_snapshot_and_again_where_it_landed():
    landed = snapshot_landing(36050000, [0, 36000000, 0], None)
    assert landed == [0, 36000000, 0, -1, 36050000]
    assert snapshot_landing(36050000, landed, 36050000) == landed
    assert snapshot_landing(36000000, landed, 36050000) is None
    assert snapshot_landing(36000000, [0, 36000000, 0], None) == [0, 36000000, 0]
    # overtaken by a streamed change: the same snapshot does not land again
    assert snapshot_landing(36050000, [1, 36049000, 36049500], 36050000) is None


def test_a_snapshot_never_lands_over_a_polled_row_or_without_an_lsn():
    assert snapshot_landing(36050000, [2, 1796648727976, 3], None) is None
    assert snapshot_landing(0, [1, 0, 0, 41], None) is None
    assert snapshot_landing(36050000, [1, 0, 0, 41], None) is None  # ordered by Kafka offset alone


def test_the_first_transaction_after_a_snapshot_orders_above_the_landed_snapshot():
    """Debezium starts a snapshot's offsets without a last commit, so the first transaction streamed after it has
    source.sequence [null, lsn]; it changed the row after the state's change, so it still wins."""
    landed = snapshot_landing(36050000, [1, 36000900, 36001000], None)
    first = pos(lsn=36040000, seq='[null,"36040000"]')
    assert first["order"] == [1, 36040000, 36040000] and is_newer(first["order"], landed)


def test_a_state_from_before_snapshot_lsn_was_kept_still_shows_its_snapshot():
    """An initial-snapshot state later repaired ([0, S, 0, seq]) keeps out a redelivery of that snapshot."""
    assert snapshot_landing(36000000, [0, 36000000, 0, 1796648727976123], None) is None
    assert snapshot_landing(36050000, [1, 5, 6, -1, 36050000, 1796648727976123], None) is None
    assert snapshot_landing(36060000, [0, 36000000, 0, 1796648727976123], None) == [
        0, 36000000, 0, 1796648727976123, -1, 36060000]
