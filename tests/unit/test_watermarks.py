"""Source watermarks move by offset barriers through every stage, never by a clock."""

from __future__ import annotations

import json

import pytest

from streams.watermarks import (BARRIERS_PER_STAGE, Stages, Watermarks, acked_mark, commit_ts_ms, mark_covers,
                               newest_by_source, stage_name)

STAGES = Stages(raw={"crm": ("crm.accounts", "crm.hb"), "erp": ("erp.orders",)}, entities=("ev.account",),
                links="links")
ALL = [("crm.accounts", 0), ("crm.accounts", 1), ("crm.hb", 0), ("erp.orders", 0), ("ev.account", 0), ("links", 0)]


def in_flight(w: Watermarks, system: str) -> list[tuple[str, int]]:
    """(stage, covers_ms) of every barrier of a source in flight, stage by stage from raw, oldest first in one."""
    return [(stage_name(stage), b.covers_ms) for (s, stage), barriers in sorted(w.in_flight.items()) if s == system
            for b in barriers]


def ends(**by_topic) -> dict:
    """Partition 0 of each named topic ends there; every other partition is empty."""
    return {tp: by_topic.get(tp[0].replace(".", "_"), 0) if tp[1] == 0 else 0 for tp in ALL}


def test_commit_time_is_read_from_either_envelope_form_and_garbage_is_none():
    plain = {"op": "u", "source": {"ts_ms": 1700}}
    assert commit_ts_ms(json.dumps(plain).encode()) == 1700
    assert commit_ts_ms(json.dumps({"schema": {}, "payload": plain}).encode()) == 1700
    assert commit_ts_ms(b"\x00garbage") is None and commit_ts_ms(None) is None
    assert commit_ts_ms(b'{"source": {"ts_ms": true}}') is None and commit_ts_ms(b"[1]") is None


def test_a_snapshot_read_has_no_commit_time_and_the_runners_mark_has_one():
    for marker in ("true", "first", "last", "incremental"):
        assert commit_ts_ms(json.dumps({"op": "r", "source": {"ts_ms": 1700, "snapshot": marker}})) is None
    assert commit_ts_ms(json.dumps({"op": "u", "source": {"ts_ms": 1700, "snapshot": "false"}})) == 1700
    assert commit_ts_ms(acked_mark(2500)) == 2500
    assert commit_ts_ms(b'{"ts_ms": 1700}') is None  # Debezium's own heartbeat message carries a wall clock


def test_only_mark_topics_move_a_watermark_and_a_mark_covers_what_was_committed_before_it_less_the_skew():
    newest = {("crm.accounts", 0): 9_000, ("crm.accounts", 1): None, ("crm.hb", 0): 5_000, ("erp.orders", 0): 7_000}
    marks = newest_by_source(newest, {"crm.hb": "crm", "erp.hb": "erp"})
    assert marks == {"crm": 5_000, "erp": None}  # the newer data record on crm.accounts is no mark
    assert newest_by_source(newest, {"crm.accounts": "crm", "crm.hb": "crm"}) == {"crm": 9_000}
    assert mark_covers(marks, 10) == {"crm": 4_990, "erp": None}
    # A change committed in the same millisecond may follow the mark: never less than 1 ms.
    assert mark_covers(marks, 0) == {"crm": 4_999, "erp": None}


