"""The normalize agent: raw change records in, canonical events out; bad input to the dead-letter topic.

Thin edge: decode the Kafka message, call the pure normalizer, read/write the state table, send. Each canonical
event goes to its events topic (the contract) and, as the write of its entity bucket, into a bundle for the
links topic partition its key hashes to: the join reads a batch's entity writes as a few bundles, not one
record (and one Avro decode) per change.
"""

from __future__ import annotations

import logging
import socket
import time

import faust

from state.batch_state import BatchState
from state.pickled_table import PickledTable
from state.producer_backlog import ebb
from streams import join_topology, link_bundles
from streams.dead_letters import ORIGINAL_TOPIC_HEADER, dead_letter
from streams.encoding import Encoder
from streams.events_drain import ENTITY_WRITE_HEADER, ON_LINKS
from streams.mapping import ENTITY_RECORDS, Mapping
from streams.metric_tally import Tally
from streams.metrics import WorkerMetrics
from streams.normalizer import Control, DeadLetter, Parsed, RawRecord, finish, parse
from streams.positions import is_snapshot_read
from streams.raw_counts import RawCounts
from streams.topics import links_topic, raw_control_topics, raw_data_topics
from trueup.logs import correlation
from trueup.settings import Settings

log = logging.getLogger("trueup.normalize")

EVENT_SCHEMA = "trueup.events.CanonicalEvent"
DEAD_LETTER_SCHEMA = "trueup.DeadLetter"


def _headers(message) -> tuple[tuple[str, bytes | None], ...]:
    raw = message.headers or ()
    items = raw.items() if isinstance(raw, dict) else raw
    return tuple((str(k), v) for k, v in items)


def _for_avro(event: dict) -> dict:
    """Name the union branch of before/after so the encoder never has to guess between entity records."""
    record_name = f"trueup.entities.{ENTITY_RECORDS[event['entity_type']]}"
    out = dict(event)
    for side in ("before", "after"):
        if out[side] is not None:
            out[side] = (record_name, out[side])
    return out


