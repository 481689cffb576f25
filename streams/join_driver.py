"""Run the join engine in memory: the same `apply` the agents call, with a queue standing in for the topic."""

from __future__ import annotations

from collections import deque

from streams import join_topology, projections
from streams.join_batch import JoinBatch
from streams.joins import Message, apply


class JoinDriver:
    """Plain-object join state: feed canonical events, read buckets and the latest projections."""

    def __init__(self) -> None:
        self.states: dict[str, dict] = {}
        self.projections: dict[tuple[str, str], dict] = {}
        self.emitted: list[tuple[str, str, dict | None]] = []
        self.deliveries = 0

    def feed(self, event: dict) -> None:
        self.deliver(join_topology.entity_message(event))

    def deliver(self, message: Message) -> None:
        queue = deque([message])
        while queue:
            msg = queue.popleft()
            self.deliveries += 1  # each delivery is distinct, as a Kafka offset would be
            state, outputs, _ = apply(self.states.get(msg.bucket), msg, join_topology.emits,
                                      projections.projector, source=self.deliveries)
            self.states[msg.bucket] = state
            queue.extend(outputs.links)
            self.record(outputs.projections)

    def record(self, emitted: list[tuple[str, str, dict | None]]) -> None:
        """Keep the latest value per projection key, as a compacted topic would (None removes it)."""
        for name, pid, record in emitted:
            self.emitted.append((name, pid, record))
            if record is None:
                self.projections.pop((name, pid), None)
            else:
                self.projections[(name, pid)] = record


class BatchedJoinDriver(JoinDriver):
    """The join as the agent runs it: the topic read `batch` messages at a time, each bucket emitting once
    per batch (streams.join_batch); outputs join the end of the queue, as they would the links topic."""

    def __init__(self, batch: int) -> None:
        super().__init__()
        self.batch = batch
        self.causes: dict[tuple[str, str], str | None] = {}  # projection -> the change its last record names
        self.queue: deque[Message] = deque()

    def deliver(self, message: Message) -> None:
        self.queue.append(message)

    def drain(self) -> None:
        while self.queue:
            batch = JoinBatch(join_topology.emits, projections.projector)
            for _ in range(min(self.batch, len(self.queue))):
                msg = self.queue.popleft()
                self.deliveries += 1
                if msg.bucket not in batch:
                    batch.load(msg.bucket, self.states.get(msg.bucket))
                batch.write(msg, self.deliveries)
            for bucket, touched, outputs in batch.finish():
                self.states[bucket] = touched.state
                self.queue.extend(outputs.links)
                self.record(outputs.projections)
                for name, pid, _ in outputs.projections:
                    self.causes[(name, pid)] = touched.cause
