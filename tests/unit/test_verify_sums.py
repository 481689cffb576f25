"""The sums a worker keeps on every write: equal to a fresh count of the state, coarsened and bisected exactly."""

from __future__ import annotations

import random

from streams import join_topology, projections
from streams.joins import apply
from streams.mapping import load_mapping
from streams.verify_core import bucket_of, state_row_hash
from streams.verify_sums import FINE_BUCKETS, LiveSums, is_coarsening
from tests.unit.histories import event, fields
from trueup.settings import PROJECT_ROOT

MAPPING = load_mapping(PROJECT_ROOT / "config" / "mapping.yaml")
SPECS = {"invoice": MAPPING.sources["billing"].tables["invoices"],
         "account": MAPPING.sources["crm"].tables["accounts"]}


def write(states: dict, sums: LiveSums, ev: dict) -> None:
    message = join_topology.entity_message(ev)
    before = states.get(message.bucket)
    after, _, _ = apply(before, message, join_topology.emits, projections.projector)
    states[message.bucket] = after
    sums.replace(0, message.bucket, before, after)


def built(sums: LiveSums) -> LiveSums:
    sums.build(0, [])
    return sums


def scan(states: dict, entity_type: str, buckets: int) -> dict[int, list[int]]:
    """The oracle: every live entity of a type counted from scratch."""
    out: dict[int, list[int]] = {}
    for key, state in states.items():
        kind, _, entity_id = key.partition("|")
        me = state["members"].get(("self", entity_id))
        if kind != entity_type or me is None or me["deleted"]:
            continue
        entry = out.setdefault(bucket_of(entity_id, buckets), [0, 0])
        entry[0] += 1
        entry[1] += state_row_hash(me["data"]["fields"], SPECS[entity_type])
    return out


def history(seed: int, n: int = 400) -> list[dict]:
    rng = random.Random(seed)
    out, order = [], 0
    for _ in range(n):
        order += 1
        entity_id = f"in_{rng.randrange(60)}"
        if rng.random() < 0.2:
            out.append(event("invoice", entity_id, None, order=[order], source_ts=1_000 + order))
        else:
            after = fields("invoice", entity_id, status=rng.choice(["open", "paid", "void"]))
            out.append(event("invoice", entity_id, after, order=[order], source_ts=1_000 + order))
    return out


def test_sums_kept_on_every_write_equal_a_fresh_scan_at_every_power_of_two():
    for seed in range(5):
        states: dict = {}
        sums = built(LiveSums(SPECS))
        for ev in history(seed):
            write(states, sums, ev)
        for buckets in (1, 16, 256, FINE_BUCKETS):
            rows, got, _ = sums.answer("invoice", buckets, None, 1 << 62, [0])
            assert got == scan(states, "invoice", buckets)
            assert rows == sum(c for c, _ in got.values())


def test_a_rebuild_from_state_equals_the_incremental_sums():
    states: dict = {}
    sums = built(LiveSums(SPECS))
    for ev in history(7):
        write(states, sums, ev)
    rebuilt = LiveSums(SPECS)
    assert rebuilt.build(0, states.items()) == sum(1 for k in states if k.startswith("invoice|"))
    assert rebuilt.answer("invoice", 256, None, 0, [0]) == sums.answer("invoice", 256, None, 0, [0])


def test_a_partition_not_rebuilt_yet_takes_no_writes_and_the_others_do():
    sums = LiveSums(SPECS)
    sums.build(1, [])
    states: dict = {}
    for partition, entity_id in ((0, "in_a"), (1, "in_b")):
        message = join_topology.entity_message(event("invoice", entity_id, fields("invoice", entity_id), order=[1]))
        states[message.bucket], _, _ = apply(None, message, join_topology.emits, projections.projector)
        sums.replace(partition, message.bucket, None, states[message.bucket])
    assert not sums.ready([0, 1]) and sums.ready([1])
    assert sums.answer("invoice", 1, None, 0, [1])[0] == 1
    sums.build(0, [(k, v) for k, v in states.items() if k == "invoice|in_a"])
    assert sums.answer("invoice", 1, None, 0, [0, 1])[0] == 2
    sums.forget({0})
    assert sums.ready([0]) and not sums.ready([1])


def test_a_stale_or_duplicate_write_changes_nothing():
    states: dict = {}
    sums = built(LiveSums(SPECS))
    write(states, sums, event("invoice", "in_1", fields("invoice", "in_1"), order=[5]))
    before = sums.answer("invoice", 16, None, 0, [0])
    write(states, sums, event("invoice", "in_1", fields("invoice", "in_1", status="void"), order=[4]))
    write(states, sums, event("invoice", "in_1", fields("invoice", "in_1"), order=[5]))
    assert sums.answer("invoice", 16, None, 0, [0]) == before


def test_buckets_moved_after_a_time_are_named_deletes_included():
    states: dict = {}
    sums = built(LiveSums(SPECS))
    write(states, sums, event("invoice", "in_old", fields("invoice", "in_old"), order=[1], source_ts=100))
    write(states, sums, event("invoice", "in_gone", fields("invoice", "in_gone"), order=[2], source_ts=100))
    write(states, sums, event("invoice", "in_gone", None, order=[3], source_ts=900))
    rows, got, newer = sums.answer("invoice", FINE_BUCKETS, None, 500, [0])
    assert rows == 1 and newer == [bucket_of("in_gone", FINE_BUCKETS)]
    assert sums.answer("invoice", FINE_BUCKETS, {bucket_of("in_old", FINE_BUCKETS)}, 500, [0])[2] == []


def test_asking_for_some_buckets_answers_only_those():
    states: dict = {}
    sums = built(LiveSums(SPECS))
    for ev in history(3):
        write(states, sums, ev)
    full = scan(states, "invoice", 64)
    wanted = set(list(full)[:3])
    _, got, _ = sums.answer("invoice", 64, wanted, 1 << 62, [0])
    assert got == {b: v for b, v in full.items() if b in wanted}


def test_join_buckets_and_other_types_hold_no_rows():
    states: dict = {}
    sums = built(LiveSums(SPECS))
    write(states, sums, event("payment", "py_1", fields("payment", "py_1", invoice_id="in_1"), order=[1]))
    assert sums.answer("invoice", 1, None, 0, [0]) == (0, {}, [])
    assert is_coarsening(256) and is_coarsening(1) and not is_coarsening(96) and not is_coarsening(1 << 17)
