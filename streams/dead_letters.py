"""Dead-letter records: the original bytes, headers and coordinates, the reason and the stage that failed."""

from __future__ import annotations

from streams.normalizer import RawRecord

ORIGINAL_TOPIC_HEADER = "trueup.original_topic"
DLQ_OFFSET_HEADER = "trueup.dlq_offset"


def dead_letter(record: RawRecord, reason: str, stage: str, failed_at_ms: int, worker: str | None,
                correlation_id: str | None = None) -> dict:
    """A trueup.DeadLetter record for a raw record that could not be processed."""
    return {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "key": record.key,
        "value": record.value,
        "headers": [{"key": k, "value": v} for k, v in record.headers],
        "error": reason,
        "stage": stage,
        "failed_at": failed_at_ms,
        "worker": worker,
        "correlation_id": correlation_id,
    }


def replay_headers(letter: dict, dlq_offset: int) -> list[tuple[str, bytes | None]]:
    """Original headers plus where the record came from, so the normalizer treats it as its source topic."""
    headers = [(h["key"], h["value"]) for h in letter["headers"]
               if h["key"] not in (ORIGINAL_TOPIC_HEADER, DLQ_OFFSET_HEADER)]
    headers.append((ORIGINAL_TOPIC_HEADER, letter["topic"].encode()))
    headers.append((DLQ_OFFSET_HEADER, str(dlq_offset).encode()))
    return headers


def matches(letter: dict, text: str | None = None, topic: str | None = None, stage: str | None = None) -> bool:
    """The `dlq list/replay` filter: substring of the error, exact topic, exact stage."""
    if text and text.lower() not in letter["error"].lower():
        return False
    if topic and letter["topic"] != topic:
        return False
    return not (stage and letter["stage"] != stage)
