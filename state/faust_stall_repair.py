"""Read again, from its committed offset, any stream partition whose Faust commit is stuck (state.stalled_partitions).

Re-reading is safe: delivery is at least once and every agent drops what it has already applied.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import faust
from aiokafka.errors import IllegalStateError

from state.faust_handover import note_seek, seek_lock
from state.faust_settled import tables_settled
from state.stalled_partitions import StallWatch

log = logging.getLogger(__name__)


def install(app: faust.App, stall_s: float, interval_s: float = 1.0, settle_s: float = 1.0) -> StallWatch:
    """Call before the app starts: a timer checks every assigned stream partition each interval_s."""
    watch = StallWatch(stall_s)

    @app.timer(interval=interval_s)
    async def repair_stalled_partitions() -> None:
        if not tables_settled(app):
            return
        consumer = app.consumer
        # Only what agents read and acknowledge: table changelogs (Faust makes them acks=False) and Faust's
        # own topics are never committed.
        assigned = {tp for tp in consumer.assignment() if app.topics.acks_enabled_for(tp.topic)}
        watch.forget(assigned)
        now = time.monotonic()
        taken, queued = _in_flight(app, consumer)  # once per tick, not once per partition
        for tp in sorted(assigned, key=str):
            committed = consumer._committed_offset.get(tp)
            if not committed:
                # Never committed: the seek after each assignment reads it from its beginning. A seek to the
                # beginning here leaves its position unknown until the broker answers, and Faust's livelock
                # check crashes the worker on such a position (seen with the broker frozen).
                continue
            if watch.check(tp, now, committed, consumer.highwater(tp), queued or tp in taken):
                await _rewind(app, consumer, tp, committed, settle_s)
                return  # the assignment may have changed meanwhile: the next tick looks again


def _in_flight(app: faust.App, consumer: Any) -> tuple[set, bool]:
    """Partitions with a record taken by an agent and not yet acknowledged; whether any fetched record waits."""
    taken = {m.tp for m in list(consumer._unacked_messages) if not m.acked}
    queued = any(getattr(c, "_queue", None) is not None and c._queue.qsize() for c in list(app.topics._topics))
    return taken, queued


async def _rewind(app: faust.App, consumer: Any, tp: Any, committed: int, settle_s: float) -> bool:
    """True if tp was sought to its commit; False if it was left (revoked, rebalancing or busy meanwhile)."""
    # Paused first, so records of tp still on their way to an agent are dropped (and read again), not handed
    # over after the seek, where they would mark the records in between as done.
    consumer.pause_partitions([tp])
    try:
        await asyncio.sleep(settle_s)
        async with seek_lock(consumer):  # the fetch loop's own read-again seek never lands after this one
            taken, queued = _in_flight(app, consumer)
            if app.rebalancing or tp not in consumer.assignment() or queued or tp in taken:
                return False
            log.warning("partition %s %s: commit stuck at %s with %d later record(s) acknowledged; reading it "
                        "again", tp.topic, tp.partition, committed, len(consumer._acked.get(tp) or []))
            # Forget what Faust holds for it, so the records read again are acknowledged and committed in order.
            consumer._acked.pop(tp, None)
            consumer._acked_index.pop(tp, None)
            consumer._gap.pop(tp, None)
            note_seek(consumer, [tp])  # records of tp the fetch loop still holds from before are not handed over
            await consumer.seek_wait({tp: committed})  # in the consumer's own thread; sets the read offset
            return True
    except (IllegalStateError, AssertionError) as exc:  # revoked meanwhile: its new owner reads from the commit
        log.warning("partition %s %s: not read again (%r)", tp.topic, tp.partition, exc)
        return False
    finally:
        if not app.rebalancing and tp in consumer.assignment():
            consumer.resume_partitions([tp])
