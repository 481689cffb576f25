"""Which fetched records are handed over, and where a partition is read again from (state.handed_over)."""

from __future__ import annotations

import asyncio

from state.handed_over import Handover
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
