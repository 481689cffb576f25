"""What both pollers share: the mapping check, the acknowledged producer, the Kafka cursor, status and heartbeats."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from connectors.cursor_store import AckedProducer, CursorStore
from connectors.debezium_runner import kafka_producer
from connectors.poll_envelopes import heartbeat
from connectors.status import ConnectorStatus
from streams.mapping import HEARTBEAT_TABLE, Mapping, SourceMapping


def backoff_s(attempt: int, cap_s: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter: a random wait up to min(cap, 0.2 s x 2^attempt)."""
    return rng.uniform(0, min(cap_s, 0.2 * (2 ** min(attempt, 16))))


class PollerBase:
    def __init__(self, kind: str, source: str, tables: Iterable[str], mapping: Mapping, bootstrap: str,
                 cursor_topic: str, work_dir: Path, linger_ms: int) -> None:
        if source not in mapping.sources:
            raise ValueError(f"source {source} is not in the mapping")
        self.spec: SourceMapping = mapping.sources[source]
        unknown = sorted(set(tables) - set(self.spec.tables))
        if unknown:
            raise ValueError(f"tables {', '.join(unknown)} are not mapped for source {source}")
        self.source, self.bootstrap = source, bootstrap
        self.producer = AckedProducer(kafka_producer(bootstrap, linger_ms))
        self.cursors = CursorStore(bootstrap, cursor_topic, f"{kind}/{source}", self.producer)
        self.status = ConnectorStatus(name=source)
        self.status_path = work_dir / "status.json"
        work_dir.mkdir(parents=True, exist_ok=True)
        self.stop = threading.Event()
        self.rng = random.Random()

    def emit_heartbeat(self, db: str, seen_up_to: datetime) -> None:
        """A heartbeat row change, acknowledged: the source has been read up to seen_up_to."""
        key, value = heartbeat(self.source, db, self.spec.schema_, seen_up_to)
        self.producer.produce(self.spec.topic(HEARTBEAT_TABLE), key, value)
        self.producer.flush(30.0, "heartbeat")

    def failed(self, message: str) -> None:
        """Count a transient failure in status; the caller waits and tries again."""
        self.status.errors += 1
        self.status.error = message