def test_a_watermark_passes_raw_events_and_every_link_hop_before_it_moves():
    w = Watermarks(STAGES, per_stage=1)  # one barrier per stage, so the later one waits in raw
    e = ends(crm_accounts=5, crm_hb=3, ev_account=7, links=9)
    # First step notes the newest commit time; the barrier is built from ends read at the next one.
    assert w.step({}, e, {"crm": 1_000, "erp": None}) == {} and in_flight(w, "crm") == []
    assert w.step({}, e, {}) == {}
    assert [stage for stage, _ in in_flight(w, "crm")] == ["raw"]
    w.step({("crm.accounts", 0): 5}, e, {})  # one raw partition passed, the heartbeat one not yet
    assert w.behind_by_stage("crm")[0]["waiting_on"] == [{"topic": "crm.hb", "partition": 0, "end": 3, "committed": 0}]
    committed = {("crm.accounts", 0): 5, ("crm.hb", 0): 3}
    assert w.step(committed, e, {"crm": 2_000}) == {}  # raw passed -> events
    assert [stage for stage, _ in in_flight(w, "crm")] == ["entity writes"]  # 2_000 is noted: its barrier starts next step
    w.step(committed, e, {})
    assert in_flight(w, "crm") == [("raw", 2_000), ("entity writes", 1_000)]
    committed[("ev.account", 0)] = 7
    assert w.step(committed, e, {}) == {}  # events passed -> links hop 1, which has records not yet committed
    assert in_flight(w, "crm") == [("entity writes", 2_000), ("links hop 1", 1_000)]
    committed[("links", 0)] = 9
    # Both barriers pass every stage with nothing pending in the same step: the later link hops were idle.
    assert w.step(committed, e, {}) == {"crm": 2_000} and w.marks == {"crm": 2_000, "erp": -1}
    assert in_flight(w, "crm") == []


def test_a_barrier_passes_idle_stages_at_once_but_stops_at_one_with_records_pending():
    w = Watermarks(STAGES)
    w.step({}, ends(crm_accounts=2), {"crm": 1_000})
    done_raw = {("crm.accounts", 0): 2}
    assert w.step(done_raw, ends(crm_accounts=2, ev_account=4), {}) == {}
    assert [stage for stage, _ in in_flight(w, "crm")] == ["entity writes"]
    # The events were committed; the links topic got 3 records after those commits were read: they hold it.
    assert w.step({**done_raw, ("ev.account", 0): 4}, ends(crm_accounts=2, ev_account=4, links=3), {}) == {}
    assert [stage for stage, _ in in_flight(w, "crm")] == ["links hop 1"]
    everything = {**done_raw, ("ev.account", 0): 4, ("links", 0): 3}
    assert w.step(everything, ends(crm_accounts=2, ev_account=4, links=3), {}) == {"crm": 1_000}


def test_a_bucket_few_hops_away_is_complete_once_its_stage_passes_before_the_deepest_one():
    w = Watermarks(STAGES)
    w.step({}, ends(crm_accounts=2), {"crm": 1_000})
    done = {("crm.accounts", 0): 2, ("ev.account", 0): 4}
    # Events committed, links hop 1 held by 3 records not yet committed.
    assert w.step(done, ends(crm_accounts=2, ev_account=4, links=3), {}) == {}
    assert w.marks_after(0) == {"crm": 1_000, "erp": -1}  # entity buckets are written
    assert w.marks_after(1)["crm"] == -1 and w.marks["crm"] == -1
    assert w.step({**done, ("links", 0): 3}, ends(crm_accounts=2, ev_account=4, links=3), {}) == {"crm": 1_000}
    assert w.marks_after(1)["crm"] == w.marks_after(3)["crm"] == w.marks["crm"] == 1_000
    assert w.marks_after(99) == w.marks


def test_a_barrier_held_behind_a_busy_stage_still_counts_for_the_stages_it_has_passed():
    w = Watermarks(STAGES, per_stage=1)
    w.step({}, ends(crm_accounts=2), {"crm": 1_000})
    first = {("crm.accounts", 0): 2, ("ev.account", 0): 4}
    assert w.step(first, ends(crm_accounts=2, ev_account=4, links=3), {"crm": 2_000}) == {}
    assert in_flight(w, "crm") == [("links hop 1", 1_000)]
    w.step(first, ends(crm_accounts=5, ev_account=4, links=3), {})  # the 2_000 barrier starts at raw
    # Its raw and events stages are committed while the 1_000 barrier still holds links hop 1.
    second = {("crm.accounts", 0): 5, ("ev.account", 0): 4}
    assert w.step(second, ends(crm_accounts=5, ev_account=4, links=3), {}) == {}
    assert in_flight(w, "crm") == [("entity writes", 2_000), ("links hop 1", 1_000)]
    assert w.marks_after(0)["crm"] == 2_000 and w.marks_after(1)["crm"] == -1


