"""Faust's getmany with one change: a partition's fetched records after one it held back are not handed over,
and the partition is read again from the first record not handed over (state.handed_over says why).

The loop is Faust's own `Consumer.getmany` (faust-streaming 0.15.3), kept as it is apart from the bookkeeping.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

import faust
from aiokafka.errors import IllegalStateError

from state.faust_consumer_hook import on_new_consumer
from state.handed_over import Handover

log = logging.getLogger(__name__)


def install(app: faust.App) -> None:
    """Call once, before the app starts."""
    on_new_consumer(app, "handover", lambda consumer: _wrap(app, consumer))


def seek_lock(consumer: Any) -> asyncio.Lock:
    """Held around a decision to seek a stream partition and the seek itself, here and in the stall repair."""
    return _attached(consumer, "_trueup_seek_lock", asyncio.Lock)


def note_seek(consumer: Any, tps: Iterable[Any]) -> None:
    """Say that these partitions are being sought: the fetch loop neither hands over records it fetched for them
    before nor seeks them itself, as the position they were fetched from is gone."""
    counts = _seeks(consumer)
    for tp in tps:
        counts[tp] = counts.get(tp, 0) + 1


def _seeks(consumer: Any) -> dict:
    return _attached(consumer, "_trueup_seeks", dict)


def _attached(consumer: Any, name: str, make: Any) -> Any:
    """The consumer's own one of something, made on first use: it lives as long as the consumer."""
    value = getattr(consumer, name, None)
    if value is None:
        value = make()
        setattr(consumer, name, value)
    return value


def _wrap(app: faust.App, consumer: Any) -> Any:
    # Partitions held back and not yet sought (a seek failed): {tp: (offset, its seek count when held)}. Nothing
    # of them is handed over until a seek lands, so no commit passes the held records meanwhile.
    pending: dict[Any, tuple[int, int]] = {}

    async def getmany(timeout: float) -> AsyncIterator[tuple[Any, Any]]:
        if pending:
            await _read_again(app, consumer, pending)
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
        seeks = _seeks(consumer)
        seeks_before = {tp: seeks.get(tp, 0) for tp in records}
        for tp, record in consumer.scheduler.iterate(records):
            if not consumer.flow_active or app.consumer_generation_id != generation_id:
                # A stopped flow or a new generation means a new assignment, and Faust seeks every partition
                # to its commit after one; nothing after a held record was handed over, so no commit passes it.
                return
            deliverable = ((active_partitions is None or tp in active_partitions or tp in buffered)
                           and tp not in pending and seeks.get(tp, 0) == seeks_before[tp])
            if handover.admit(tp, record.offset, deliverable):
                app.monitor.track_tp_end_offset(tp, consumer.highwater(tp))
                yield tp, to_message(tp, record)
        if handover.held:
            for tp, offset in handover.held.items():
                pending.setdefault(tp, (offset, seeks_before[tp]))
            await _read_again(app, consumer, pending)

    consumer.getmany = getmany
    return consumer


async def _read_again(app: faust.App, consumer: Any, pending: dict[Any, tuple[int, int]]) -> None:
    """Seek what is pending to its first record not handed over; drop what no longer needs it."""
    async with seek_lock(consumer):
        if not consumer.flow_active or app.rebalancing or consumer.should_stop:
            pending.clear()  # a new assignment is coming, and Faust seeks every partition to its commit then
            return
        assigned, seeks = consumer.assignment(), _seeks(consumer)
        for tp, (_, count) in list(pending.items()):
            # Revoked: its next owner reads it from the commit. Sought by someone else (the stall repair): read
            # again from there.
            if tp not in assigned or seeks.get(tp, 0) != count:
                del pending[tp]
        wanted = {tp: offset for tp, (offset, _) in pending.items()}
        if not wanted:
            return
        try:
            await consumer.seek_wait(wanted)
        except (IllegalStateError, AssertionError) as exc:  # revoked while seeking: as above
            log.info("fetched records not handed over left to the next owner (%r)", exc)
            pending.clear()
            return
        except Exception as exc:
            # Still assigned, its position past the held records: nothing of it goes on until a seek lands.
            log.warning("seek to records not handed over failed, tried again before the next fetch: %r", exc)
            return
        pending.clear()
    log.info("reading again from the first record not handed over: %s",
             ", ".join(f"{tp.topic}[{tp.partition}]@{offset}" for tp, offset in sorted(wanted.items(), key=str)))
