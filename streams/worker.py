"""Entry point of a trueup worker: wires the agents and web views onto the Faust app."""

from __future__ import annotations

import logging

import faust

from streams import join_agent, normalize_agent
from streams.app import create_app
from streams.encoding import Encoder
from streams.mapping import load_mapping
from streams.metrics import WorkerMetrics
from streams.raw_counts import RawCounts
from trueup.settings import Settings

log = logging.getLogger("trueup.worker")


def build_worker_app(settings: Settings, bootstrap: str, index: int, web_port: int) -> faust.App:
    mapping = load_mapping(settings.mapping)
    app = create_app(settings, bootstrap, index, web_port)
    counts = RawCounts(mapping)
    metrics = WorkerMetrics()
    encoder = Encoder(settings.kafka.schema_registry_url)
    normalize_agent.register(app, settings, mapping, metrics, counts, encoder, normalize_agent.worker_name(index))
    join_agent.register(app, settings, encoder, metrics)

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
        })

    return app


def run_worker(settings: Settings, bootstrap: str, index: int, web_port: int, loglevel: str = "info") -> None:
    app = build_worker_app(settings, bootstrap, index, web_port)
    worker = faust.Worker(app, loglevel=loglevel, redirect_stdouts=False)
    worker.execute_from_commandline()
