"""A latency histogram per stage counted in plain lists, served in Prometheus' histogram format.

It is observed several times per change, always from the worker's event loop, which also serves /metrics;
prometheus_client's Histogram takes a lock for the sum and for the bucket on every observation. The series
are Histogram's (buckets, count, sum) without `_created`, which no query of ours reads.
"""

from __future__ import annotations

from bisect import bisect_left
from itertools import accumulate

from prometheus_client import CollectorRegistry
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.utils import floatToGoString


class _Stage:
    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds, self.counts, self.sum = bounds, [0] * len(bounds), 0.0

    def observe(self, seconds: float) -> None:
        # Prometheus buckets count values <= their bound: the first bound not below the value.
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.sum += seconds


class StageLatency:
    """labels(stage).observe(seconds); the bounds must be sorted and end with +Inf."""

    def __init__(self, name: str, documentation: str, bounds: tuple[float, ...],
                 registry: CollectorRegistry) -> None:
        if not bounds or bounds[-1] != float("inf") or list(bounds) != sorted(bounds):
            raise ValueError(f"{name}: bucket bounds must be sorted and end with +Inf, not {bounds}")
        self.name, self.documentation, self.bounds = name, documentation, tuple(bounds)
        self._le = [floatToGoString(b) for b in self.bounds]
        self._stages: dict[str, _Stage] = {}
        registry.register(self)

    def labels(self, stage: str) -> _Stage:
        if stage not in self._stages:
            self._stages[stage] = _Stage(self.bounds)
        return self._stages[stage]

    def collect(self):
        family = HistogramMetricFamily(self.name, self.documentation, labels=["stage"])
        for stage, counts in self._stages.items():
            family.add_metric([stage], list(zip(self._le, accumulate(counts.counts))), counts.sum)
        yield family
