"""Entry point of a trueup worker: wires the agents and web views onto the Faust app."""

from __future__ import annotations

import logging

import faust

from streams.app import create_app
from streams.mapping import load_mapping
from streams.raw_counts import RawCounts
from streams.topics import raw_data_topics
from trueup.settings import Settings

log = logging.getLogger("trueup.worker")


def build_worker_app(settings: Settings, bootstrap: str, index: int, web_port: int) -> faust.App:
    mapping = load_mapping(settings.mapping)
    app = create_app(settings, bootstrap, index, web_port)
    counts = RawCounts(mapping)
    raw = app.topic(
        *raw_data_topics(mapping, settings.enabled_sources),
        key_serializer="raw",
        value_serializer="raw",
        acks=True,
    )

    @app.agent(raw, name="raw_counts")
    async def count_raw(stream):
        async for event in stream.events():
            counts.observe(event.message.topic, event.message.value)

    @app.timer(interval=settings.worker.report_interval_s)
    async def report() -> None:
        log.info("raw changes per table: %s", counts.summary())

    @app.page("/counts")
    async def counts_view(web, request):
        return web.json({"worker": index, "tables": counts.as_rows()})

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
