"""Read canonical events and dead letters back from their topics (decoded with trueup's decoder)."""

from __future__ import annotations

import json
import time
import urllib.request

from state.topic_end import read_to_end
from streams.encoding import Encoder

_encoder = Encoder()


def events(bootstrap: str, entity: str) -> list[dict]:
    """Every canonical event of one entity type, with its Kafka key and headers attached."""
    out = []
    for rec in read_to_end(bootstrap, [f"trueup.events.{entity}"], idle_s=0.5):
        _, event = _encoder.decode(rec.value)
        event["_key"] = rec.key.decode() if rec.key else None
        event["_headers"] = {k: (v.decode() if v else None) for k, v in rec.headers}
        out.append(event)
    return out


def dead_letters(bootstrap: str) -> list[dict]:
    out = []
    for rec in read_to_end(bootstrap, ["trueup.dlq"], idle_s=0.5):
        _, letter = _encoder.decode(rec.value)
        letter["_offset"] = rec.offset
        out.append(letter)
    return out


def wait_until(fetch, predicate, timeout_s: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    items = []
    while time.monotonic() < deadline:
        items = fetch()
        if predicate(items):
            return items
        time.sleep(0.5)
    raise AssertionError(f"{what} not met within {timeout_s}s; last saw {items!r:.300}")


def metric(url: str, name: str, **labels) -> float:
    """One sample of a Prometheus metric from a worker's /metrics (0 when absent)."""
    with urllib.request.urlopen(url + "/metrics", timeout=5) as resp:
        text = resp.read().decode()
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            series, _, value = line.rpartition(" ")
            got = series[series.find("{") + 1:series.rfind("}")] if "{" in series else ""
            if all(part in got.split(",") for part in want.split(",") if part):
                total += float(value)
    return total


def envelope(table: str, db: str, op: str, after: dict | None, before: dict | None = None,
             lsn: int = 1, tx: int = 1, snapshot: str = "false") -> bytes:
    """A Debezium-shaped envelope for tests that write raw topics directly."""
    return json.dumps({
        "before": before, "after": after, "op": op, "ts_ms": int(time.time() * 1000),
        "source": {"version": "3.6.3.Final", "connector": "postgresql", "name": db, "db": db,
                   "schema": "public", "table": table, "ts_ms": int(time.time() * 1000), "snapshot": snapshot,
                   "txId": tx, "lsn": lsn, "sequence": json.dumps([str(lsn - 1), str(lsn)])},
    }).encode()


def projections(bootstrap: str, name: str, headers: bool = False) -> dict[str, dict | None]:
    """Latest value per key of a projection topic (None = tombstone), as a compacted read would give; with
    headers, each value gets its record's headers under `_headers`."""
    latest: dict[str, dict | None] = {}
    for rec in read_to_end(bootstrap, [f"trueup.projections.{name}"], idle_s=0.5):
        key = rec.key.decode()
        if rec.value is None:
            latest[key] = None
        else:
            latest[key] = _encoder.decode(rec.value)[1]
            if headers:
                latest[key]["_headers"] = {k: (v.decode() if v else None) for k, v in rec.headers}
    return latest
