"""Poller cursors kept in Kafka: written only after the records they cover are acknowledged.

One record per (poller, stream) on a compacted topic; the latest one read at start is where polling resumes.
"""

from __future__ import annotations

import json

from confluent_kafka import Producer

from state.topic_end import read_to_end


class AckedProducer:
    """An idempotent producer whose flush raises unless every record since the last flush was acknowledged."""

    def __init__(self, producer: Producer) -> None:
        self.producer = producer
        self.failed: list[str] = []

    def _delivered(self, err, msg) -> None:
        if err is not None:
            self.failed.append(f"{msg.topic()}: {err}")

    def produce(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        while True:
            try:
                self.producer.produce(topic, key=key, value=value, on_delivery=self._delivered)
                return
            except BufferError:  # the local queue is full: let deliveries drain it
                self.producer.poll(0.1)

    def flush(self, timeout_s: float, what: str) -> None:
        left = self.producer.flush(timeout_s)
        failed, self.failed = self.failed, []
        if left or failed:
            raise TimeoutError(f"{left} {what} not acknowledged within {timeout_s}s" if left
                               else f"{len(failed)} {what} not delivered: {failed[0]}")


class CursorStore:
    def __init__(self, bootstrap: str, topic: str, poller: str, producer: AckedProducer) -> None:
        self.bootstrap, self.topic, self.poller, self.producer = bootstrap, topic, poller, producer

    def load(self) -> dict[str, dict]:
        """{stream: cursor} as last committed by this poller (streams are tables or an API's event feed)."""
        out: dict[str, dict] = {}
        prefix = f"{self.poller}/"
        for rec in read_to_end(self.bootstrap, [self.topic], idle_s=0.5):
            key = (rec.key or b"").decode()
            if key.startswith(prefix):
                stream = key[len(prefix):]
                if rec.value is None:
                    out.pop(stream, None)
                else:
                    out[stream] = json.loads(rec.value)
        return out

    def commit(self, stream: str, cursor: dict, timeout_s: float = 30.0) -> None:
        """Flush the records produced so far, then write the cursor that covers them and wait for it too."""
        self.producer.flush(timeout_s, "records")  # raises: the cursor stays where it was
        self.producer.produce(self.topic, key=f"{self.poller}/{stream}".encode(),
                              value=json.dumps(cursor, separators=(",", ":")).encode())
        self.producer.flush(timeout_s, "cursor")
