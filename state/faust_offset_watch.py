"""Watch the records an agent is handed for skipped offsets (state/offset_gaps.py), and say so when one is seen.

Faust edge: partitions are forgotten when revoked and again when assigned, since an assignment seeks each to its
committed offset, which another worker may have moved on meanwhile (and a record taken before the revocation may
still reach the agent after it).
"""

from __future__ import annotations

import logging

import faust

from state.offset_gaps import OffsetGaps

log = logging.getLogger(__name__)


class OffsetWatch:
    """Records of `topics` seen in the order an agent is handed them; `skipped` counts offsets lost per topic."""

    def __init__(self, app: faust.App, topics: set[str]) -> None:
        self.topics, self.gaps = frozenset(topics), OffsetGaps()
        self.skipped: dict[str, int] = {}

        async def forget(sender, tps, **kwargs) -> None:
            self.gaps.forget((tp.topic, tp.partition) for tp in tps)

        app.on_partitions_revoked.connect(forget)
        app.on_partitions_assigned.connect(forget)

    def see(self, message) -> int:
        """Offsets skipped just before this record (0 on a topic not watched); logged as an error when any."""
        if message.topic not in self.topics:
            return 0
        skipped = self.gaps.see((message.topic, message.partition), message.offset)
        if skipped:
            self.skipped[message.topic] = self.skipped.get(message.topic, 0) + skipped
            log.error("%d record(s) of %s[%d] before offset %d never reached the agent; the group's commit may "
                      "pass them, so what they carried is missing downstream until those changes come again",
                      skipped, message.topic, message.partition, message.offset)
        return skipped
