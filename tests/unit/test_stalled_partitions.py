"""When a partition's commit counts as stuck: behind its end, unchanged and idle for the whole period."""

from __future__ import annotations

import asyncio

from faust.types import TP

from state.faust_stall_repair import _rewind
from state.stalled_partitions import StallWatch
from streams.app import create_app
from trueup.settings import Settings


def test_a_commit_stuck_behind_the_end_with_nothing_in_flight_is_read_again_once_per_period():
    w = StallWatch(stall_s=10)
    assert not w.check("p", 0, committed=14, end=25, busy=False)
    assert not w.check("p", 9.9, committed=14, end=25, busy=False)
    assert w.check("p", 10, committed=14, end=25, busy=False)
    assert not w.check("p", 15, committed=14, end=25, busy=False)  # a new period after a rewind
    assert w.check("p", 20, committed=14, end=25, busy=False)


def test_work_in_flight_a_moving_commit_or_a_caught_up_partition_restart_the_clock():
    w = StallWatch(stall_s=10)
    w.check("p", 0, committed=14, end=25, busy=False)
    assert not w.check("p", 8, committed=14, end=25, busy=True)
    assert not w.check("p", 17, committed=14, end=25, busy=False)  # 9 s idle since the busy tick
    assert not w.check("p", 18, committed=20, end=25, busy=False)  # the commit moved
    assert not w.check("p", 27, committed=20, end=25, busy=False)
    assert w.check("p", 28, committed=20, end=25, busy=False)
    assert not w.check("q", 0, committed=25, end=25, busy=False)
    assert not w.check("q", 50, committed=25, end=25, busy=False)  # at its end: nothing to wait for


def test_a_partition_never_committed_counts_from_offset_zero_and_forget_drops_revoked_ones():
    w = StallWatch(stall_s=1)
    w.check("p", 0, committed=None, end=3, busy=False)
    assert w.check("p", 1, committed=None, end=3, busy=False)
    assert not w.check("e", 0, committed=None, end=0, busy=False)
    assert not w.check("e", 5, committed=None, end=None, busy=False)
    w.check("q", 0, committed=1, end=3, busy=False)
    w.forget({"p"})
    assert not w.check("q", 5, committed=1, end=3, busy=False)  # revoked then reassigned: a fresh period


def test_a_rewind_pauses_the_partition_forgets_its_acks_seeks_to_its_commit_and_resumes_it(tmp_path):
    tp, other = TP("billing.public.invoices", 0), TP("billing.public.invoices", 1)
    seeks: list[dict] = []
    paused_during_seek: list[bool] = []

    async def run():
        app = create_app(Settings(data_dir=tmp_path), "127.0.0.1:9", 0, 6099)
        consumer = app.consumer
        thread = consumer._thread  # stands in for the consumer thread only: nothing here talks to a broker
        thread.assignment = lambda: {tp, other}

        async def seek_wait(partitions):
            paused_during_seek.append(tp in consumer._paused_partitions)
            seeks.append(dict(partitions))

        thread.seek_wait = seek_wait
        consumer._active_partitions = {tp, other}
        consumer._committed_offset[tp] = 14
        for offset in range(16, 25):
            consumer._acked[tp].append(offset)
            consumer._acked_index[tp].add(offset)
        consumer._acked[other].append(3)
        done = await _rewind(app, consumer, tp, 14, settle_s=0)
        return done, consumer

    done, consumer = asyncio.run(run())
    assert done and seeks == [{tp: 14}] and paused_during_seek == [True]
    assert tp not in consumer._acked and tp not in consumer._acked_index and consumer._acked[other] == [3]
    assert consumer._active_partitions == {tp, other} and tp not in consumer._paused_partitions


def test_a_partition_revoked_while_settling_is_left_to_its_new_owner(tmp_path):
    tp = TP("billing.public.invoices", 0)

    async def run():
        app = create_app(Settings(data_dir=tmp_path), "127.0.0.1:9", 0, 6099)
        consumer = app.consumer
        owned = {tp}
        consumer._thread.assignment = lambda: set(owned)
        consumer._active_partitions = {tp}
        consumer._acked[tp].append(20)

        async def revoke_meanwhile():
            owned.clear()

        await asyncio.gather(_rewind(app, consumer, tp, 14, settle_s=0.05), revoke_meanwhile())
        return consumer

    consumer = asyncio.run(run())
    assert consumer._acked[tp] == [20]  # nothing forgotten, no seek: the next owner starts from the commit

