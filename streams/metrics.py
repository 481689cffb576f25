"""Prometheus metrics of one worker, in its own registry so every worker serves exactly its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from streams.stage_latency import StageLatency


LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, float("inf"))
WATERMARK_STAGE_BUCKETS = (0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2.5, 5, 10, 30, 60, 300, float("inf"))


class WorkerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events_in = Counter(
            "trueup_events_in", "Raw change records received", ["source", "table"], registry=self.registry
        )
        self.events_out = Counter(
            "trueup_events_out", "Canonical events written", ["source", "entity_type"], registry=self.registry
        )
        self.duplicates = Counter(
            "trueup_duplicates_dropped",
            "Changes dropped because the entity's state already holds them (duplicate) or newer (stale)",
            ["source", "reason"],
            registry=self.registry,
        )
        self.snapshot_landed = Counter(
            "trueup_snapshot_rows_landed",
            "Snapshot reads applied over streamed state (a snapshot after streaming; deletes need verify --repair)",
            ["source"], registry=self.registry,
        )
        self.dead_letters = Counter(
            "trueup_dead_letters", "Records sent to the dead-letter topic", ["source", "stage"],
            registry=self.registry,
        )
        self.control = Counter(
            "trueup_control_records", "Heartbeats, connector marks, signals, transaction markers and tombstones recognised",
            ["source", "kind"], registry=self.registry,
        )

        self.join_messages = Counter(
            "trueup_join_messages",
            "Join bucket messages: applied, replayed (outputs re-sent) or ignored (older than the state)",
            ["result"], registry=self.registry,
        )
        self.projections_out = Counter(
            "trueup_projections_out", "Projection records written (updates and tombstones)", ["projection", "kind"],
            registry=self.registry,
        )
        self.alerts_out = Counter(
            "trueup_alerts_out", "Alert records written, by rule and status", ["rule_id", "status"],
            registry=self.registry,
        )
        self.watermark_age = Gauge(
            "trueup_source_watermark_age_seconds", "Wall clock minus the source's watermark", ["source"],
            registry=self.registry,
        )
        self.watermark_stages = StageLatency(
            "trueup_watermark_stage_seconds",
            "Time a watermark barrier took to pass each stage (raw, entity writes, links hop N): until the group's "
            "commits reached the stage's ends and a tick read them",
            WATERMARK_STAGE_BUCKETS, self.registry,
        )
        self.alerts_waiting = Gauge(
            "trueup_alert_checks_waiting", "Bucket checks waiting for a source's watermark", ["source"],
            registry=self.registry,
        )

        self.records_in = Counter(
            "trueup_records_in", "Records this worker consumed, per topic", ["topic"], registry=self.registry
        )
        self.records_skipped = Counter(
            "trueup_records_skipped",
            "Records of the links topic the join agent's stream passed over, where every offset is a record "
            "(state/offset_gaps.py); trueup_records_missing says how many are still not read again",
            ["topic"], registry=self.registry,
        )
        self.records_missing = Gauge(
            "trueup_records_missing",
            "Records of the links topic passed over, not read again and not yet passed by the group's commit, on "
            "the partitions this worker holds (back to 0 when they are reassigned)", ["topic"], registry=self.registry,
        )
        self.records_lost = Counter(
            "trueup_records_lost",
            "Records of the links topic passed over that the group's commit passed before they were read again: "
            "their changes are missing downstream", ["topic"], registry=self.registry,
        )
        self.records_out = Counter(
            "trueup_records_out", "Records this worker produced, per topic (changelogs included)", ["topic"],
            registry=self.registry,
        )
        self.latency = StageLatency(
            "trueup_processing_latency_seconds",
            "Source commit to this stage: normalized (canonical event sent), joined (bucket written), "
            "alerted (alert sent)",
            LATENCY_BUCKETS, self.registry,
        )
        self.consumer_lag = Gauge(
            "trueup_consumer_lag", "Records not yet committed by the group, from true end offsets, per topic",
            ["topic"], registry=self.registry,
        )
        self.open_alerts = Gauge(
            "trueup_open_alerts", "Open alerts held by this worker's partitions, per rule", ["rule_id"],
            registry=self.registry,
        )
        self.verify_drift = Gauge(
            "trueup_verify_drift", "Drift found by the last scheduled verify run, per kind", ["kind"],
            registry=self.registry,
        )
        self.verify_rows = Gauge(
            "trueup_verify_rows_checked", "Rows the last scheduled verify run checked", registry=self.registry
        )

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
