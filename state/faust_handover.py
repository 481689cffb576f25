"""Faust's getmany with one change: a partition's fetched records after one it held back are not handed over,
and the partition is read again from the first record not handed over (state.handed_over says why).

The loop is Faust's own `Consumer.getmany` (faust-streaming 0.15.3), kept as it is apart from the bookkeeping.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import faust

from state.faust_consumer_hook import on_new_consumer
from state.handed_over import Handover, read_offset_after

log = logging.getLogger(__name__)


def install(app: faust.App) -> None:
    """Call once, before the app starts."""
    on_new_consumer(app, "handover", lambda consumer: _wrap(app, consumer))


def seek_lock(consumer: Any) -> asyncio.Lock:
    """Held around a decision to seek a stream partition and the seek itself (here and in the stall repair), so
    neither seeks on a read position the other has just moved."""
    lock = getattr(consumer, "_trueup_seek_lock", None)
    if lock is None:
        lock = consumer._trueup_seek_lock = asyncio.Lock()
    return lock


def _wrap(app: faust.App, consumer: Any) -> Any:
    async def getmany(timeout: float) -> AsyncIterator[tuple[Any, Any]]:
        records, active_partitions = await consumer._wait_next_records(timeout)
        generation_id = app.consumer_generation_id
        if records is None or consumer.should_stop:
            return
        if not consumer.flow_active:
            # As Faust: records fetched while the flow is stopped are read again from the committed offsets.
            try:
                await consumer.perform_seek()
            except Exception as exc:  # Faust logs and goes on here too: the next assignment seeks again
                log.warning("seek to committed offsets while the flow is stopped failed: %r", exc)
            return
        handover, to_message, buffered = Handover(), consumer._to_message, consumer._buffered_partitions
        read_before = {tp: consumer._read_offset.get(tp) for tp in records}
        for tp, record in consumer.scheduler.iterate(records):
            if not consumer.flow_active or app.consumer_generation_id != generation_id:
                # A stopped flow or a new generation means a new assignment, and Faust seeks every partition
                # to its commit after one; nothing after a held record was handed over, so no commit passes it.
                return
            deliverable = active_partitions is None or tp in active_partitions or tp in buffered
            if handover.admit(tp, record.offset, deliverable):
                app.monitor.track_tp_end_offset(tp, consumer.highwater(tp))
                yield tp, to_message(tp, record)
        if handover.held:
            expected = {tp: read_offset_after(read_before[tp], handover.last.get(tp)) for tp in handover.held}
            await _read_again(consumer, handover.rewinds({tp: [r.offset for r in records[tp]]
                                                          for tp in handover.held}), expected)

    consumer.getmany = getmany
    return consumer


async def _read_again(consumer: Any, rewinds: dict[Any, int], expected: dict[Any, int | None]) -> None:
    async with seek_lock(consumer):
        assigned = consumer.assignment()
        # Revoked meanwhile: its next owner reads it from the commit. Read position moved meanwhile: whoever
        # moved it (the stall repair) reads it again from there.
        wanted = {tp: offset for tp, offset in rewinds.items()
                  if tp in assigned and consumer._read_offset.get(tp) == expected[tp]}
        if not wanted or consumer.should_stop:
            return
        try:
            await consumer.seek_wait(wanted)
        except Exception as exc:  # a fetcher that raises here stops for good; the next assignment seeks again
            log.warning("fetched records not handed over left to the next assignment's seek (%r)", exc)
            return
    log.info("reading again from the first record not handed over: %s",
             ", ".join(f"{tp.topic}[{tp.partition}]@{offset}" for tp, offset in sorted(wanted.items(), key=str)))
