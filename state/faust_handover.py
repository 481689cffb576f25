"""Faust's getmany with one change: a partition's fetched records after one it held back are not handed over,
and the partition is read again from the first record not handed over (state.handed_over says why).

The loop is Faust's own `Consumer.getmany` (faust-streaming 0.11), kept as it is apart from the bookkeeping.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import faust
from aiokafka.errors import IllegalStateError

from state.faust_consumer_hook import on_new_consumer
from state.handed_over import Handover

log = logging.getLogger(__name__)


def install(app: faust.App) -> None:
    """Call once, before the app starts."""
    on_new_consumer(app, "handover", lambda consumer: _wrap(app, consumer))


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
        for tp, record in consumer.scheduler.iterate(records):
            if not consumer.flow_active or app.consumer_generation_id != generation_id:
                break
            deliverable = active_partitions is None or tp in active_partitions or tp in buffered
            if handover.admit(tp, record.offset, deliverable):
                app.monitor.track_tp_end_offset(tp, consumer.highwater(tp))
                yield tp, to_message(tp, record)
        # Offsets listed only for partitions not handed over to their last record: the rare case.
        short = {tp: [r.offset for r in recs] for tp, recs in records.items()
                 if recs and handover.last.get(tp) != recs[-1].offset}
        if short:
            await _read_again(consumer, handover.rewinds(short))

    consumer.getmany = getmany
    return consumer


async def _read_again(consumer: Any, rewinds: dict[Any, int]) -> None:
    assigned = consumer.assignment()
    wanted = {tp: offset for tp, offset in rewinds.items() if tp in assigned}
    if not wanted or consumer.should_stop:
        return  # a partition revoked meanwhile is read by its next owner from the committed offset
    try:
        await consumer.seek_wait(wanted)
    except (IllegalStateError, AssertionError) as exc:  # revoked while seeking: the same holds
        log.info("fetched records not handed over left to the next assignment (%r)", exc)
        return
    log.info("reading again from the first record not handed over: %s",
             ", ".join(f"{tp.topic}[{tp.partition}]@{offset}" for tp, offset in sorted(wanted.items(), key=str)))
