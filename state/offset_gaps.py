"""Offsets passed over between records handed to an agent, on a topic where every offset is a record. Pure.

Faust's commit passes records that never reached the agents when it takes an offset jump for compaction or a
transaction marker (state/handed_over.py). On the worker's links topic neither happens: nothing writes it
transactionally, and it cannot be compacted (its bundles have no key, which a compacted topic refuses). So
once a partition's records go past an offset that was never handed over, that record is missing: the hole
stays open until the record is read again (the stall repair seeks back to the commit), and if the group's
commit passes it first, it is lost.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable


class OffsetGaps:
    """Per partition, the highest offset handed over and the holes below it, as [start, end) ranges."""

    def __init__(self) -> None:
        self.highest: dict[Hashable, int] = {}
        self.holes: dict[Hashable, list[list[int]]] = {}

    def see(self, tp: Hashable, offset: int) -> tuple[int, int]:
        """(offsets this record skipped past, holes it filled: 0 or 1). The first record of a partition since
        forget() has nothing to follow; a record at or below the highest is a read again."""
        highest = self.highest.get(tp)
        if highest is None or offset > highest:
            self.highest[tp] = offset
            if highest is None or offset == highest + 1:
                return 0, 0
            self.holes.setdefault(tp, []).append([highest + 1, offset])
            return offset - highest - 1, 0
        return 0, self._fill(tp, offset)

    def _fill(self, tp: Hashable, offset: int) -> int:
        ranges = self.holes.get(tp, [])
        for index, (start, end) in enumerate(ranges):
            if start <= offset < end:
                ranges[index:index + 1] = [r for r in ([start, offset], [offset + 1, end]) if r[0] < r[1]]
                if not ranges:
                    del self.holes[tp]
                return 1
        return 0

    def missing(self, tps: Iterable[Hashable] | None = None) -> int:
        """Offsets still in holes, of these partitions or of all."""
        chosen = self.holes if tps is None else {tp: self.holes[tp] for tp in tps if tp in self.holes}
        return sum(end - start for ranges in chosen.values() for start, end in ranges)

    def forget(self, tps: Iterable[Hashable]) -> dict[Hashable, int]:
        """Partitions revoked or assigned afresh: whoever reads them next starts from the group's commit, so
        there is nothing to follow. Returns the offsets still missing per forgotten partition that had any."""
        left = {}
        for tp in tps:
            self.highest.pop(tp, None)
            missing = self.missing([tp])
            if missing:
                left[tp] = missing
            self.holes.pop(tp, None)
        return left
