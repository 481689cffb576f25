"""The Faust application: one app, N workers in one consumer group, configured from settings."""

from __future__ import annotations

from pathlib import Path

import faust

from state.faust_highwater import install
from trueup.settings import Settings


def create_app(settings: Settings, bootstrap: str, index: int, web_port: int) -> faust.App:
    """A Faust app bound to loopback (unless configured), RocksDB tables in the worker's own folder."""
    datadir = Path(settings.data_dir).resolve() / f"worker-{index}"
    app = faust.App(
        settings.worker.app_id,
        broker=f"kafka://{bootstrap}",
        store="rocksdb://",
        datadir=str(datadir),
        web_enabled=True,
        web_bind=settings.api.host,
        web_host=settings.api.host,
        web_port=web_port,
        web_in_thread=False,
        broker_session_timeout=settings.kafka.session_timeout_s,
        broker_heartbeat_interval=settings.kafka.heartbeat_interval_s,
        topic_partitions=settings.kafka.partitions,
        topic_replication_factor=settings.kafka.replication_factor,
        producer_linger=settings.kafka.producer_linger_ms / 1000.0,
        table_standby_replicas=settings.worker.standby_replicas,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=settings.worker.commit_interval_s,
    )
    install(app)  # changelog restores read to the true end (the local broker's ListOffsets reports less)
    return app
