"""Which partitions' commits are stuck: records past the committed offset, nothing in flight, for long enough. Pure.

Faust commits a partition only up to its first offset not yet acknowledged. Around a rebalance it can fetch a
record and never hand it to an agent (it drops records for partitions not yet active, and skips a stream's
messages while flow is suspended), so no acknowledgement ever comes and the partition's commit stops for good
while later records are processed. That is faust-streaming issue 596. The cure is to read the partition
again from its committed offset; this decides when, without touching Faust.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field


@dataclass
class StallWatch:
    """One per worker. check() each tick for each assigned stream partition; True means read it again now."""

    stall_s: float
    _since: dict[Hashable, tuple[int | None, float]] = field(default_factory=dict)

    def check(self, tp: Hashable, now: float, committed: int | None, end: int | None, busy: bool) -> bool:
        """committed: the offset the worker last committed; end: the partition's end; busy: records in flight."""
        behind = end is not None and end > (committed or 0)
        seen = self._since.get(tp)
        if busy or not behind or seen is None or seen[0] != committed:
            # Work in flight, nothing to read, or the commit moved: the clock starts (again) now.
            self._since[tp] = (committed, now)
            return False
        if now - seen[1] < self.stall_s:
            return False
        self._since[tp] = (committed, now)  # a rewound partition gets a whole new period to catch up
        return True

    def forget(self, keep: set) -> None:
        """Drop partitions no longer assigned."""
        for tp in [tp for tp in self._since if tp not in keep]:
            del self._since[tp]
