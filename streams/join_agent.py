"""The join agents: entity writes and link messages in, link messages, projections and alerts out.

Thin edge over streams.joins, streams.rules and streams.alerting: unpack, apply to the bucket table, judge the
bucket's rules against the source watermarks, send. Link messages travel through the `<app id>-links`
repartition topic keyed by bucket, so every bucket lives on exactly one partition and a join is a keyed lookup
in the local table, never a scan. A rule still waiting for a source's watermark leaves a deadline; when the
watermark passes it, a Recheck for the bucket goes through the same links topic, so only the bucket's owner
writes its state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import faust

from state.batch_state import make_current
from state.faust_offset_watch import OffsetWatch
from state.pickled_table import PickledTable
from state.producer_backlog import ebb
from streams import join_topology, link_bundles, pickling, projections
from streams.alerting import judge
from streams.deadlines import Deadlines
from streams.encoding import Encoder
from streams.join_batch import JoinBatch, runs_of
from streams.joins import APPLIED, IGNORED, REPLAYED, live_members, split_key
from streams.metric_tally import Tally
from streams.rules import RULE_BUCKETS, RuleConfig, evaluate
from streams.topics import PROJECTIONS, join_input_topics, links_topic
from streams.values import epoch_ms
from streams.verify_sums import LiveSums
from streams.watermarks import LINK_HOPS
from trueup.logs import correlation
from trueup.settings import Settings

log = logging.getLogger(__name__)

PROJECTION_SCHEMA = "trueup.projections.Projection"
ALERT_SCHEMA = "trueup.alerts.Alert"


@dataclass(frozen=True)
class Recheck:
    """Judge a bucket's rules again: a watermark passed one of its deadlines."""

    bucket: str


