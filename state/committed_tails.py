"""A consumer group's first record past its committed offset on each partition of some topics.

Read with the group's id but without joining the group (assign, never subscribe, never commit), so asking
never moves a running group's assignment. A partition the group never committed on is left out; one read to
its end (the fetch's high watermark, which the local broker reports truly) maps to None.
"""

from __future__ import annotations

import time

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition


def first_past_committed(bootstrap: str, group: str, topics: list[str],
                         timeout_s: float = 60.0) -> dict[tuple[str, int], tuple[int, tuple] | None]:
    """{(topic, partition): (offset, headers) of the first record at or after the group's commit, or None}."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                         "enable.partition.eof": True, "fetch.wait.max.ms": 100})
    deadline = time.monotonic() + timeout_s
    try:
        start = _committed(consumer, topics, deadline)
        if not start:
            return {}
        consumer.assign(start)
        pending = {(tp.topic, tp.partition) for tp in start}
        out: dict[tuple[str, int], tuple[int, tuple] | None] = {}
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no record or end of {sorted(pending)} within {timeout_s}s")
            for msg in consumer.consume(100, 1.0):
                key = (msg.topic(), msg.partition())
                if key not in pending:
                    continue
                err = msg.error()
                if err is not None and err.code() != KafkaError._PARTITION_EOF:
                    raise RuntimeError(f"reading {msg.topic()}[{msg.partition()}]: {err}")
                out[key] = None if err is not None else (msg.offset(), tuple(msg.headers() or ()))
                pending.discard(key)
        return out
    finally:
        consumer.close()


def _committed(consumer: Consumer, topics: list[str], deadline: float) -> list[TopicPartition]:
    """The group's commits on the topics' partitions; a broker still starting or electing a coordinator is
    asked again until the deadline."""
    while True:
        try:
            listed = consumer.list_topics(timeout=10).topics
            asked = [TopicPartition(t, p) for t in topics if t in listed and listed[t].error is None
                     for p in sorted(listed[t].partitions)]
            return [tp for tp in consumer.committed(asked, timeout=10) if tp.offset >= 0] if asked else []
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
