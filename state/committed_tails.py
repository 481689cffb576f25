"""A consumer group's first record past its committed offset on each partition of some topics.

Read with the group's id but without joining the group (assign, never subscribe, never commit), so asking
never moves a running group's assignment. A group with no commit on any of the partitions maps to {}. Once it
has one, a partition without a commit is read from its first record kept, as the group's own consumer would
(Faust resets to the earliest). A partition read to its end (the fetch's high watermark, which the local
broker reports truly) maps to None.
"""

from __future__ import annotations

import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition


def first_past_committed(bootstrap: str, group: str, topics: list[str],
                         timeout_s: float = 60.0) -> dict[tuple[str, int], tuple[int, tuple] | None]:
    """{(topic, partition): (offset, headers) of the first record at or after the group's commit, or None}."""
    # earliest: a commit below what retention kept is read from the first record kept, not skipped to the end.
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                         "enable.partition.eof": True, "fetch.wait.max.ms": 100, "auto.offset.reset": "earliest"})
    deadline = time.monotonic() + timeout_s
    try:
        committed = _committed(consumer, topics, deadline)
        if not any(tp.offset >= 0 for tp in committed):
            return {}
        start = [tp if tp.offset >= 0 else TopicPartition(tp.topic, tp.partition, OFFSET_BEGINNING)
                 for tp in committed]
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
    """The group's commit (or none, offset < 0) on every partition of the topics that exist; a broker still
    starting, electing a coordinator or a leader is asked again until the deadline."""
    while True:
        try:
            listed = consumer.list_topics(timeout=10).topics
            if any(listed[t].error is not None for t in topics if t in listed):
                raise KafkaException(KafkaError(KafkaError.LEADER_NOT_AVAILABLE, "topic metadata not ready"))
            asked = [TopicPartition(t, p) for t in topics if t in listed for p in sorted(listed[t].partitions)]
            committed = consumer.committed(asked, timeout=10) if asked else []
            failed = [tp for tp in committed if tp.error is not None]
            if failed:
                raise KafkaException(failed[0].error)
            return committed
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
