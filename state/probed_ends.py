"""What the last probes found per partition, so a watermark tick probes again only partitions that moved.

The local broker reports a partition's end as its last batch's first offset + 1. Batches never change, so
while that reported end stays put, the true end and the newest commit time probed before still hold. Every
entry is probed again after `refresh_s` all the same: a log rewritten to the same reported end (a topic
recreated, a broker that lost its data) must not keep a stale end for long. Pure: no Kafka.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from typing import Any


class ProbedEnds:
    """tails: the partitions whose tail newest_of(tp, tail) reads a time from; retry: those among them probed
    again while their tail shows none (all of them unless told)."""

    def __init__(self, tails: Collection[Any], newest_of: Callable[[Any, list], int | None], refresh_s: float,
                 clock: Callable[[], float] = time.monotonic, retry: Collection[Any] | None = None) -> None:
        self.tails, self.newest_of, self.refresh_s, self.clock = tails, newest_of, refresh_s, clock
        self.retry = tails if retry is None else retry
        self._found: dict[Any, tuple[int | None, int, int | None, float]] = {}  # reported, end, newest, when

    def to_probe(self, reported: Mapping[Any, int]) -> dict[Any, int]:
        """The partitions whose reported end moved, or whose last probe is older than refresh_s."""
        now = self.clock()
        return {tp: end for tp, end in reported.items()
                if tp not in self._found or self._found[tp][0] != end or now - self._found[tp][3] >= self.refresh_s}

    def update(self, reported: Mapping[Any, int], found: Mapping[Any, tuple[int, list]]) -> None:
        """Record a probe's results: {tp: (true end, tail values)}."""
        now = self.clock()
        for tp, (end, tail) in found.items():
            newest = self.newest_of(tp, tail) if tp in self.tails else None
            # A tail read with no commit time in it (all tombstones, or a fetch that raced) is read again.
            again = tp in self.retry and newest is None
            self._found[tp] = (None if again else reported[tp], end, newest, now)

    def ends(self, reported: Mapping[Any, int]) -> dict[Any, int]:
        return {tp: self._found[tp][1] for tp in reported}

    def newest(self, tp) -> int | None:
        return self._found[tp][2]

    def clear(self) -> None:
        self._found.clear()
