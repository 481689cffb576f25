"""Entry point of a trueup worker: wires the agents and web views onto the Faust app."""

from __future__ import annotations

import logging
import time

import faust

from streams import join_agent, normalize_agent
from streams.app import create_app
from streams.encoding import Encoder
from streams.mapping import load_mapping
from streams.metrics import WorkerMetrics
from streams.raw_counts import RawCounts
from streams.watermark_tracker import WatermarkTracker
from trueup.settings import Settings

log = logging.getLogger("trueup.worker")


def build_worker_app(settings: Settings, bootstrap: str, index: int, web_port: int) -> faust.App:
    mapping = load_mapping(settings.mapping)
    app = create_app(settings, bootstrap, index, web_port)
    counts = RawCounts(mapping)
    metrics = WorkerMetrics()
    encoder = Encoder(settings.kafka.schema_registry_url)
    normalize_agent.register(app, settings, mapping, metrics, counts, encoder, normalize_agent.worker_name(index))
    watermarks = WatermarkTracker(app, settings, mapping)
    joins = join_agent.register(app, settings, encoder, metrics, watermarks)
    last_assignment: list[frozenset] = [frozenset()]

    @app.timer(interval=settings.worker.watermark_interval_s)
    async def advance_watermarks() -> None:
        if not app.tables.recovery.completed.is_set():
            return  # the bucket tables are not whole yet: nothing to rebuild deadlines from
        now_assigned = frozenset(app.consumer.assignment())
        if now_assigned != last_assignment[0]:
            last_assignment[0] = now_assigned
            log.info("rebuilt %d alert deadlines for the new assignment", joins.rebuild_deadlines())
        await watermarks.tick()
        await joins.send_due_rechecks()
        for system, mark in watermarks.marks.items():
            if mark >= 0:
                metrics.watermark_age.labels(system).set((time.time() * 1000 - mark) / 1000)
        waiting = joins.deadlines.waiting()
        for system in watermarks.marks:
            metrics.alerts_waiting.labels(system).set(waiting.get(system, {}).get("buckets", 0))

    @app.timer(interval=settings.worker.report_interval_s)
    async def report() -> None:
        log.info("raw changes per table: %s", counts.summary())

    @app.page("/counts")
    async def counts_view(web, request):
        return web.json({"worker": index, "tables": counts.as_rows()})

    @app.page("/metrics")
    async def metrics_view(web, request):
        body, content_type = metrics.render()
        return web.bytes(body, headers={"Content-Type": content_type})

    @app.page("/health")
    async def health_view(web, request):
        assigned = sorted(f"{tp.topic}:{tp.partition}" for tp in app.consumer.assignment())
        return web.json({
            "worker": index,
            "partitions": assigned,
            "recovery": "recovering" if not app.tables.recovery.completed.is_set() else "done",
            "sources": watermarks.health(joins.deadlines.waiting()),
            "watermark_error": watermarks.last_error,
        })

    return app


def run_worker(settings: Settings, bootstrap: str, index: int, web_port: int, loglevel: str = "info") -> None:
    app = build_worker_app(settings, bootstrap, index, web_port)
    worker = faust.Worker(app, loglevel=loglevel, redirect_stdouts=False)
    worker.execute_from_commandline()
