"""The Faust settings the minimal test workers share, read from the environment under each one's prefix.

Loopback web server on the given port, short session timeouts (group joins on the local broker are slow), four
partitions, replication 1, and reading from the earliest offset.
"""

from __future__ import annotations

import os

import faust

PARTITIONS = 4


def minimal_app(prefix: str, default_id: str, **settings) -> faust.App:
    """A Faust app from {prefix}_APP_ID, {prefix}_BOOTSTRAP and {prefix}_WEB_PORT, with `settings` on top."""
    return faust.App(
        os.environ.get(f"{prefix}_APP_ID", default_id),
        broker=f"kafka://{os.environ.get(f'{prefix}_BOOTSTRAP', '127.0.0.1:9092')}",
        web_enabled=True,
        web_bind="127.0.0.1",
        web_host="127.0.0.1",
        web_port=int(os.environ.get(f"{prefix}_WEB_PORT", "6066")),
        web_in_thread=False,
        broker_session_timeout=6,
        broker_heartbeat_interval=1,
        topic_partitions=PARTITIONS,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        **settings,
    )
