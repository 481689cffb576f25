"""Offsets skipped between records handed to an agent, on a topic where every offset is a record. Pure: no Faust.

Faust's commit passes records that never reached the agents when it takes an offset jump for compaction or a
transaction marker (state/handed_over.py). On the worker's own links topic neither happens: the producer is not
transactional and nothing is compacted, so a forward jump between two records of a partition handed over in
the same assignment is records lost, whatever dropped them. Going back is a read again, never a loss.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable


class OffsetGaps:
    """The last offset handed over per partition; see() says how many offsets a record skipped past it."""

    def __init__(self) -> None:
        self.last: dict[Hashable, int] = {}

    def see(self, tp: Hashable, offset: int) -> int:
        """How many offsets lie between the partition's last record handed over and this one (0: none, or a
        read again); the first record of a partition since forget() has nothing to follow."""
        last = self.last.get(tp)
        self.last[tp] = offset
        if last is None or offset <= last + 1:
            return 0
        return offset - last - 1

    def forget(self, tps: Iterable[Hashable]) -> None:
        """Partitions revoked: whoever holds them next may read on from elsewhere, so there is nothing to follow."""
        for tp in tps:
            self.last.pop(tp, None)
