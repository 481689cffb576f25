"""Count raw change records per source table: the first agent, proving changes flow from every source."""

from __future__ import annotations

from collections import Counter

from streams.mapping import Mapping


class RawCounts:
    """Per (source, table) counters of change records and tombstones, as plain data."""

    def __init__(self, mapping: Mapping, sources: list[str]) -> None:
        self.mapping, self.sources = mapping, list(sources)
        self.changes: Counter[tuple[str, str]] = Counter()
        self.tombstones: Counter[tuple[str, str]] = Counter()

    def observe(self, topic: str, value: bytes | None) -> None:
        where = self.mapping.source_of_topic(topic)
        if where is None:
            return
        if value is None:
            self.tombstones[where] += 1
        else:
            self.changes[where] += 1

    def as_rows(self) -> list[dict]:
        rows = []
        for source in self.sources:
            for table in self.mapping.sources[source].tables:
                rows.append({
                    "source": source,
                    "table": table,
                    "changes": self.changes[(source, table)],
                    "tombstones": self.tombstones[(source, table)],
                })
        return rows

    def summary(self) -> str:
        return ", ".join(f"{r['source']}.{r['table']}={r['changes']}" for r in self.as_rows())
