"""Latency: the simulator at a steady rate through the real stack; source commit to event, projection, alert.

Every canonical event carries its source commit time; its Kafka timestamp is when the worker sent it. A
projection names the change that made it go out (its `caused_by` header; the newest field source time for
records without one), and that change's commit time against the projection's timestamp gives
commit-to-projection. An alert names the change behind it (correlation id); for rules without an SLA, the
alert's timestamp against that change's commit time gives commit-to-alert. Only records caused during the
measured window count.
"""

from __future__ import annotations

import time

from state.topic_end import read_to_end
from streams.encoding import Encoder
from streams.topics import PROJECTIONS, events_topics
from streams.values import epoch_ms
from trueup.bench import watermark_stages
from trueup.bench.stats import summary
from trueup.query import QueryError, fetch, watermark_ms
from trueup.settings import Settings
from trueup.simulator import Simulator


def wait_caught_up(api_url: str, past_ms: int, timeout_s: float, token: str | None = None) -> float:
    """Wait until every source's watermark has passed past_ms; returns the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        try:
            sources = fetch(api_url, "/health", None, token, timeout_s=10)["sources"]
            if sources and all(watermark_ms(s) >= past_ms for s in sources.values()):
                return time.monotonic() - started
        except QueryError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the pipeline did not catch up within {timeout_s}s")


def measure(settings: Settings, stack_status: dict, rate: float, duration_s: float, seed: int,
            echo=print, token: str | None = None) -> dict:
    bootstrap, api = stack_status["kafka"]["bootstrap"], stack_status["api"]["url"]
    sim = Simulator(stack_status["postgres"], rate=rate, duration_s=duration_s, seed=seed, faults=0.05,
                    max_delay_s=0.5)
    echo(f"latency: simulator at {rate:g} changes/s for {duration_s:g}s")
    stages_before = watermark_stages.read(api, token)
    window_start = int(time.time() * 1000)
    began = time.monotonic()
    sim.run()
    wrote_s = time.monotonic() - began
    written = sim.progress()["changes"]
    window_end = int(time.time() * 1000)
    caught_up_s = wait_caught_up(api, window_end, timeout_s=max(600.0, duration_s * 20), token=token)
    stages = watermark_stages.between(stages_before, watermark_stages.read(api, token))
    encoder = Encoder(settings.kafka.schema_registry_url)
    prefix = settings.topics
    commit_of: dict[str, int] = {}
    to_event: list[float] = []
    for r in read_to_end(bootstrap, events_topics(settings.topics), timeout_s=600):
        _, event = encoder.decode(r.value)
        source_ms = epoch_ms(event["source_ts"])
        if source_ms < window_start:
            continue
        commit_of[event["correlation_id"]] = source_ms
        to_event.append((r.timestamp_ms - source_ms) / 1000)
    to_projection: list[float] = []
    for r in read_to_end(bootstrap, [f"{prefix.projections_prefix}.{p}" for p in PROJECTIONS], timeout_s=600):
        if r.value is None:
            continue
        caused_by = dict(r.headers).get("caused_by")
        if caused_by is not None:
            # The change that made this record go out; for an update through links it is not among the
            # projection's own fields, whose newest time would count the wait since that older change.
            source_ms = commit_of.get(caused_by.decode())
            if source_ms is not None:
                to_projection.append((r.timestamp_ms - source_ms) / 1000)
            continue
        _, projection = encoder.decode(r.value)
        times = [epoch_ms(f["source_ts"]) for f in projection["fields"].values() if f.get("source_ts") is not None]
        if times and max(times) >= window_start:
            to_projection.append((r.timestamp_ms - max(times)) / 1000)
    to_alert: list[float] = []
    by_rule: dict[str, list[float]] = {}
    for r in read_to_end(bootstrap, [prefix.alerts], timeout_s=600):
        _, alert = encoder.decode(r.value)
        source_ms = commit_of.get(alert.get("correlation_id") or "")
        if source_ms is None or alert.get("deadline") is not None or alert["status"] != "open":
            continue
        to_alert.append((r.timestamp_ms - source_ms) / 1000)
        by_rule.setdefault(alert["rule_id"], []).append(to_alert[-1])
    return {
        "rate_asked": rate, "duration_s": duration_s, "changes_written": written,
        "rate_achieved": round(written / wrote_s, 1) if wrote_s else None,
        "caught_up_after_s": round(caught_up_s, 2),
        "commit_to_event_s": summary(to_event),
        "commit_to_projection_s": summary(to_projection),
        "commit_to_alert_s": summary(to_alert),
        # Rules wait for the watermark after different link hops (join_topology.HOPS): where the tail comes from.
        "commit_to_alert_by_rule_s": {rule: summary(values) for rule, values in sorted(by_rule.items())},
        # Barriers timed per stage over the run (the worker's trueup_watermark_stage_seconds): where alerts wait.
        "watermark_stage_mean_s": stages,
        "target": {"commit_to_alert_p99_s": 1.0},
    }
