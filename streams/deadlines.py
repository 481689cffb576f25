"""Due deadlines without scans: one heap per source of (commit time, bucket), popped as its watermark passes."""

from __future__ import annotations

import heapq


class Deadlines:
    def __init__(self) -> None:
        self._heaps: dict[str, list[tuple[int, str]]] = {}
        self._known: set[tuple[str, int, str]] = set()

    def add(self, system: str, at_ms: int, bucket: str) -> None:
        if (system, at_ms, bucket) not in self._known:
            self._known.add((system, at_ms, bucket))
            heapq.heappush(self._heaps.setdefault(system, []), (at_ms, bucket))

    def due(self, watermarks: dict[str, int]) -> list[str]:
        """Buckets with a deadline their source's watermark has reached, each once; costs only what is due."""
        out: dict[str, None] = {}
        for system, heap in self._heaps.items():
            mark = watermarks.get(system, -1)
            while heap and heap[0][0] <= mark:
                at, bucket = heapq.heappop(heap)
                self._known.discard((system, at, bucket))
                out[bucket] = None
        return list(out)

    def clear(self) -> None:
        self._heaps.clear()
        self._known.clear()

    def waiting(self) -> dict[str, dict]:
        """{source: {"buckets": how many deadlines wait on it, "next_ms": the earliest time it must reach}}."""
        return {system: {"buckets": len(heap), "next_ms": heap[0][0]} for system, heap in self._heaps.items() if heap}

    def __len__(self) -> int:
        return sum(len(heap) for heap in self._heaps.values())
