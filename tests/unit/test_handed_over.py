"""Which fetched records are handed over, and where a partition is read again from (state.handed_over)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import SimpleNamespace

from faust.types import TP

from state.faust_handover import _wrap, note_seek, seek_lock
from state.handed_over import Handover
from streams.app import create_app
from trueup.settings import Settings


def test_a_fetch_handed_over_whole_reads_nothing_again():
    handover = Handover()
    fetched = {"a": [0, 1, 2], "b": [7, 8]}
    assert [handover.admit(tp, o, True) for tp, offsets in fetched.items() for o in offsets] == [True] * 5
    assert handover.held == {}


def test_nothing_after_a_held_record_of_its_partition_is_handed_over_and_it_is_read_again_from_there():
    handover = Handover()
    # Interleaved as Faust's scheduler hands partitions over; "a" is paused for its offset 5 only.
    order = [("a", 3, True), ("b", 0, True), ("a", 4, True), ("a", 5, False), ("b", 1, True), ("a", 6, True),
             ("a", 7, True), ("b", 2, True)]
    admitted = [(tp, o) for tp, o, deliverable in order if handover.admit(tp, o, deliverable)]
    assert admitted == [("a", 3), ("b", 0), ("a", 4), ("b", 1), ("b", 2)]
    assert handover.held == {"a": 5}


def test_offsets_with_gaps_read_again_from_the_next_fetched_offset():
    handover = Handover()
    for offset in (10, 13):
        assert handover.admit("a", offset, True)
    assert not handover.admit("a", 17, False)
    assert not handover.admit("a", 20, True)
    assert handover.held == {"a": 17}


def test_the_worker_consumer_hands_over_through_the_guarded_getmany(tmp_path):
    async def run():
        app = create_app(Settings(data_dir=tmp_path), "127.0.0.1:9", 0, 6099)
        return app.consumer.getmany

    getmany = asyncio.run(run())
    assert getmany.__module__ == "state.faust_handover"


A, B = TP("in", 0), TP("in", 1)


@dataclass
class Rec:
    offset: int


class FakeConsumer:
    """Only what the fetch loop reads of Faust's consumer; nothing here talks to a broker."""

    def __init__(self, records: dict, order: list, active: set) -> None:
        self.active = active
        self.fetch(records, order)
        self._buffered_partitions: set = set()
        self.should_stop, self.flow_active = False, True
        self.assigned = {A, B}
        self.seeks: list[dict] = []
        self.performed_seek = False
        self.seek_error: Exception | None = None

    def fetch(self, records: dict, order: list) -> None:
        """What the next fetch returns, and the order Faust's scheduler hands it over in."""
        self.records = records
        self.scheduler = SimpleNamespace(iterate=lambda records: ((tp, records[tp][i]) for tp, i in order))

    async def _wait_next_records(self, timeout):
        return self.records, self.active

    def _to_message(self, tp, record):
        return record.offset

    def highwater(self, tp):
        return 100

    def assignment(self):
        return self.assigned

    async def seek_wait(self, wanted):
        if self.seek_error:
            raise self.seek_error
        self.seeks.append(dict(wanted))

    async def perform_seek(self):
        self.performed_seek = True


class Loop:
    """The wrapped getmany of one consumer, drained as Faust's drain loop would, one fetch per call."""

    def __init__(self, consumer: FakeConsumer) -> None:
        self.app = SimpleNamespace(consumer_generation_id=1, rebalancing=False,
                                   monitor=SimpleNamespace(track_tp_end_offset=lambda tp, hw: None))
        self.getmany = _wrap(self.app, consumer).getmany

    async def drain(self, during=lambda tp, offset: None) -> list:
        handed = []
        async for tp, offset in self.getmany(timeout=1.0):
            handed.append((tp.partition, offset))
            during(tp, offset)
            await asyncio.sleep(0)  # as the drain loop awaits each delivery: other tasks run in between
        return handed


def _drain(consumer, during=lambda tp, offset: None) -> list:
    return asyncio.run(Loop(consumer).drain(during))


def _paused_at_a5() -> FakeConsumer:
    records = {A: [Rec(o) for o in (3, 4, 5, 6, 7)], B: [Rec(o) for o in (0, 1, 2)]}
    order = [(A, 0), (B, 0), (A, 1), (A, 2), (B, 1), (A, 3), (A, 4), (B, 2)]
    return FakeConsumer(records, order, active={A, B})


