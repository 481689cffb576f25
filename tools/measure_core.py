"""Measure the pure core alone on the throughput input: CPU per event to normalize and to join, no Kafka, no Faust.

Usage: python tools/measure_core.py INPUT [EVENTS]   (INPUT: a bench-input.jsonl saved by `trueup bench`;
EVENTS default 30,000, replicated as the throughput run does). The same parse and finish the normalize agent
calls, then the join as its agent runs it (streams.join_driver.BatchedJoinDriver: batches of the worker's
join_batch_messages, link bundles pickled and unpickled), with the worker's garbage-collection setting. Bucket
states stay objects, so this is a floor: the worker also pickles them, encodes Avro and goes through Faust.
Prints JSON.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streams.gc_tuning import tune  # noqa: E402
from streams.join_driver import BatchedJoinDriver  # noqa: E402
from streams.mapping import load_mapping  # noqa: E402
from streams.normalizer import Parsed, RawRecord, finish, parse  # noqa: E402
from trueup.bench import envelopes  # noqa: E402
from trueup.settings import load_settings  # noqa: E402


def normalized(records: list[envelopes.Raw], mapping) -> list[dict]:
    """Canonical events of the records, through the normalizer with its per-entity state."""
    state: dict = {}
    events = []
    for offset, raw in enumerate(records):
        record = RawRecord(raw.topic, 0, offset, raw.key, raw.value, (), 0)
        outcome = parse(record, mapping, raw.topic)
        if not isinstance(outcome, Parsed):
            continue
        canonical, new_state, _ = finish(outcome, state.get(outcome.state_key), 0, (raw.topic, 0, offset))
        if new_state is not None:
            state[outcome.state_key] = new_state
        if canonical is not None:
            events.append(canonical)
    return events


def joined(events: list[dict], batch: int) -> BatchedJoinDriver:
    driver = BatchedJoinDriver(batch=batch)
    for start in range(0, len(events), batch):
        for event in events[start:start + batch]:
            driver.feed(event)
        driver.drain()
    return driver


def main(path: str, count: int) -> None:
    settings = load_settings()
    mapping = load_mapping(settings.mapping)
    records = list(envelopes.replicate(envelopes.load(path), count))
    tune(settings.worker.gc_young_threshold)
    started = time.process_time()
    events = normalized(records, mapping)
    normalize_s = time.process_time() - started
    started = time.process_time()
    driver = joined(events, settings.worker.join_batch_messages)
    join_s = time.process_time() - started
    per_event_us = (normalize_s + join_s) / len(records) * 1e6
    print(json.dumps({
        "records": len(records), "events": len(events), "join_deliveries": driver.deliveries,
        "projection_records": len(driver.emitted),
        "normalize_cpu_s": round(normalize_s, 2), "join_cpu_s": round(join_s, 2),
        "normalize_us_per_event": round(normalize_s / len(records) * 1e6, 1),
        "join_us_per_event": round(join_s / len(records) * 1e6, 1),
        "core_events_per_s_ceiling": round(1e6 / per_event_us),
    }, indent=2))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 30_000)
