"""`trueup alerts tail`: the alert topic as readable lines or JSON lines, from any Kafka, optionally following."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import datetime

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from state.topic_end import partitions_of
from streams.encoding import Encoder


def matches(alert: dict, rule: str | None, severity: str | None, status: str | None) -> bool:
    return ((rule is None or alert["rule_id"] == rule) and (severity is None or alert["severity"] == severity)
            and (status is None or alert["status"] == status))


def line(alert: dict) -> str:
    """One readable line: when, status, severity, rule, entity, occurrence and the sentence."""
    seen = alert["last_seen"]
    when = seen.strftime("%Y-%m-%d %H:%M:%S") if isinstance(seen, datetime) else str(seen)
    again = f" (#{alert['occurrence']})" if alert.get("occurrence", 1) > 1 else ""
    return (f"{when}  {alert['status'].upper():8} {alert['severity']:8} {alert['rule_id']}  "
            f"{alert['entity_type']}/{alert['entity_id']}{again}: {alert['message']}")


def as_json(alert: dict) -> str:
    return json.dumps(alert, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v))


def tail(bootstrap: str, topic: str, encoder: Encoder, follow: bool, idle_s: float = 1.0) -> Iterator[dict]:
    """Every alert record from the start; with follow, keep waiting for new ones."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"trueup-tail-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "enable.partition.eof": True, "fetch.queue.backoff.ms": 10})
    try:
        parts = partitions_of(consumer, topic)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        pending = set(parts)
        while follow or pending:
            for msg in consumer.consume(500, idle_s):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        pending.discard(msg.partition())
                        continue
                    raise RuntimeError(f"reading {topic}: {err}")
                if msg.value() is None:
                    continue  # a compacted-away alert
                yield encoder.decode(msg.value())[1]
            if follow and not pending:
                time.sleep(0.05)
    finally:
        consumer.close()
