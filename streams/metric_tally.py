"""Counter increments gathered over one batch and added once per label set.

A prometheus counter's labels() and inc() each take a lock; several per change cost more than the counting
itself. A batch adds to a plain dict and flushes at its end, so /metrics is at most one batch behind.
"""

from __future__ import annotations


class Tally:
    def __init__(self) -> None:
        self._counts: dict[tuple[object, tuple[str, ...]], int] = {}

    def add(self, counter, *labels: str) -> None:
        key = (counter, labels)
        self._counts[key] = self._counts.get(key, 0) + 1

    def flush(self) -> None:
        counts, self._counts = self._counts, {}
        for (counter, labels), n in counts.items():
            (counter.labels(*labels) if labels else counter).inc(n)
