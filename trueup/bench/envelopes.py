"""Benchmark input: real Debezium envelopes captured from a simulator run, replicated to any count.

Each replica rewrites every identifier (keys, foreign keys, domains, tax ids, emails) with a replica
suffix, the same way everywhere, so a replica is a new, self-consistent set of business entities: joins
link within it and never across replicas, and no replica duplicates another's domain or tax id.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterator
from dataclasses import dataclass

ID_SUFFIXES = ("_id", "_no", "_ref")
ID_COLUMNS = {"id", "domain", "tax_id", "email"}


@dataclass(frozen=True)
class Raw:
    topic: str
    key: bytes | None
    value: bytes


def save(captured: list[Raw], path) -> None:
    """Captured records as JSON lines (key and value as text), to rerun the throughput part on the same input."""
    with open(path, "w", encoding="utf-8") as out:
        for r in captured:
            out.write(json.dumps({"topic": r.topic, "key": None if r.key is None else r.key.decode(),
                                  "value": r.value.decode()}) + "\n")


def load(path) -> list[Raw]:
    """Records written by `save`, in commit order (files saved before captures were ordered get it here)."""
    with open(path, encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines if line.strip()]
    records = [Raw(r["topic"], None if r["key"] is None else r["key"].encode(), r["value"].encode()) for r in rows]
    return in_commit_order(records)


def commit_ms(record: Raw) -> int:
    """The source commit time of a captured envelope (payload.source.ts_ms), or 0 where it has none."""
    try:
        value = json.loads(record.value)
        body = value.get("payload", value)
        return int(body["source"]["ts_ms"])
    except (ValueError, TypeError, KeyError, AttributeError):
        return 0


def in_commit_order(records: list[Raw]) -> list[Raw]:
    """The records interleaved across topics by commit time, each key's own records kept in their order.

    Records read back topic by topic come in clumps (one table's partition, then the next), so a prefix of
    them would hold some tables and none of others; merged by commit time any prefix is a realistic mix.
    """
    by_key: dict[tuple[str, bytes | None], list[tuple[int, int, Raw]]] = {}
    for index, record in enumerate(records):
        by_key.setdefault((record.topic, record.key), []).append((commit_ms(record), index, record))
    # heapq.merge only ever takes the head of each key's list, so a key's order holds even if its times do not.
    return [record for _, _, record in heapq.merge(*by_key.values(), key=lambda item: item[:2])]


def is_identifier(column: str) -> bool:
    return column in ID_COLUMNS or column.endswith(ID_SUFFIXES)


def _rename(value, replica: int, column: str):
    if not isinstance(value, str) or replica == 0:
        return value
    if column == "domain" or (column == "email" and "@" in value):
        return f"r{replica}.{value}" if column == "domain" else value.replace("@", f"+r{replica}@", 1)
    return f"{value}R{replica}"


def _rewrite_row(row, replica: int):
    if not isinstance(row, dict):
        return row
    return {c: _rename(v, replica, c) if is_identifier(c) else v for c, v in row.items()}


def rewrite(record: Raw, replica: int) -> Raw:
    """One captured record as it would be for replica number `replica` (0 is the record itself)."""
    if replica == 0:
        return record
    value = json.loads(record.value)
    body = value.get("payload", value) if isinstance(value, dict) else value
    for side in ("before", "after"):
        if isinstance(body, dict) and side in body:
            body[side] = _rewrite_row(body[side], replica)
    key = record.key
    if key:
        parsed = json.loads(key)
        inner = parsed.get("payload", parsed) if isinstance(parsed, dict) else parsed
        rewritten = _rewrite_row(inner, replica)
        if isinstance(parsed, dict) and "payload" in parsed:
            parsed["payload"] = rewritten
        else:
            parsed = rewritten
        key = json.dumps(parsed).encode()
    return Raw(record.topic, key, json.dumps(value).encode())


def replicate(captured: list[Raw], count: int) -> Iterator[Raw]:
    """`count` records: the captured ones, then replica 1 of each, replica 2, ... (a stream, in order)."""
    if not captured:
        raise ValueError("nothing captured to replicate")
    replica = 0
    produced = 0
    while produced < count:
        for record in captured:
            if produced >= count:
                return
            yield rewrite(record, replica)
            produced += 1
        replica += 1