def test_a_stage_not_yet_committed_holds_the_watermark_however_long_it_takes():
    w = Watermarks(STAGES)
    e = ends(crm_accounts=5)
    w.step({}, e, {"crm": 1_000})
    for _ in range(50):
        assert w.step({("crm.accounts", 0): 4}, e, {"crm": 9_999}) == {}
    assert w.marks["crm"] == -1


def test_empty_partitions_never_hold_a_barrier():
    w = Watermarks(STAGES)
    e = ends()  # nothing anywhere: no commits needed
    w.step({}, e, {"erp": 500})
    for _ in range(1 + STAGES.count):
        w.step({}, e, {})
    assert w.marks["erp"] == 500


def test_marks_only_grow_while_barriers_queue_behind_a_stage_that_does_not_pass():
    w = Watermarks(STAGES)
    e = ends(crm_accounts=1)
    w.step({}, e, {"crm": 100})
    done = {("crm.accounts", 0): 1}
    seen = []
    for t in range(200, 2_000, 100):
        w.step(done, e, {"crm": t})
        seen.append(w.marks["crm"])
        assert len(in_flight(w, "crm")) <= STAGES.count * BARRIERS_PER_STAGE
    assert seen == sorted(seen) and seen[-1] > 100


def test_a_newer_barrier_starts_while_the_one_ahead_is_still_in_the_raw_stage():
    w = Watermarks(STAGES)
    w.step({}, ends(crm_accounts=2), {"crm": 1_000})
    w.step({}, ends(crm_accounts=5), {"crm": 2_000})  # 1_000 starts; 2_000 is noted
    w.step({}, ends(crm_accounts=7), {})  # 2_000 starts beside it, at the ends read now
    assert in_flight(w, "crm") == [("raw", 1_000), ("raw", 2_000)]
    # Committed past the first barrier's ends only: it moves on, the newer one stays.
    assert w.step({("crm.accounts", 0): 5}, ends(crm_accounts=7, ev_account=3), {}) == {}
    assert in_flight(w, "crm") == [("raw", 2_000), ("entity writes", 1_000)]
    assert w.reached["crm"][:2] == [1_000, -1]
    done = {("crm.accounts", 0): 7, ("ev.account", 0): 3}
    # Both pass the raw stage and the entity writes in one step; the newer one stands for both from there.
    assert w.step(done, ends(crm_accounts=7, ev_account=3), {}) == {"crm": 2_000}
    assert in_flight(w, "crm") == [] and w.marks["crm"] == 2_000


def test_barriers_pass_a_stage_in_order_even_if_a_newer_one_s_targets_are_met_first():
    w = Watermarks(STAGES)
    w.step({}, ends(crm_accounts=4), {"crm": 1_000})
    w.step({}, ends(crm_accounts=4), {"crm": 2_000})
    w.step({}, ends(crm_accounts=4, crm_hb=1), {})
    first, second = w.in_flight[("crm", 0)]
    # Targets only grow in practice; here the older barrier is made to wait on a partition the newer one skips.
    first.targets[("erp.orders", 0)] = 9
    assert w.step({("crm.accounts", 0): 4, ("crm.hb", 0): 1}, ends(crm_accounts=4, crm_hb=1), {}) == {}
    assert [covers for _, covers in in_flight(w, "crm")] == [1_000, 2_000] and w.reached["crm"][0] == -1


