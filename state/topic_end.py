"""Read a topic to its true end: keep fetching until every partition has reached its high watermark.

The local broker's ListOffsets answer can be far short of the real end, so nothing here trusts it; the
partition-EOF signal comes from the fetch response's high watermark, which that broker reports correctly.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp_ms: int


def _consumer(bootstrap: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"trueup-reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "fetch.queue.backoff.ms": 10,
            "fetch.wait.max.ms": 100,
            "topic.metadata.refresh.interval.ms": 1000,
        }
    )


def partitions_of(consumer: Consumer, topic: str, timeout: float = 10.0) -> list[int]:
    meta = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
    if meta is None or meta.error is not None or not meta.partitions:
        raise LookupError(f"topic {topic} does not exist")
    return sorted(meta.partitions)


def read_to_end(
    bootstrap: str,
    topics: list[str],
    idle_s: float = 1.0,
    timeout_s: float = 120.0,
    start: dict[tuple[str, int], int] | None = None,
    follow: bool = False,
) -> Iterator[Record]:
    """Yield every record of topics from the start (or given offsets) up to the true end, then stop.

    With follow, keep yielding new records past the end until the caller stops iterating (no timeout).
    """
    consumer = _consumer(bootstrap)
    try:
        assignment = []
        for topic in topics:
            for p in partitions_of(consumer, topic):
                offset = (start or {}).get((topic, p), OFFSET_BEGINNING)
                assignment.append(TopicPartition(topic, p, offset))
        consumer.assign(assignment)
        pending = {(tp.topic, tp.partition) for tp in assignment}
        deadline = time.monotonic() + timeout_s
        while follow or time.monotonic() < deadline:
            if not pending and not follow:
                return
            for msg in consumer.consume(1000, idle_s):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        # The fetch reached the high watermark: this partition's end as of now.
                        pending.discard((msg.topic(), msg.partition()))
                        continue
                    raise RuntimeError(f"reading {msg.topic()}: {err}")
                yield Record(
                    topic=msg.topic(),
                    partition=msg.partition(),
                    offset=msg.offset(),
                    key=msg.key(),
                    value=msg.value(),
                    headers=tuple(msg.headers() or ()),
                    timestamp_ms=msg.timestamp()[1],
                )
        raise TimeoutError(f"did not reach the end of {topics} within {timeout_s}s")
    finally:
        consumer.close()

