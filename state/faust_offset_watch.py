"""Watch the records an agent is handed for offsets passed over (state/offset_gaps.py), and say so.

Faust edge: partitions are forgotten when revoked and when assigned, since an assignment seeks each to the
group's commit, which another worker may have moved on meanwhile. The agent must run with concurrency 1: two
actors share one stream, and their interleaved records of a partition would look like holes.
"""

from __future__ import annotations

import logging

import faust

from state.offset_gaps import OffsetGaps

log = logging.getLogger(__name__)


class OffsetWatch:
    """Records of `topics` seen in the order an agent is handed them; `skipped` counts offsets passed over per
    topic, and missing(topic) says how many of them are still in holes (not read again since)."""

    def __init__(self, app: faust.App, topics: set[str]) -> None:
        self.topics, self.gaps = frozenset(topics), OffsetGaps()
        self.skipped: dict[str, int] = {}

        async def forget(sender, tps, **kwargs) -> None:
            left = self.gaps.forget((tp.topic, tp.partition) for tp in tps)
            for (topic, partition), missing in sorted(left.items()):
                log.error("%d record(s) of %s[%d] were still missing when the partition was reassigned: its next "
                          "reader starts from the group's commit, and if that passed them they are lost",
                          missing, topic, partition)

        app.on_partitions_revoked.connect(forget)
        app.on_partitions_assigned.connect(forget)

    def see(self, message) -> int:
        """Offsets passed over just before this record (0 on a topic not watched); logged as an error when any."""
        if message.topic not in self.topics:
            return 0
        tp = (message.topic, message.partition)
        skipped, filled = self.gaps.see(tp, message.offset)
        if skipped:
            self.skipped[message.topic] = self.skipped.get(message.topic, 0) + skipped
            log.error("%d record(s) of %s[%d] before offset %d were passed over, not handed to the agent: they "
                      "are missing downstream unless read again before the group's commit passes them",
                      skipped, message.topic, message.partition, message.offset)
        elif filled:
            log.warning("offset %d of %s[%d] was read again into a hole; %d record(s) of it still missing",
                        message.offset, message.topic, message.partition, self.gaps.missing([tp]))
        return skipped

    def missing(self, topic: str) -> int:
        """Offsets of the topic passed over and not read again since, on the partitions held now."""
        return self.gaps.missing([tp for tp in self.gaps.holes if tp[0] == topic])
