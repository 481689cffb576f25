"""The worker's aiokafka consumer gets the configured fetch wait, not Faust's hard-coded 1,500 ms."""

from __future__ import annotations

import asyncio

from streams.app import create_app
from trueup.settings import Settings


def test_worker_consumer_waits_as_configured(tmp_path):
    settings = Settings(data_dir=tmp_path, kafka={"fetch_max_wait_ms": 40})

    async def build():
        app = create_app(settings, "127.0.0.1:9", 0, 6099)
        thread = app.consumer._thread
        return thread._create_worker_consumer(app.transport)  # built, not started: nothing connects

    consumer = asyncio.run(build())
    assert consumer._fetch_max_wait_ms == 40
