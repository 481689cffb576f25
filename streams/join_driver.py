"""Run the join engine in memory: the same `apply` the agents call, with a queue standing in for the topic."""

from __future__ import annotations

import zlib
from collections import deque

from streams import join_topology, pickling, projections
from streams.join_batch import JoinBatch
from streams.joins import Message, apply
from streams.link_bundles import pack, unpack


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
    """The join as the agent runs it: the topic read `batch` records at a time, each bucket emitting once
    per batch (streams.join_batch); a batch's links join the end of the queue in bundles per partition
    (streams.link_bundles), as they would the links topic. With `crash_every`, every such batch first
    keeps its state writes and loses its sends, and is then delivered again whole, its offsets never having
    been committed. With `pickled`, each state written goes through a pickle and back, as through the table."""

    def __init__(self, batch: int, partitions: int = 4, bundle_max: int = 500, crash_every: int = 0,
                 pickled: bool = False) -> None:
        super().__init__()
        self.batch, self.partitions, self.bundle_max, self.crash_every = batch, partitions, bundle_max, crash_every
        self.pickled = pickled
        self.causes: dict[tuple[str, str], str | None] = {}  # projection -> the change its last record names
        self.queue: deque[tuple[int, object]] = deque()  # (record id, Message or bundle value)
        self.batches = 0

    def deliver(self, message: Message) -> None:
        self.deliveries += 1
        self.queue.append((self.deliveries, message))

    def drain(self) -> None:
        while self.queue:
            records = [self.queue.popleft() for _ in range(min(self.batch, len(self.queue)))]
            self.batches += 1
            if self.crash_every and self.batches % self.crash_every == 0:
                self._run(records, send=False)
            self._run(records, send=True)

    def _run(self, records: list[tuple[int, object]], send: bool) -> None:
        batch = JoinBatch(join_topology.emits, projections.projector)
        for record, value in records:
            messages = unpack(value, (record,)) if isinstance(value, bytes) else [(value, record)]
            for msg, source in messages:
                if msg.bucket not in batch:
                    batch.load(msg.bucket, self.states.get(msg.bucket))
                batch.write(msg, source)
        links = []
        for bucket, touched, outputs in batch.finish():
            self.states[bucket] = pickling.loads(pickling.dumps(touched.state)) if self.pickled else touched.state
            if not send:
                continue
            links += outputs.links
            self.record(outputs.projections)
            for name, pid, _ in outputs.projections:
                self.causes[(name, pid)] = touched.cause
        for _, value in pack(links, self._partition_of, self.bundle_max, max_bytes=1 << 20):
            self.deliveries += 1
            self.queue.append((self.deliveries, value))

    def _partition_of(self, bucket: str) -> int:
        return zlib.crc32(bucket.encode()) % self.partitions
