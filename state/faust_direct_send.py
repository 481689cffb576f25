"""Append Faust's queued sends straight to aiokafka's open batch instead of through its per-record send task.

`Topic.send_soon` and every table write queue a record in Faust's ProducerBuffer; one background task then
sends each through four coroutines (publish, Faust's send, aiokafka's send, the accumulator), and once more
than 100 are queued every incoming record waits for the queue to ebb, one `wait_for` per record sent. In a
worker that produces four or five records per change that path was the largest single cost in a profile.

Here a record is appended synchronously to its partition's open batch in aiokafka's accumulator (the first
step of aiokafka's own `add_message`) and its completion runs Faust's own callback (result, the changelog's
persisted offset, sensors). A full batch gets a fresh one behind it, as many as one agent batch's output
needs: the agent runs a whole batch without yielding, so the sender cannot drain in between, and Faust's
queue held the same records before. Anything else (a producer not started or in a transaction, a topic
without metadata yet, no key to place by, too many batches) takes Faust's path, and so does every later
record of that topic until none of it is queued or in flight, so each partition keeps its order. A commit
still flushes Faust's queue and then the accumulator, so at-least-once holds as before.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import faust
from aiokafka.structs import TopicPartition

log = logging.getLogger(__name__)

# Batches one partition may hold in the accumulator before records queue on Faust's path again (a bound,
# not a target: 64 of the default 256 KiB is 16 MiB, far above what one agent batch produces here).
MAX_BATCHES = 64


class DirectSend:
    """The producer buffer's `put` with a synchronous path; counts what took which path."""

    def __init__(self, app: faust.App, max_batches: int = MAX_BATCHES) -> None:
        self.app, self.max_batches = app, max_batches
        self.producer = app.producer  # Faust's aiokafka driver Producer
        self.buffer = self.producer.buffer
        self._queued_put = self.buffer.put
        self._send_pending = self.buffer._send_pending
        self.waiting: dict[str, int] = {}  # topic -> its records queued or in flight on Faust's path
        self.direct = 0
        self.queued = 0
        self.fallbacks: dict[tuple[str, str], int] = {}  # (topic, why) -> records sent through Faust's queue
        self.enabled = True

    def install(self) -> None:
        if self.app.conf.producer_threaded:
            # Faust's path then runs on another thread's producer; appending here would bypass it.
            log.warning("direct sends off: producer_threaded is set")
            self.enabled = False
            return
        self.buffer.put = self.put
        self.buffer._send_pending = self._send_pending_counted

    def put(self, fut: Any) -> None:
        topic = fut.message.channel.get_topic_name()
        if not self.enabled:
            appended = "direct sends off"
        elif self.waiting.get(topic):
            appended = "earlier records of the topic still queued"
        else:
            appended = self._try_append(fut, topic)
        if not isinstance(appended, str):
            self.direct += 1
            self._track(fut, topic, *appended)
            return
        self._fell_back(topic, appended)
        self.queued += 1
        self.waiting[topic] = self.waiting.get(topic, 0) + 1
        self._queued_put(fut)

    async def _send_pending_counted(self, fut: Any) -> None:
        try:
            await self._send_pending(fut)  # returns once the record is in a batch
        finally:
            topic = fut.message.channel.get_topic_name()
            left = self.waiting.get(topic, 1) - 1
            if left > 0:
                self.waiting[topic] = left
            else:
                self.waiting.pop(topic, None)

    def _fell_back(self, topic: str, why: str) -> None:
        """Count a record sent through Faust's queue; say so the first time a topic falls back for a reason."""
        key = (topic, why)
        if key not in self.fallbacks:
            log.warning("records to %s go through Faust's queue: %s", topic, why)
        self.fallbacks[key] = self.fallbacks.get(key, 0) + 1

    def _try_append(self, fut: Any, topic: str) -> tuple[Any, Any, Any] | str:
        try:
            return self._append(fut, topic)
        except AttributeError as exc:
            # aiokafka's internals are not its API: another version may lack one. Faust's path still works.
            self.enabled = False
            log.warning("direct sends off, every record now goes through Faust's queue: %s", exc)
            return "direct sends off"

    def _append(self, fut: Any, topic: str) -> tuple[Any, Any, Any] | str:
        """(the record's future in its partition's batch, Faust's completion callback, its produce signal).

        Otherwise why only Faust's path can send it. Every lookup comes first and the append last: nothing after
        it may fail and send the record a second time.
        """
        producer = self.producer
        kafka = producer._producer
        if kafka is None or kafka._txn_manager is not None or self.app.in_transaction:
            return "producer not started or in a transaction"
        accumulator = kafka._message_accumulator
        if accumulator._closed or accumulator._exception is not None:
            return "producer closed or failed"
        partitions = kafka._metadata.partitions_for_topic(topic)
        if not partitions:
            return "no metadata for the topic yet"  # aiokafka's send waits for it
        message = fut.message
        key, value = message.key, message.value
        headers = message.headers
        headers = list(headers.items()) if isinstance(headers, dict) else list(headers or ())
        if not producer.allow_headers:
            headers = []
        try:
            kafka._serialize(key, value, headers)  # aiokafka's size check, as its send does
        except Exception:
            return "record refused by aiokafka's checks"  # Faust's path raises it where it always did
        partition = message.partition
        if partition is None:
            if key is None:
                return "no key or partition"  # placement without a key is left to Faust's path
            available = kafka._metadata.available_partitions_for_topic(topic)
            partition = kafka._partitioner(key, list(partitions), list(available))
        elif partition not in partitions:
            return f"no partition {partition}"
        tp = TopicPartition(topic, partition)
        on_published, notify = message.channel._on_published, producer._send_on_produce_message
        batches = accumulator._batches.get(tp)
        timestamp_ms = int(message.timestamp * 1000.0) if message.timestamp else None
        try:
            sent = batches[-1].append(key, value, timestamp_ms, headers=headers) if batches else None
            if sent is None:
                if batches and len(batches) >= self.max_batches:
                    return f"{self.max_batches} batches already waiting for one partition"
                # The sender takes a partition's batches oldest first, one request at a time, so order holds.
                batch = accumulator._append_batch(accumulator.create_builder(), tp)
                sent = batch.append(key, value, timestamp_ms, headers=headers)
        except TypeError:
            return "key or value not bytes"  # Faust's path raises it where it always did
        return (sent, on_published, notify) if sent is not None else "record does not fit a new batch"

    def _track(self, fut: Any, topic: str, sent: Any, on_published: Any, notify: Any) -> None:
        """What Faust's publish does around its send: the produce signal, the sensors, the completion callback.

        The record is in a batch already: a failing signal or sensor is logged, never raised to the agent.
        """
        message, producer = fut.message, self.producer
        state = None
        try:
            notify(key=message.key, value=message.value, partition=message.partition, timestamp=message.timestamp,
                   headers=message.headers)
            state = self.app.sensors.on_send_initiated(producer, topic, message=message,
                                                       keysize=len(message.key) if message.key else 0,
                                                       valsize=len(message.value) if message.value else 0)
        except Exception:
            log.exception("a produce signal or sensor failed for a record to %s; the record is sent", topic)
        sent.add_done_callback(partial(on_published, message=fut, state=state, producer=producer))


def install(app: faust.App) -> DirectSend:
    """Call once the app exists, before it starts."""
    direct = DirectSend(app)
    direct.install()
    return direct