class JoinAgents:
    def __init__(self, app: faust.App, settings: Settings, encoder: Encoder, metrics, watermarks,
                 live_sums: LiveSums) -> None:
        self.app, self.encoder, self.metrics, self.watermarks = app, encoder, metrics, watermarks
        self.live_sums = live_sums
        for status in (APPLIED, REPLAYED, IGNORED):
            metrics.join_messages.labels(status)  # every status on /metrics from the start, at 0
        self.joined_latency = metrics.latency.labels("joined")
        self.rules = RuleConfig.from_settings(settings.rules)
        self.deadlines = Deadlines()
        self.alerts_topic_name = settings.topics.alerts
        self.links_name = links_topic(settings.worker.app_id)
        self.links = app.topic(self.links_name, key_serializer="raw", value_serializer="raw")
        self.offset_watch = watch_links(app, self.links_name, metrics)
        # The producer's own partitioner instance (streams.app), so links share its memo of recent key hashes.
        self._partitioner, self._partitions = app.conf.producer_partitioner, list(range(settings.kafka.partitions))
        self.bundle_links, self.bundle_bytes = settings.worker.link_bundle_max, settings.worker.link_bundle_bytes
        self.batch_messages = settings.worker.join_batch_messages
        self.send_backlog = settings.worker.send_backlog_batches
        self.alerts = app.topic(settings.topics.alerts, key_serializer="raw", value_serializer="raw")
        self.outputs = {name: app.topic(f"{settings.topics.projections_prefix}.{name}", key_serializer="raw",
                                        value_serializer="raw")
                        for name in PROJECTIONS}
        self.buckets = PickledTable(app, "join_buckets", settings.kafka.partitions,
                                    "Join buckets: members, routes, last projections and alerts per root id")
        # Each alert's latest record by key, beside the bucket that raised it (same partition): the query API
        # lists a worker's alerts from here without opening every bucket.
        self.alert_index = PickledTable(app, "alerts", settings.kafka.partitions,
                                        "Latest record of every alert, keyed rule_id|entity_type|entity_id")

    async def process_batch(self, taken: list) -> None:
        """A take of records, as batches of at most join_batch_messages entity writes, links and rechecks: members
        written, then each bucket emits once per batch. A take of bundles can hold hundreds of thousands of messages (a
        snapshot); before each batch the event loop runs its commits, timers and requests, and the producer's sender
        catches up to send_backlog_batches per partition."""
        # Unpacked one run at a time: a take's messages are never all in memory at once.
        decoded = ((event, self._messages(event.message)) for event in taken)
        for part in runs_of(decoded, self.batch_messages):
            await ebb(self.app.producer, self.send_backlog)
            batch, tally = JoinBatch(join_topology.emits, projections.projector), Tally()
            try:
                self._process(part, batch, tally)
            finally:
                tally.flush()

    def _process(self, part: list, batch: JoinBatch, tally: Tally) -> None:
        carriers: dict[str, object] = {}  # bucket -> the event that carried it (its table partition)
        for event, messages in part:
            correlation.set(None)
            for message, source in messages:
                bucket = message.bucket
                if bucket not in batch:
                    make_current(event)
                    batch.load(bucket, self.buckets.get(bucket.encode()))
                carriers[bucket] = event
                if isinstance(message, Recheck):
                    batch.recheck(bucket)
                    continue
                data = message.data or {}
                source_ms = epoch_ms(data["source_ts"]) if data.get("source_ts") is not None else None
                status = batch.write(message, source, source_ms)
                tally.add(self.metrics.join_messages, status)
                if source_ms is not None and status == APPLIED:
                    self.joined_latency.observe(max(0.0, time.time() - source_ms / 1000))
        links: list = []
        for bucket, touched, out in batch.finish():
            event = carriers[bucket]
            make_current(event)  # the bucket's and its alerts' table partition
            correlation.set(touched.correlation_id)
            state, sends = self._judge(bucket, touched.state, resend=touched.replayed)
            self.buckets.set(bucket.encode(), state)
            self.live_sums.replace(event.message.partition, bucket, touched.before, state)
            links += out.links
            for name, pid, record in out.projections:
                value = None if record is None else self.encoder.encode(self.outputs[name].get_topic_name(),
                                                                        PROJECTION_SCHEMA, record)
                headers = _correlation(record) + _caused_by(touched.cause)
                self.outputs[name].send_soon(key=pid.encode(), value=value, headers=headers)
                tally.add(self.metrics.projections_out, name, "tombstone" if record is None else "update")
            self._send_alerts(sends)
            if sends and touched.latest_source_ms is not None:
                self.metrics.latency.labels("alerted").observe(
                    max(0.0, time.time() - touched.latest_source_ms / 1000))
        # After every bucket's state write, as each link was before: a replay of this batch re-sends them all.
        for partition, value in link_bundles.pack(links, self._link_partition, self.bundle_links,
                                                  self.bundle_bytes):
            self.links.send_soon(key=None, value=value, partition=partition)

    def _messages(self, m) -> list[tuple[object, tuple]]:
        """(message, source) of one input record: the entity writes and links of a links-topic record, or a
        canonical event (read only while draining the events topics)."""
        record = (m.topic, m.partition, m.offset)
        skipped = self.offset_watch.see(m)
        if skipped:
            self.metrics.records_skipped.labels(m.topic).inc(skipped)
        if m.topic == self.links_name:
            return link_bundles.unpack(m.value, record)
        _, canonical = self.encoder.decode(m.value)
        return [(join_topology.entity_message(canonical), record)]

    def _link_partition(self, bucket: str) -> int:
        # The producer's partitioner over the topic's partitions, so a bundle lands where a link keyed by its
        # bucket would. A links topic with another partition count fails the first table write from it: Faust
        # checks a source topic against the changelog's count (PartitionsMismatch), which is settings' count.
        return self._partitioner(bucket.encode(), self._partitions, self._partitions)

    def _judge(self, bucket: str, state: dict, resend: bool) -> tuple[dict, list[tuple[str, dict]]]:
        bucket_type, bucket_id = split_key(bucket)
        if bucket_type not in RULE_BUCKETS:
            return state, []
        previous = state.get("alerts", {})
        candidates = evaluate(bucket_type, bucket_id, live_members(state), self.rules)
        # The bucket has every change of a source up to the watermark after the most hops any change takes here.
        hops = join_topology.hops_to(bucket_type, LINK_HOPS)
        verdict = judge(previous, candidates, self.watermarks.marks_after(hops), int(time.time() * 1000))
        for system, at, _ in verdict.waiting:
            self.deadlines.add(system, at, bucket, hops)
        for alert_key, record in verdict.publish:
            self.alert_index.set(alert_key.encode(), record)
        sends = list(verdict.publish)
        if resend:
            # The delivery that wrote this state is being replayed: its alert sends may not have happened.
            published = {k for k, _ in sends}
            sends += [(k, r) for k, r in sorted(verdict.alerts.items()) if k not in published]
        waiting = sorted({(system, at) for system, at, _ in verdict.waiting})
        return {**state, "alerts": verdict.alerts, "waiting": waiting}, sends

    def _send_alerts(self, sends: list[tuple[str, dict]]) -> None:
        for alert_key, record in sends:
            # The alert names the change behind it, whichever message (a link, a recheck) made it fire.
            log.info("alert %s %s: %s", alert_key, record["status"], record.get("message"),
                     extra={"correlation_id": record.get("correlation_id") or correlation.get()})
            value = self.encoder.encode(self.alerts_topic_name, ALERT_SCHEMA, record)
            self.alerts.send_soon(key=alert_key.encode(), value=value, headers=_correlation(record))
            self.metrics.alerts_out.labels(record["rule_id"], record["status"]).inc()

    def open_alerts_by_rule(self) -> dict[str, int]:
        """Open alerts among this worker's partitions, per rule (a scan of the alert index, at scrape time)."""
        out: dict[str, int] = {}
        for _, record in self.alert_index.items():
            if record.get("status") == "open":
                out[record["rule_id"]] = out.get(record["rule_id"], 0) + 1
        return out

    async def send_due_rechecks(self) -> int:
        due = self.deadlines.due(self.watermarks.marks_after)
        for bucket in due:
            await self.links.send(key=bucket.encode(), value=pickling.dumps(Recheck(bucket)))
        return len(due)

    async def rebuild_from_state(self) -> tuple[int, int]:
        """After an assignment changes: the deadlines and verify sums of the buckets this worker now holds.

        One partition at a time, yielding to the event loop between them so heartbeats and the agents go on;
        returns (deadlines, entity rows counted).
        """
        self.deadlines.clear()
        self.live_sums.forget(None)
        rows = 0
        for partition in sorted(self.buckets.active_partitions()):
            def items(partition=partition):
                for key, state in self.buckets.partition_items(partition):
                    bucket = key.decode() if isinstance(key, bytes) else key
                    hops = join_topology.hops_to(split_key(bucket)[0], LINK_HOPS)
                    for system, at in state.get("waiting", ()):
                        self.deadlines.add(system, at, bucket, hops)
                    yield bucket, state
            rows += self.live_sums.build(partition, items())
            await asyncio.sleep(0)
        return len(self.deadlines), rows


