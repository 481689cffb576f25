"""Offsets passed over between records handed to an agent, on a topic where every offset is a record. Pure.

Faust's commit passes records that never reached the agents when it takes an offset jump for compaction or a
transaction marker (state/handed_over.py). On the worker's links topic neither happens: nothing writes it
transactionally, and trueup creates it without compaction (its keyless bundles could not be written to a
compacted one). So once a partition's records go past an offset that was never handed over, that record is
missing: the hole stays open until the record is read again, and once the group's commit passes it (Faust's
usually does within a commit interval), it is lost.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Hashable, Iterable


class OffsetGaps:
    """Per partition, the highest offset handed over and the holes below it, as ascending [start, end) ranges."""

    def __init__(self) -> None:
        self.highest: dict[Hashable, int] = {}
        self.holes: dict[Hashable, list[list[int]]] = {}

    def see(self, tp: Hashable, offset: int) -> tuple[int, int]:
        """(offsets this record passed over, offsets it filled: 0 or 1). The first record of a partition since
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
        ranges = self.holes.get(tp)
        if not ranges:
            return 0
        index = bisect.bisect_right(ranges, offset, key=lambda r: r[0]) - 1
        if index < 0 or offset >= ranges[index][1]:
            return 0
        start, end = ranges[index]
        ranges[index:index + 1] = [r for r in ([start, offset], [offset + 1, end]) if r[0] < r[1]]
        if not ranges:
            del self.holes[tp]
        return 1

    def settle(self, committed: Callable[[Hashable], int | None]) -> dict[Hashable, list[tuple[int, int]]]:
        """Take out the holes the group's commit has passed (committed(tp): the next offset the group would read,
        or None): those records are lost. Returns the lost [start, end) ranges per partition."""
        lost: dict[Hashable, list[tuple[int, int]]] = {}
        for tp in list(self.holes):
            commit = committed(tp)
            if commit is None:
                continue
            ranges = self.holes[tp]
            passed = [(start, min(end, commit)) for start, end in ranges if start < commit]
            if not passed:
                continue
            lost[tp] = passed
            kept = [[max(start, commit), end] for start, end in ranges if end > commit]
            if kept:
                self.holes[tp] = kept
            else:
                del self.holes[tp]
        return lost

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
