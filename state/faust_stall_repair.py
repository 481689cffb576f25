"""Read again, from its committed offset, any stream partition whose Faust commit is stuck (state.stalled_partitions).

Re-reading is safe: delivery is at least once and every agent drops what it has already applied.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import faust

from state.stalled_partitions import StallWatch

log = logging.getLogger(__name__)


def install(app: faust.App, stall_s: float, interval_s: float = 1.0) -> StallWatch:
    """Call before the app starts: a timer checks every assigned stream partition each interval_s."""
    watch = StallWatch(stall_s)

    @app.timer(interval=interval_s)
    async def repair_stalled_partitions() -> None:
        if not app.tables.recovery.completed.is_set() or app.rebalancing:
            return
        consumer = app.consumer
        # Only what agents read and acknowledge: changelogs and Faust's own topics are never committed.
        assigned = {tp for tp in consumer.assignment() if app.topics.acks_enabled_for(tp.topic)
                    and tp.topic not in app.tables.changelog_topics}
        watch.forget(assigned)
        in_flight = {message.tp for message in list(consumer._unacked_messages)}
        queued = _queues_busy(app)
        now = time.monotonic()
        for tp in sorted(assigned, key=str):
            committed = consumer._committed_offset.get(tp)
            if watch.check(tp, now, committed, consumer.highwater(tp), queued or tp in in_flight):
                await _rewind(consumer, tp, committed)

    return watch


def _queues_busy(app: faust.App) -> bool:
    """Records fetched but not yet taken by an agent sit in the topics' queues, not yet tracked as in flight."""
    for channel in list(app.topics._topics):
        queue = getattr(channel, "_queue", None)
        if queue is not None and queue.qsize():
            return True
    return False


async def _rewind(consumer: Any, tp: Any, committed: int | None) -> None:
    acked = sorted(consumer._acked.get(tp) or [])
    log.warning("partition %s %s: commit stuck at %s with %d later record(s) acknowledged; reading it again",
                tp.topic, tp.partition, committed, len(acked))
    # Forget what Faust holds for it, so the records read again are acknowledged and committed in order.
    consumer._acked.pop(tp, None)
    consumer._acked_index.pop(tp, None)
    consumer._gap.pop(tp, None)
    if committed:
        await consumer.seek(tp, committed)
    else:
        await consumer._thread.seek_to_beginning(tp)
        consumer._read_offset.pop(tp, None)
