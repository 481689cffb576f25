"""Watch the records an agent is handed for offsets passed over (state/offset_gaps.py), and say so.

Faust edge: partitions are forgotten when revoked and when assigned, since an assignment seeks each to the
group's commit, which another worker may have moved on meanwhile; after every commit the holes it has passed
are settled as lost against the consumer's own record of its commits. The agent must run with concurrency 1:
two actors share one stream, and their interleaved records of a partition would look like holes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import faust
from faust.sensors import Sensor

from state.offset_gaps import OffsetGaps

log = logging.getLogger(__name__)


class OffsetWatch:
    """Records of `topics` seen in the order an agent is handed them. Per topic: `skipped` offsets passed over,
    `filled` read again into a hole since, `lost` passed by the group's commit first; missing(topic) is what is
    still open. on_lost(topic, count) is told of each partition's records settled as lost."""

    def __init__(self, app: faust.App, topics: set[str],
                 on_lost: Callable[[str, int], None] = lambda topic, count: None) -> None:
        self.app, self.topics, self.gaps, self.on_lost = app, frozenset(topics), OffsetGaps(), on_lost
        self.skipped: dict[str, int] = {}
        self.filled: dict[str, int] = {}
        self.lost: dict[str, int] = {}
        app.sensors.add(_SettleOnCommit(self))

        async def forget(sender, tps, **kwargs) -> None:
            left = self.gaps.forget((tp.topic, tp.partition) for tp in tps)
            for (topic, partition), missing in sorted(left.items()):
                log.error("%d record(s) of %s[%d] passed over were still missing when the partition was reassigned: "
                          "its next reader starts from the group's commit, and if that passed them they are lost",
                          missing, topic, partition)

        app.on_partitions_revoked.connect(forget)
        app.on_partitions_assigned.connect(forget)

    def see(self, message: Any) -> int:
        """Offsets passed over just before this record (0 on a topic not watched); logged when any."""
        if message.topic not in self.topics:
            return 0
        tp = (message.topic, message.partition)
        skipped, filled = self.gaps.see(tp, message.offset)
        if skipped:
            _add(self.skipped, message.topic, skipped)
            log.warning("records %d to %d of %s[%d] were passed over, not handed to the agent: missing unless read "
                        "again before the group's commit passes them", message.offset - skipped, message.offset - 1,
                        message.topic, message.partition)
        elif filled:
            _add(self.filled, message.topic, filled)
            log.debug("record %d of %s[%d] read again into a hole", message.offset, message.topic, message.partition)
        return skipped

    def settle(self) -> None:
        """Holes the group's commit has passed, taken out, logged as lost, added to `lost` and told to on_lost."""
        committed = getattr(self.app.consumer, "_committed_offset", {})
        for (topic, partition), ranges in sorted(self.gaps.settle(committed.get).items()):
            count = sum(end - start for start, end in ranges)
            _add(self.lost, topic, count)
            self.on_lost(topic, count)
            log.error("%d record(s) of %s[%d] were never handed to the agent and the group's commit passed them: "
                      "lost (offsets %s)", count, topic, partition,
                      ", ".join(f"{start}-{end - 1}" for start, end in ranges))

    def missing(self, topic: str) -> int:
        """Offsets of the topic passed over, not read again and not passed by the commit, on partitions held now."""
        return self.gaps.missing([tp for tp in self.gaps.holes if tp[0] == topic])


class _SettleOnCommit(Sensor):
    """Settles the watch's holes as each commit completes, when Faust has just recorded what it committed."""

    def __init__(self, watch: OffsetWatch, **kwargs) -> None:
        super().__init__(**kwargs)
        self.watch = watch

    def on_commit_completed(self, consumer, state) -> None:
        # Faust calls sensors unguarded in its commit path: a failure here would stop the consumer.
        try:
            self.watch.settle()
        except Exception:
            log.exception("settling the offset watch's holes after a commit failed")


def _add(totals: dict[str, int], topic: str, count: int) -> None:
    totals[topic] = totals.get(topic, 0) + count
