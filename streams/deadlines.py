"""Due deadlines without scans: one heap per source and hop count of (commit time, bucket), popped as the
source's watermark after that many link hops passes."""

from __future__ import annotations

import heapq
from collections.abc import Callable


class Deadlines:
    def __init__(self) -> None:
        self._heaps: dict[tuple[str, int], list[tuple[int, str]]] = {}
        self._known: set[tuple[str, int, int, str]] = set()

    def add(self, system: str, at_ms: int, bucket: str, hops: int) -> None:
        if (system, hops, at_ms, bucket) not in self._known:
            self._known.add((system, hops, at_ms, bucket))
            heapq.heappush(self._heaps.setdefault((system, hops), []), (at_ms, bucket))

    def due(self, marks_after: Callable[[int], dict[str, int]]) -> list[str]:
        """Buckets with a deadline their source's watermark (after the bucket's hops) has reached, each once;
        costs only what is due."""
        out: dict[str, None] = {}
        for (system, hops), heap in self._heaps.items():
            mark = marks_after(hops).get(system, -1)
            while heap and heap[0][0] <= mark:
                at, bucket = heapq.heappop(heap)
                self._known.discard((system, hops, at, bucket))
                out[bucket] = None
        return list(out)

    def clear(self) -> None:
        self._heaps.clear()
        self._known.clear()

    def waiting(self) -> dict[str, dict]:
        """{source: {"buckets": how many deadlines wait on it, "next_ms": the earliest time it must reach}}."""
        out: dict[str, dict] = {}
        for (system, _), heap in self._heaps.items():
            if heap:
                seen = out.setdefault(system, {"buckets": 0, "next_ms": heap[0][0]})
                seen["buckets"] += len(heap)
                seen["next_ms"] = min(seen["next_ms"], heap[0][0])
        return out

    def __len__(self) -> int:
        return sum(len(heap) for heap in self._heaps.values())
