"""`trueup dlq list|replay`: read the dead-letter topic to its true end, and re-drive letters after a fix."""

from __future__ import annotations

from confluent_kafka import Producer

from state.topic_end import read_to_end
from streams.dead_letters import matches, replay_headers
from streams.encoding import Encoder


def letters(bootstrap: str, topic: str, encoder: Encoder):
    """(dlq offset, partition, letter) for every dead letter; undecodable records are reported, not skipped."""
    for rec in read_to_end(bootstrap, [topic]):
        try:
            _, letter = encoder.decode(rec.value)
        except Exception as exc:
            letter = {"topic": "?", "partition": -1, "offset": -1, "key": rec.key, "value": rec.value,
                      "headers": [], "error": f"undecodable dead letter: {exc}", "stage": "?", "failed_at": 0,
                      "worker": None, "correlation_id": None}
        yield rec.partition, rec.offset, letter


def replay(bootstrap: str, dlq_topic: str, replay_topic: str, encoder: Encoder, text: str | None = None,
           topic: str | None = None, stage: str | None = None, dry_run: bool = False) -> int:
    """Produce matching letters' original bytes to the replay topic, into their original partition."""
    producer = None if dry_run else Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    count = 0
    failures: list[str] = []
    for _partition, offset, letter in letters(bootstrap, dlq_topic, encoder):
        if letter["partition"] < 0 or not matches(letter, text, topic, stage):
            continue
        count += 1
        if producer is not None:
            producer.produce(
                replay_topic,
                key=letter["key"],
                value=letter["value"],
                partition=letter["partition"],
                headers=replay_headers(letter, offset),
                on_delivery=lambda err, _m: failures.append(str(err)) if err else None,
            )
            producer.poll(0)
    if producer is not None:
        left = producer.flush(60)
        if left or failures:
            raise RuntimeError(f"replay incomplete: {left} unacknowledged, failures: {failures[:3]}")
    return count
