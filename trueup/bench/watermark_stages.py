"""Where a latency run's watermark time went: the worker's per-stage barrier histogram, read before and after."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from trueup.bench.throughput import metrics_text

FAMILY = "trueup_watermark_stage_seconds"


def read(api_url: str, token: str | None = None) -> dict[str, tuple[int, float]]:
    """Per stage: (barriers timed, seconds in all) from a worker's /metrics; empty if it cannot be read, so the
    latency figures still come out."""
    text = metrics_text(api_url.rstrip("/") + "/metrics", token, timeout_s=15)
    if text is None:
        return {}
    try:
        return totals(text)
    except ValueError:  # a garbled exposition
        return {}


def totals(exposition: str) -> dict[str, tuple[int, float]]:
    counts: dict[str, int] = {}
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(exposition):
        if family.name != FAMILY:
            continue
        for sample in family.samples:
            stage = sample.labels.get("stage")
            if sample.name == f"{FAMILY}_count":
                counts[stage] = int(sample.value)
            elif sample.name == f"{FAMILY}_sum":
                sums[stage] = sample.value
    return {stage: (counts[stage], sums.get(stage, 0.0)) for stage in counts}


def between(before: dict[str, tuple[int, float]], after: dict[str, tuple[int, float]]) -> dict[str, dict]:
    """Per stage, the barriers timed between the two reads and their mean seconds, in the order they were served."""
    out: dict[str, dict] = {}
    for stage, (count, total) in after.items():
        was_count, was_total = before.get(stage, (0, 0.0))
        n = count - was_count
        if n > 0:
            out[stage] = {"count": n, "mean_s": round((total - was_total) / n, 3)}
    return out
