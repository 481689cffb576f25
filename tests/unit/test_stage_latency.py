"""The plain-list latency histogram serves what prometheus_client's Histogram serves for the same values."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from streams.metrics import LATENCY_BUCKETS
from streams.stage_latency import StageLatency

VALUES = {"normalized": [0.001, 0.01, 0.0100001, 0.3, 2.5, 7, 400], "joined": [0.05, 0.05, 61]}


def _exposition(registry: CollectorRegistry) -> list[str]:
    # Histogram also serves a creation time per series, which the plain-list one leaves out.
    return [line for line in generate_latest(registry).decode().splitlines() if "_created" not in line]


def test_same_exposition_as_a_prometheus_histogram():
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    fast = StageLatency("lat_seconds", "Latency", LATENCY_BUCKETS, ours)
    slow = Histogram("lat_seconds", "Latency", ["stage"], buckets=LATENCY_BUCKETS, registry=theirs)
    for stage, values in VALUES.items():
        for value in values:
            fast.labels(stage).observe(value)
            slow.labels(stage).observe(value)
    assert _exposition(ours) == _exposition(theirs)
    assert 'lat_seconds_bucket{le="0.01",stage="normalized"} 2.0' in _exposition(ours)


def test_bounds_must_be_sorted_and_end_with_inf():
    with pytest.raises(ValueError, match="lat_seconds"):
        StageLatency("lat_seconds", "Latency", (0.1, 1.0), CollectorRegistry())
    with pytest.raises(ValueError):
        StageLatency("lat_seconds", "Latency", (1.0, 0.1, float("inf")), CollectorRegistry())
