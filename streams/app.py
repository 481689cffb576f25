"""The Faust application: one app, N workers in one consumer group, configured from settings."""

from __future__ import annotations

import socket
from pathlib import Path

import faust

from state import faust_direct_send as direct_send
from state import faust_fetch_wait as fetch_wait
from state import faust_handover as handover
from state import faust_stall_repair as stall_repair
from state import faust_uncommitted_seek as uncommitted_seek
from state.faust_highwater import install
from streams.api import guard
from streams.partitioning import KeyPartitioner
from trueup.settings import Settings


def create_app(settings: Settings, bootstrap: str, index: int, web_port: int) -> faust.App:
    """A Faust app bound to loopback (unless configured), RocksDB tables in the worker's own folder."""
    datadir = Path(settings.data_dir).resolve() / f"worker-{index}"
    token = settings.api.token.get_secret_value() if settings.api.token else None
    # Workers forward requests to each other at this URL (Faust advertises it in the group's assignment).
    bound_everywhere = settings.api.host in ("0.0.0.0", "::", "")
    advertised = settings.api.advertised_host or (socket.gethostname() if bound_everywhere else settings.api.host)
    app = faust.App(
        settings.worker.app_id,
        broker=f"kafka://{bootstrap}",
        store="rocksdb://",
        datadir=str(datadir),
        web_enabled=True,
        web_bind=settings.api.host,
        web_host=settings.api.host,
        web_port=web_port,
        canonical_url=f"http://{advertised}:{web_port}",
        web_in_thread=False,
        broker_session_timeout=settings.kafka.session_timeout_s,
        broker_heartbeat_interval=settings.kafka.heartbeat_interval_s,
        topic_partitions=settings.kafka.partitions,
        topic_replication_factor=settings.kafka.replication_factor,
        producer_linger=settings.kafka.producer_linger_ms / 1000.0,
        producer_max_batch_size=settings.kafka.producer_batch_bytes,
        producer_partitioner=KeyPartitioner(),  # Kafka's default placement, without aiokafka's byte-wise hash
        consumer_max_fetch_size=settings.kafka.fetch_max_bytes,
        table_standby_replicas=settings.worker.standby_replicas,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=settings.worker.commit_interval_s,
        # Only trueup's own routes, each behind the token check; Faust's debug and table views are off.
        web_application_options={"middlewares": [guard(token)], "client_max_size": 64 * 1024},
        web_router_enabled=False,
        web_tables_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
    )
    install(app)  # changelog restores read to the true end (the local broker's ListOffsets reports less)
    fetch_wait.install(app, settings.kafka.fetch_max_wait_ms)
    uncommitted_seek.install(app)  # a worker that left before its first commit leaves nothing unread
    stall_repair.install(app, settings.worker.stalled_partition_s)  # a record Faust skipped is read again
    handover.install(app)  # nor is a record Faust dropped while its partition was paused committed past
    if settings.worker.direct_send:
        direct_send.install(app)  # a record goes into aiokafka's open batch, not through a send task per record
    return app
