"""A connector's or poller's Prometheus `/metrics`, read from its live status on every scrape."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from connectors.status import ConnectorStatus

PHASES = ("starting", "snapshot", "streaming", "failed", "stopped")


class StatusCollector:
    """Turns the status the connector keeps anyway into metric families; nothing is counted twice."""

    def __init__(self, status: ConnectorStatus) -> None:
        self.status = status

    def collect(self):
        s, name = self.status, [self.status.name]
        records = CounterMetricFamily("trueup_connector_records", "Change records produced to Kafka",
                                      labels=["connector"])
        records.add_metric(name, s.records)
        yield records
        snapshot = CounterMetricFamily("trueup_connector_snapshot_records", "Records of the initial snapshot",
                                       labels=["connector"])
        snapshot.add_metric(name, s.snapshot_records)
        yield snapshot
        restored = CounterMetricFamily("trueup_connector_offsets_restored",
                                       "Starts that put the kept offsets copy back over a broken offsets file",
                                       labels=["connector"])
        restored.add_metric(name, s.offsets_restored)
        yield restored
        batches = CounterMetricFamily("trueup_connector_batches", "Batches acknowledged by Kafka",
                                      labels=["connector"])
        batches.add_metric(name, s.batches)
        yield batches
        errors = CounterMetricFamily("trueup_connector_errors", "Transient errors retried", labels=["connector"])
        errors.add_metric(name, s.errors)
        yield errors
        phase = GaugeMetricFamily("trueup_connector_phase", "1 for the phase the connector is in",
                                  labels=["connector", "phase"])
        for p in PHASES:
            phase.add_metric([s.name, p], 1.0 if s.phase == p else 0.0)
        yield phase
        if s.last_event_time_ms is not None:
            age = GaugeMetricFamily("trueup_connector_last_event_age_seconds",
                                    "Wall clock minus the source commit time of the newest record",
                                    labels=["connector"])
            age.add_metric(name, max(0.0, time.time() - s.last_event_time_ms / 1000))
            yield age


def serve_metrics(status: ConnectorStatus, host: str, port: int) -> str:
    """Start serving in a daemon thread; returns the URL, also kept in the status for `trueup stack status`."""
    registry = CollectorRegistry()
    registry.register(StatusCollector(status))
    server, _ = start_http_server(port, addr=host, registry=registry)
    url = f"http://{host}:{server.server_address[1]}/metrics"
    status.metrics_url = url
    return url
