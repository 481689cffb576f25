"""Nearest-rank percentiles, checked against hand-computed ranks."""

from __future__ import annotations

from trueup.bench.stats import percentile, summary


def test_nearest_rank_percentiles():
    values = list(range(1, 101))  # 1..100
    assert percentile(values, 50) == 50 and percentile(values, 95) == 95 and percentile(values, 99) == 99
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0 and percentile([3.0, 1.0, 2.0], 99) == 3.0
    assert percentile([], 50) is None


def test_summary_counts_and_bounds():
    s = summary([0.2, 0.1, 0.4, 0.3])
    assert s == {"count": 4, "p50": 0.2, "p95": 0.4, "p99": 0.4, "max": 0.4}
    assert summary([])["p99"] is None