def register(app: faust.App, settings: Settings, mapping: Mapping, metrics: WorkerMetrics, counts: RawCounts,
             encoder: Encoder, worker_name: str) -> None:
    sources = settings.enabled_sources
    events = {
        entity: app.topic(f"{settings.topics.events_prefix}.{entity}", key_serializer="raw",
                          value_serializer="raw")
        for entity in ENTITY_RECORDS
    }
    dlq = app.topic(settings.topics.dlq, key_serializer="raw", value_serializer="raw")
    links = app.topic(links_topic(settings.worker.app_id), key_serializer="raw", value_serializer="raw")
    # The producer's own partitioner: an entity's bucket lives on the partition its event's key hashes to.
    partitioner, partitions = app.conf.producer_partitioner, list(range(settings.kafka.partitions))
    state = PickledTable(app, "normalizer_state", settings.kafka.partitions,
                         "Last applied source order and fields per entity (duplicates, staleness, TOAST)")

    async def send_dead_letter(record: RawRecord, reason: str, stage: str, source: str) -> None:
        letter = dead_letter(record, reason, stage, int(time.time() * 1000), worker_name)
        metrics.dead_letters.labels(source, stage).inc()
        log.warning("dead letter from %s[%d]@%d (%s): %s", record.topic, record.partition, record.offset,
                    stage, reason)
        await dlq.send(key=record.key, value=encoder.encode(settings.topics.dlq, DEAD_LETTER_SCHEMA, letter))

    normalized_latency = metrics.latency.labels("normalized")
    landed_from: set[str] = set()

    def snapshot_landed(source: str) -> None:
        """A snapshot read landed over streamed state: said once per source, since deletes need a repair."""
        metrics.snapshot_landed.labels(source).inc()
        if source not in landed_from:
            landed_from.add(source)
            log.warning("%s snapshots again after streaming (lost offsets or a blocking snapshot): its rows land "
                        "over what was streamed, but rows deleted meanwhile are in no snapshot; once it ends, run "
                        "`trueup verify --repair --system %s` (or set verify.auto_repair)", source,
                        mapping.sources[source].system if source in mapping.sources else source)

    def entity_partition(bucket: str) -> int:
        entity_id = bucket.partition("|")[2]  # an entity bucket is keyed entity_type|entity_id
        return partitioner(entity_id.encode(), partitions, partitions)

    def send_entity_writes(writes: list) -> None:
        for partition, value in link_bundles.pack(writes, entity_partition, settings.worker.link_bundle_max,
                                                  settings.worker.link_bundle_bytes):
            links.send_soon(key=None, value=value, partition=partition)

    async def normalize_one(event, batch: BatchState, tally: Tally, writes: list) -> None:
        correlation.set(None)
        message = event.message
        headers = _headers(message)
        record = RawRecord(
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key=message.key,
            value=message.value,
            headers=headers,
            timestamp_ms=int((message.timestamp or 0) * 1000),
        )
        topic = record.topic
        if topic == settings.topics.dlq_replay:
            original = record.header(ORIGINAL_TOPIC_HEADER)
            topic = original.decode() if original else topic
            record = RawRecord(topic, record.partition, record.offset, record.key, record.value,
                               headers, record.timestamp_ms)
        where = mapping.source_of_topic(topic)
        source_name = where[0] if where else topic.split(".", 1)[0]
        outcome = parse(record, mapping, topic)
        if isinstance(outcome, Control):
            metrics.control.labels(outcome.source, outcome.kind).inc()
            return
        if where is not None:
            tally.add(metrics.events_in, *where)
            counts.observe(topic, record.value)
        if isinstance(outcome, DeadLetter):
            await send_dead_letter(record, outcome.reason, outcome.stage, source_name)
            return
        assert isinstance(outcome, Parsed)
        key = outcome.state_key.encode()
        previous = batch.get(key, event)
        canonical, new_state, dropped = finish(outcome, previous, int(time.time() * 1000),
                                               (message.topic, record.partition, record.offset),
                                               in_order=message.topic != settings.topics.dlq_replay)
        if dropped is None and previous is not None and is_snapshot_read(outcome.position["order"]):
            snapshot_landed(outcome.source)
        if canonical is not None:
            correlation.set(canonical["correlation_id"])
        if dropped is not None:
            tally.add(metrics.duplicates, outcome.source, dropped.reason)
            if canonical is None:
                return
        topic_name = f"{settings.topics.events_prefix}.{outcome.entity_type}"
        try:
            value = encoder.encode(topic_name, EVENT_SCHEMA, _for_avro(canonical))
        except Exception as exc:  # an unencodable event is a dead letter, not a crash
            await send_dead_letter(record, f"cannot encode canonical event: {exc}", "encode", source_name)
            return
        # Queued, not awaited: Faust flushes the producer before it commits the offsets of this batch.
        events[outcome.entity_type].send_soon(
            key=outcome.entity_id.encode(),
            value=value,
            headers=[("correlation_id", canonical["correlation_id"].encode()),
                     ("idempotency_key", canonical["idempotency_key"].encode()),
                     (ENTITY_WRITE_HEADER, ON_LINKS)],
        )
        writes.append(join_topology.entity_message(canonical))
        normalized_latency.observe(max(0.0, time.time() - canonical["source_ts"] / 1000))
        if new_state is not None:
            batch.set(key, new_state, event)
            tally.add(metrics.events_out, outcome.source, outcome.entity_type)

    async def normalize(stream):
        batch, tally = BatchState(state), Tally()
        async for taken in stream.take_events(settings.worker.batch_max, settings.worker.batch_within_s):
            # The sender first catches up with what the last takes produced (the join shares the producer).
            await ebb(app.producer, settings.worker.send_backlog_batches)
            writes: list = []
            try:
                for event in taken:
                    await normalize_one(event, batch, tally, writes)
            finally:
                tally.flush()
                # Queued like the events, even when the batch stops short: every event sent has its entity
                # write sent, and Faust flushes both before it commits the offsets below them.
                send_entity_writes(writes)
            batch.flush()

    # One agent per raw topic family (a source's tables, heartbeats and signals), one for replays. All
    # share the state table: equal partition counts make Faust assign partition p of each to one worker.
    for source in sources:
        family = app.topic(
            *raw_data_topics(mapping, [source]),
            *raw_control_topics(mapping, [source]),
            key_serializer="raw",
            value_serializer="raw",
        )
        app.agent(family, name=f"normalize_{source}")(normalize)
    replays = app.topic(settings.topics.dlq_replay, key_serializer="raw", value_serializer="raw")
    app.agent(replays, name="normalize_replay")(normalize)


def worker_name(index: int) -> str:
    return f"{socket.gethostname()}:{index}"