def test_a_full_stage_starts_no_more_barriers_until_one_leaves():
    w = Watermarks(STAGES, per_stage=2)
    held = ends(crm_accounts=9)
    w.step({}, held, {"crm": 100})
    for t in range(200, 1_000, 100):
        w.step({}, held, {"crm": t})
    assert [covers for _, covers in in_flight(w, "crm")] == [100, 200]
    w.step({("crm.accounts", 0): 9}, held, {})  # both leave together, the newest noted time starts next
    assert in_flight(w, "crm") == [] and w.marks["crm"] == 200
    w.step({("crm.accounts", 0): 9}, held, {})
    assert w.marks["crm"] == 900


def test_each_stage_a_barrier_passes_is_timed_from_when_it_entered_it():
    now = [10.0]
    w = Watermarks(STAGES, clock=lambda: now[0])
    w.step({}, ends(crm_accounts=2), {"crm": 1_000})
    now[0] = 10.1
    w.step({}, ends(crm_accounts=2), {})  # starts at raw
    now[0] = 10.4
    w.step({("crm.accounts", 0): 2}, ends(crm_accounts=2, ev_account=3), {})  # raw passed; entity writes wait
    assert w.stage_times() == [("raw", pytest.approx(0.3))]
    assert w.stage_times() == []  # each time is handed out once
    now[0] = 10.6
    assert w.step({("crm.accounts", 0): 2, ("ev.account", 0): 3}, ends(crm_accounts=2, ev_account=3), {}) == \
        {"crm": 1_000}
    # The idle link hops passed in the same step as the entity writes: no time in them.
    assert w.stage_times() == [("entity writes", pytest.approx(0.2)), ("links hop 1", 0.0), ("links hop 2", 0.0),
                               ("links hop 3", 0.0)]


def test_a_barrier_held_by_a_full_stage_is_timed_once_for_the_stage_it_passed():
    now = [0.0]
    w = Watermarks(STAGES, per_stage=1, clock=lambda: now[0])
    w.step({}, ends(crm_accounts=2), {"crm": 1_000})
    w.step({}, ends(crm_accounts=2), {"crm": 2_000})
    w.step({("crm.accounts", 0): 2}, ends(crm_accounts=4, ev_account=5), {})  # 1_000 waits at entity writes
    now[0] = 1.0
    w.step({("crm.accounts", 0): 2}, ends(crm_accounts=4, ev_account=5), {})  # 2_000 starts at raw
    w.stage_times()
    for step in range(2, 5):
        now[0] = step
        w.step({("crm.accounts", 0): 4}, ends(crm_accounts=4, ev_account=5), {})  # passed at 2, then held
    assert in_flight(w, "crm") == [("raw", 2_000), ("entity writes", 1_000)]
    assert w.stage_times() == [("raw", 1.0)]


def test_health_shows_one_entry_per_stage_with_what_its_oldest_barrier_waits_for():
    w = Watermarks(STAGES)
    w.step({}, ends(crm_accounts=2), {"crm": 1_000})
    w.step({}, ends(crm_accounts=5), {"crm": 2_000})  # 1_000 starts at these ends
    w.step({}, ends(crm_accounts=7), {"crm": 3_000})  # 2_000 starts; 3_000 is noted
    w.step({}, ends(crm_accounts=9), {})  # 3_000 starts: three barriers in the raw stage
    assert w.behind_by_stage("crm") == [
        {"stage": "raw", "barriers": 3, "covers_ms": 1_000, "newest_covers_ms": 3_000,
         "waiting_on": [{"topic": "crm.accounts", "partition": 0, "end": 5, "committed": 0}]},
    ]
    w.step({("crm.accounts", 0): 7}, ends(crm_accounts=9, ev_account=3), {})
    assert [(s["stage"], s["barriers"], s["covers_ms"], s["newest_covers_ms"])
            for s in w.behind_by_stage("crm")] == [("raw", 1, 3_000, 3_000), ("entity writes", 1, 2_000, 2_000)]
    # The two that passed the raw stage together entered the next one as one barrier, the newest.
    assert w.behind_by_stage("erp") == []