def _pause_a_for_one_record(consumer):
    def during(tp, offset):
        if (tp, offset) == (A, 4):
            consumer.active.discard(A)  # paused after a4 was handed over ...
        elif (tp, offset) == (B, 1):
            consumer.active.add(A)  # ... and resumed before a6 comes up
    return during


def test_the_fetch_loop_holds_back_a_paused_partition_from_there_on_and_reads_it_again():
    consumer = _paused_at_a5()
    handed = _drain(consumer, _pause_a_for_one_record(consumer))
    assert handed == [(0, 3), (1, 0), (0, 4), (1, 1), (1, 2)]
    assert consumer.seeks == [{A: 5}]


def test_a_partition_revoked_meanwhile_is_left_to_its_next_owner():
    consumer = _paused_at_a5()
    consumer.assigned = {B}
    _drain(consumer, _pause_a_for_one_record(consumer))
    assert consumer.seeks == []


def test_records_fetched_before_the_stall_repair_sought_their_partition_are_not_handed_over_after_it():
    consumer = _paused_at_a5()  # nothing paused: the repair seeks A while the fetch is being handed over

    def during(tp, offset):
        if (tp, offset) == (B, 0):
            note_seek(consumer, [A])
    assert _drain(consumer, during) == [(0, 3), (1, 0), (1, 1), (1, 2)]
    assert consumer.seeks == []  # the repair's seek stands: A is read again from where it put it


def test_the_read_again_waits_for_the_stall_repair_and_leaves_a_partition_it_sought():
    consumer = _paused_at_a5()

    async def run():
        lock = seek_lock(consumer)
        await lock.acquire()  # the repair is deciding
        loop = Loop(consumer)
        fetch = asyncio.ensure_future(loop.drain(_pause_a_for_one_record(consumer)))
        for _ in range(20):
            await asyncio.sleep(0)
        assert not fetch.done() and consumer.seeks == []  # the loop waits for the lock to seek
        note_seek(consumer, [A])  # the repair sought A to its commit
        lock.release()
        return await fetch

    assert asyncio.run(run()) == [(0, 3), (1, 0), (0, 4), (1, 1), (1, 2)]
    assert consumer.seeks == []


def test_a_failed_seek_holds_the_partition_back_until_a_seek_lands(caplog):
    consumer = _paused_at_a5()
    consumer.seek_error = RuntimeError("request timed out")

    async def run():
        loop = Loop(consumer)
        first = await loop.drain(_pause_a_for_one_record(consumer))
        # aiokafka's position went on past the held records: the next fetch starts after them.
        consumer.fetch({A: [Rec(8), Rec(9)], B: [Rec(3)]}, [(A, 0), (B, 0), (A, 1)])
        second = await loop.drain()
        consumer.seek_error = None
        consumer.fetch({A: [Rec(5), Rec(6)], B: [Rec(4)]}, [(A, 0), (B, 0), (A, 1)])
        third = await loop.drain()
        return first, second, third

    first, second, third = asyncio.run(run())
    assert first == [(0, 3), (1, 0), (0, 4), (1, 1), (1, 2)]
    assert second == [(1, 3)]  # nothing of A while its seek has not landed
    assert "tried again before the next fetch" in caplog.text
    assert consumer.seeks == [{A: 5}]  # landed before the third fetch, from the first record held
    assert third == [(0, 5), (1, 4), (0, 6)]


def test_a_stopped_flow_hands_over_nothing_more_and_leaves_the_seek_to_the_next_assignment():
    consumer = _paused_at_a5()
    pause = _pause_a_for_one_record(consumer)

    def during(tp, offset):
        pause(tp, offset)
        if (tp, offset) == (B, 1):
            consumer.flow_active = False  # a5 is held by now
    assert _drain(consumer, during) == [(0, 3), (1, 0), (0, 4), (1, 1)]
    assert consumer.seeks == [] and not consumer.performed_seek

    idle = _paused_at_a5()
    idle.flow_active = False
    assert _drain(idle) == []
    assert idle.performed_seek  # as Faust does when a fetch comes back while the flow is stopped
