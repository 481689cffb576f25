"""Prometheus metrics of one worker, in its own registry so every worker serves exactly its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


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
        self.dead_letters = Counter(
            "trueup_dead_letters", "Records sent to the dead-letter topic", ["source", "stage"],
            registry=self.registry,
        )
        self.control = Counter(
            "trueup_control_records", "Heartbeats, signals, transaction markers and tombstones recognised",
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
        self.alerts_waiting = Gauge(
            "trueup_alert_checks_waiting", "Bucket checks waiting for a source's watermark", ["source"],
            registry=self.registry,
        )

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
