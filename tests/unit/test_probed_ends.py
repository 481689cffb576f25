"""Watermark ticks probe again only partitions whose reported end moved, or whose probe has grown old."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from state.partition_ends import probe_tails
from state.probed_ends import ProbedEnds

RAW, EVENTS = ("crm.accounts", 0), ("events.account", 0)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _newest(_tp, tail):
    return max((v for v in tail if v is not None), default=None)


def _probed(clock: Clock) -> ProbedEnds:
    return ProbedEnds({RAW}, _newest, refresh_s=5.0, clock=clock)


def test_an_unmoved_reported_end_keeps_the_probed_end_and_commit_time_until_refresh():
    clock = Clock()
    probed = _probed(clock)
    reported = {RAW: 41, EVENTS: 10}
    assert probed.to_probe(reported) == reported
    probed.update(reported, {RAW: (45, [7, 9]), EVENTS: (12, [])})
    assert probed.ends(reported) == {RAW: 45, EVENTS: 12} and probed.newest(RAW) == 9
    assert probed.to_probe(reported) == {}
    assert probed.to_probe({RAW: 46, EVENTS: 10}) == {RAW: 46}  # a new batch moved the reported end
    clock.now += 5.0
    assert probed.to_probe(reported) == reported  # old probes are checked again
    probed.clear()
    clock.now -= 5.0
    assert probed.to_probe(reported) == reported


def test_a_raw_tail_without_a_commit_time_is_probed_again():
    probed = _probed(Clock())
    probed.update({RAW: 41, EVENTS: 10}, {RAW: (45, [None, None]), EVENTS: (12, [])})
    assert probed.newest(RAW) is None and probed.to_probe({RAW: 41, EVENTS: 10}) == {RAW: 41}


def test_only_the_partitions_to_retry_are_probed_again_for_a_missing_time():
    probed = ProbedEnds({RAW, EVENTS}, _newest, refresh_s=5.0, clock=Clock(), retry={RAW})
    reported = {RAW: 41, EVENTS: 10}
    probed.update(reported, {RAW: (45, [None]), EVENTS: (12, [None])})
    assert probed.to_probe(reported) == {RAW: 41}  # EVENTS waits for its reported end to move


class FakeReader:
    """A group-less consumer whose fetch returned records from `start` to `end` for each partition."""

    def __init__(self, ends: dict) -> None:
        self.ends, self.seeks, self.asked = ends, {}, []

    def assign(self, tps) -> None:
        self.assigned = list(tps)

    def seek(self, tp, offset) -> None:
        self.seeks[tp] = offset

    async def getmany(self, *tps, timeout_ms=0, max_records=None):
        self.asked.append(({(tp.topic, tp.partition) for tp in tps}, max_records))
        out = {}
        for tp in tps:
            records = [SimpleNamespace(offset=o, value=o) for o in range(self.seeks[tp], self.ends[tp])]
            out[tp] = records[:max_records] if max_records else records
        return out

    def highwater(self, tp) -> int:
        return self.ends[tp]


def test_only_the_tails_asked_for_are_decoded_and_ends_come_from_the_high_watermark():
    from aiokafka import TopicPartition

    reader = FakeReader({TopicPartition(*RAW): 45, TopicPartition(*EVENTS): 12})
    found = asyncio.run(probe_tails(reader, {RAW: 41, EVENTS: 10}, tails={RAW}))
    assert found == {RAW: (45, [40, 41, 42, 43, 44]), EVENTS: (12, [])}
    assert reader.asked == [({RAW}, None)]  # the events partition's end came with the same fetch
    reader = FakeReader({TopicPartition(*RAW): 45, TopicPartition(*EVENTS): 12})
    found = asyncio.run(probe_tails(reader, {RAW: 41, EVENTS: 10}, tails=()))
    assert found == {RAW: (45, []), EVENTS: (12, [])} and reader.asked == [({RAW, EVENTS}, 1)]
