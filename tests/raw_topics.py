"""Read Debezium envelopes back from raw topics, to the true end, for assertions."""

from __future__ import annotations

import json
import time

from state.topic_end import read_to_end


def envelopes(bootstrap: str, topic: str) -> list[dict]:
    """Every record of a topic as {partition, offset, key, value} with JSON decoded (value None = tombstone)."""
    out = []
    for rec in read_to_end(bootstrap, [topic], idle_s=0.5):
        try:
            key = json.loads(rec.key) if rec.key else None
            value = json.loads(rec.value) if rec.value is not None else None
        except ValueError:
            continue  # poison records other tests inject on purpose
        if value is not None and not isinstance(value, dict) or not isinstance(key, (dict, type(None))):
            continue
        out.append({"partition": rec.partition, "offset": rec.offset, "key": key, "value": value})
    return out


def wait_for(bootstrap: str, topic: str, predicate, timeout_s: float = 60.0) -> list[dict]:
    """Re-read the topic until predicate(records) holds; fail with what was seen."""
    deadline = time.monotonic() + timeout_s
    records: list[dict] = []
    while time.monotonic() < deadline:
        records = envelopes(bootstrap, topic)
        if predicate(records):
            return records
        time.sleep(0.5)
    raise AssertionError(f"{topic}: condition not met within {timeout_s}s; {len(records)} records seen")


def for_key(records: list[dict], column: str, key: str) -> list[dict]:
    """Records of one row: matched on the Debezium key object's column."""
    return [r for r in records if r["key"] is not None and r["key"].get(column) == key]