def watch_links(app: faust.App, links_name: str, metrics) -> OffsetWatch:
    """The join's watch over the links topic, where every offset is a record (no transactions, no compaction), so
    an offset passed over is a record missing; its counts on /metrics from the start, at 0."""
    watch = OffsetWatch(app, {links_name}, on_lost=lambda topic, count: metrics.records_lost.labels(topic).inc(count))
    metrics.records_skipped.labels(links_name)
    metrics.records_lost.labels(links_name)
    metrics.records_missing.labels(links_name).set_function(lambda: watch.missing(links_name))
    return watch


def _correlation(record: dict | None) -> list[tuple[str, bytes]]:
    return [("correlation_id", (record or {}).get("correlation_id", "").encode())]


def _caused_by(cause: str | None) -> list[tuple[str, bytes]]:
    """The change that made this record go out, which for a link-driven update is not its root's own."""
    return [("caused_by", cause.encode())] if cause else []


def register(app: faust.App, settings: Settings, encoder: Encoder, metrics, watermarks,
             live_sums: LiveSums) -> JoinAgents:
    joins = JoinAgents(app, settings, encoder, metrics, watermarks, live_sums)
    # Entity writes (bundled by the normalizer) and links share one topic, so a bucket fed by both in the
    # same batch emits once. The events topics are read too only while draining what an earlier version
    # left there for the join.
    inputs = app.topic(*join_input_topics(settings), key_serializer="raw", value_serializer="raw")

    # One actor: the offset watch follows each partition's records in the order they are handed over.
    @app.agent(inputs, name="join", concurrency=1)
    async def join(stream):
        async for taken in stream.take_events(settings.worker.batch_max, settings.worker.batch_within_s):
            await joins.process_batch(taken)

    return joins
