"""Which fetched records are handed over, and where a partition is read again from (state.handed_over)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import SimpleNamespace

from faust.types import TP

from state.faust_handover import _wrap
from state.handed_over import Handover, read_offset_after
from streams.app import create_app
from trueup.settings import Settings


def test_a_fetch_handed_over_whole_reads_nothing_again():
    handover = Handover()
    fetched = {"a": [0, 1, 2], "b": [7, 8]}
    assert [handover.admit(tp, o, True) for tp, offsets in fetched.items() for o in offsets] == [True] * 5
    assert handover.rewinds(fetched) == {}


def test_nothing_after_a_held_record_of_its_partition_is_handed_over_and_it_is_read_again_from_there():
    handover = Handover()
    # Interleaved as Faust's scheduler hands partitions over; "a" is paused for its offset 5 only.
    order = [("a", 3, True), ("b", 0, True), ("a", 4, True), ("a", 5, False), ("b", 1, True), ("a", 6, True),
             ("a", 7, True), ("b", 2, True)]
    admitted = [(tp, o) for tp, o, deliverable in order if handover.admit(tp, o, deliverable)]
    assert admitted == [("a", 3), ("b", 0), ("a", 4), ("b", 1), ("b", 2)]
    assert handover.rewinds({"a": [3, 4, 5, 6, 7], "b": [0, 1, 2]}) == {"a": 5}


def test_a_fetch_left_early_reads_each_partition_again_from_its_first_record_not_handed_over():
    handover = Handover()
    assert handover.admit("a", 10, True)
    # The flow stopped here: the rest of "a" and all of "b" were never offered.
    assert handover.rewinds({"a": [10, 11, 12], "b": [4, 5], "c": []}) == {"a": 11, "b": 4}


def test_offsets_with_gaps_read_again_from_the_next_fetched_offset():
    handover = Handover()
    for offset in (10, 13):
        assert handover.admit("a", offset, True)
    assert not handover.admit("a", 17, False)
    assert handover.rewinds({"a": [10, 13, 17, 20]}) == {"a": 17}


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
        self.records, self.order, self.active = records, order, active
        self._read_offset: dict = {}
        self._buffered_partitions: set = set()
        self.should_stop, self.flow_active = False, True
        self.scheduler = SimpleNamespace(iterate=lambda records: ((tp, records[tp][i]) for tp, i in self.order))
        self.assigned = set(records)
        self.seeks: list[dict] = []
        self.performed_seek = False
        self.seek_error: Exception | None = None

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
        self._read_offset.update(wanted)

    async def perform_seek(self):
        self.performed_seek = True


def _drain(consumer, during=lambda tp, offset: None) -> list:
    """Faust's drain loop as far as the fetch loop sees it: each record handed over moves the read offset."""
    app = SimpleNamespace(consumer_generation_id=1, monitor=SimpleNamespace(track_tp_end_offset=lambda tp, hw: None))
    getmany = _wrap(app, consumer).getmany

    async def run():
        handed = []
        async for tp, offset in getmany(timeout=1.0):
            handed.append((tp.partition, offset))
            consumer._read_offset[tp] = offset
            during(tp, offset)
        return handed

    return asyncio.run(run())


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


def test_a_partition_revoked_or_sought_by_someone_else_meanwhile_is_not_sought_again():
    revoked = _paused_at_a5()
    revoked.assigned = {B}
    _drain(revoked, _pause_a_for_one_record(revoked))
    assert revoked.seeks == []

    moved = _paused_at_a5()
    pause = _pause_a_for_one_record(moved)

    def during(tp, offset):
        pause(tp, offset)
        if (tp, offset) == (B, 2):
            moved._read_offset[A] = 1  # the stall repair sought A back to its commit
    _drain(moved, during)
    assert moved.seeks == []


def test_a_failed_seek_is_logged_and_the_fetch_loop_goes_on(caplog):
    consumer = _paused_at_a5()
    consumer.seek_error = RuntimeError("request timed out")
    assert _drain(consumer, _pause_a_for_one_record(consumer))[-1] == (1, 2)
    assert "left to the next assignment" in caplog.text


def test_a_stopped_flow_hands_over_nothing_more_and_leaves_the_seek_to_the_next_assignment():
    consumer = _paused_at_a5()

    def during(tp, offset):
        if (tp, offset) == (A, 4):
            consumer.flow_active = False
    assert _drain(consumer, during) == [(0, 3), (1, 0), (0, 4)]
    assert consumer.seeks == [] and not consumer.performed_seek

    idle = _paused_at_a5()
    idle.flow_active = False
    assert _drain(idle) == []
    assert idle.performed_seek  # as Faust does when a fetch comes back while the flow is stopped


def test_the_read_offset_after_a_fetch_is_the_last_handed_over_unless_dropped_as_already_read():
    assert read_offset_after(None, None) is None
    assert read_offset_after(4, None) == 4
    assert read_offset_after(None, 7) == 7
    assert read_offset_after(4, 7) == 7
    assert read_offset_after(9, 7) == 9
