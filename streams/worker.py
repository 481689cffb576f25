"""Entry point of a trueup worker: wires the agents and web views onto the Faust app."""

from __future__ import annotations

import logging
import time

import faust
import uvloop

from aiohttp import web
from confluent_kafka import KafkaException

from state.committed_tails import first_past_committed
from state.faust_settled import tables_settled
from streams import api, gc_tuning, join_agent, normalize_agent
from streams.app import create_app
from streams.encoding import Encoder
from streams.events_drain import refusal, unjoined
from streams.mapping import load_mapping
from streams.metrics import WorkerMetrics
from streams.raw_counts import RawCounts
from streams.api import QueryApi
from streams.commit_signal import CommitSignal, follow_commits
from streams.scheduled_verify import ScheduledVerify
from streams.verify_specs import entity_specs
from streams.topic_sensor import TopicCounts
from streams.topics import events_topics
from streams.verify_sums import LiveSums
from trueup import logs
from streams.health import SlotLag, sources_health
from streams.watermark_tracker import WatermarkTracker
from trueup.settings import Settings, SettingsError

log = logging.getLogger("trueup.worker")


def build_worker_app(settings: Settings, bootstrap: str, index: int, web_port: int) -> faust.App:
    mapping = load_mapping(settings.mapping)
    app = create_app(settings, bootstrap, index, web_port)
    counts = RawCounts(mapping, settings.enabled_sources)
    metrics = WorkerMetrics()
    app.sensors.add(TopicCounts(metrics))
    encoder = Encoder(settings.kafka.schema_registry_url)
    normalize_agent.register(app, settings, mapping, metrics, counts, encoder, normalize_agent.worker_name(index))
    watermarks = WatermarkTracker(app, settings, mapping)
    specs = {entity: spec for entity, (_, _, spec) in entity_specs(settings, mapping).items()}
    live_sums = LiveSums(specs)
    joins = join_agent.register(app, settings, encoder, metrics, watermarks, live_sums)
    last_assignment: list[frozenset] = [frozenset()]

    commits = CommitSignal()
    app.sensors.add(commits)

    @app.task
    async def watermark_ticks() -> None:
        # After each commit of this worker, and at least every interval (other workers' commits, idle sources).
        await follow_commits(commits, settings.worker.watermark_interval_s, lambda: app.should_stop,
                             advance_watermarks)

    async def advance_watermarks() -> None:
        # Until then a tick could rebuild deadlines from half-restored partitions and lose some.
        if not tables_settled(app):
            return
        now_assigned = frozenset(app.consumer.assignment())
        if now_assigned != last_assignment[0]:
            last_assignment[0] = now_assigned
            started = time.monotonic()
            deadlines, rows = await joins.rebuild_from_state()
            log.info("rebuilt %d alert deadlines and the verify sums of %d rows for the new assignment in %.1fs",
                     deadlines, rows, time.monotonic() - started)
        await watermarks.tick()
        for stage, seconds in watermarks.stage_times():
            metrics.watermark_stages.labels(stage).observe(seconds)
        await joins.send_due_rechecks()
        for topic, lag in watermarks.lag.items():
            metrics.consumer_lag.labels(topic).set(lag)
        for system, mark in watermarks.marks.items():
            if mark >= 0:
                metrics.watermark_age.labels(system).set((time.time() * 1000 - mark) / 1000)
        waiting = joins.deadlines.waiting()
        for system in watermarks.marks:
            metrics.alerts_waiting.labels(system).set(waiting.get(system, {}).get("buckets", 0))

    @app.timer(interval=settings.worker.report_interval_s)
    async def report() -> None:
        log.info("raw changes per table: %s", counts.summary())

    slots = SlotLag(settings)
    scheduled = ScheduledVerify(app, settings, mapping, bootstrap)
    if settings.verify.interval_s > 0:
        app.timer(interval=settings.verify.interval_s, on_leader=True)(scheduled.run_once)

    def local_health() -> dict:
        return {
            "worker": index,
            "url": str(app.conf.canonical_url),
            "partitions": sorted(f"{tp.topic}:{tp.partition}" for tp in app.consumer.assignment()),
            "recovery": "done" if app.tables.recovery.completed.is_set() else "recovering",
            "verify": scheduled.state,
        }

    async def source_health() -> dict:
        await slots.refresh()
        return sources_health(settings, mapping, watermarks.health(joins.deadlines.waiting()), slots)

    async def counts_view(request: web.Request) -> web.Response:
        return web.json_response({"worker": index, "tables": counts.as_rows()})

    async def metrics_view(request: web.Request) -> web.Response:
        metrics.open_alerts.clear()
        for rule_id, count in joins.open_alerts_by_rule().items():
            metrics.open_alerts.labels(rule_id).set(count)
        last = scheduled.state.get("last")
        if last:
            metrics.verify_drift.clear()
            for kind, count in {"missing_in_trueup": 0, "extra_in_trueup": 0, "field_differs": 0,
                                **last["drift_by_kind"]}.items():
                metrics.verify_drift.labels(kind).set(count)
            metrics.verify_rows.set(last["rows_checked"])
        body, content_type = metrics.render()
        return web.Response(body=body, headers={"Content-Type": content_type})

    query_api = QueryApi(app, settings, joins.buckets, joins.alert_index, local_health, source_health, live_sums)
    api.register(app, query_api, {"/counts": counts_view, "/metrics": metrics_view})
    return app


def refuse_unjoined_events(settings: Settings, bootstrap: str, config_file: str | None) -> None:
    """Fail at start where the events topics hold changes an earlier version left for its join and this group's
    join, not reading them (worker.join_reads_events off), would never see (README, Joins: upgrading)."""
    if settings.worker.join_reads_events:
        return
    group = settings.worker.app_id
    try:
        found = unjoined(first_past_committed(bootstrap, group, events_topics(settings.topics)))
    except (KafkaException, TimeoutError, RuntimeError) as exc:
        raise SettingsError(f"cannot check setting worker.join_reads_events against group {group}'s commits on "
                            f"the events topics at {bootstrap}: {exc}") from None
    if found:
        raise SettingsError(refusal(found, group, settings.topics.events_prefix, config_file))


def run_worker(settings: Settings, bootstrap: str, index: int, web_port: int, loglevel: str = "info") -> None:
    uvloop.install()  # before the app makes its loop: fewer event-loop costs per message
    app = build_worker_app(settings, bootstrap, index, web_port)

    @app.task
    async def configure_logging() -> None:
        # After the worker set up its own handlers: JSON (or text) with correlation ids, and the root logger
        # back at our level (left at DEBUG, every library debug call would build a record).
        logs.apply(settings.log.format, loglevel)
        gc_tuning.tune(settings.worker.gc_young_threshold)

    worker = faust.Worker(app, loglevel=loglevel, redirect_stdouts=False)
    worker.execute_from_commandline()
