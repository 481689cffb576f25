"""The latency run's per-stage watermark figures come from the worker's histogram, counted between two reads."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from streams.metrics import WATERMARK_STAGE_BUCKETS
from streams.stage_latency import StageLatency
from trueup.bench.watermark_stages import FAMILY, between, totals


def test_stage_figures_are_the_barriers_timed_between_two_reads_of_the_histogram():
    registry = CollectorRegistry()
    stages = StageLatency(FAMILY, "test", WATERMARK_STAGE_BUCKETS, registry)
    stages.labels("raw").observe(0.5)  # before the run: left out
    before = totals(generate_latest(registry).decode())
    for seconds in (0.1, 0.2, 0.3):
        stages.labels("raw").observe(seconds)
    stages.labels("links hop 1").observe(0.05)
    after = totals(generate_latest(registry).decode())
    assert before == {"raw": (1, 0.5)}
    figures = between(before, after)
    assert figures["raw"]["count"] == 3 and abs(figures["raw"]["mean_s"] - 0.2) < 1e-9
    assert figures["links hop 1"] == {"count": 1, "mean_s": 0.05}
    assert between(after, after) == {}
