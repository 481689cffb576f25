"""Percentiles the way the benchmark reports them: nearest rank over the measured values."""

from __future__ import annotations

import math


def percentile(values: list[float], p: float) -> float | None:
    """The nearest-rank p-th percentile (0 < p <= 100), or None with no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def summary(values: list[float]) -> dict:
    """count, p50, p95, p99 and max, in the unit of the values."""
    return {"count": len(values), "p50": percentile(values, 50), "p95": percentile(values, 95),
            "p99": percentile(values, 99), "max": max(values) if values else None}
