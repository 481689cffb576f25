"""A minimal Faust worker for test_table_restore: counts input records per key in a RocksDB table, shows it on /dump.

Configured from the environment (RESTORE_*), run as `python -m tests.integration.restore_app` from the repo root.
RESTORE_FIX=0 leaves the true-highwater fix out, to measure what plain Faust restores on the local broker
(RESTORE_CONSISTENCY_CHECK=0 then keeps Faust's consistency check from crashing it first).
"""

from __future__ import annotations

import os

import faust

from state.faust_highwater import install
from tests.integration.minimal_app import PARTITIONS, minimal_app

INPUT_TOPIC = os.environ.get("RESTORE_INPUT", "restore-input")

app = minimal_app(
    "RESTORE", "restore-test",
    store="rocksdb://",
    datadir=os.environ.get("RESTORE_DATADIR", "/tmp/restore-app"),
    producer_linger=0.2,  # as in LOCAL-STACK-FACTS: many changelog records per batch
    table_standby_replicas=int(os.environ.get("RESTORE_STANDBYS", "0")),
    recovery_consistency_check=os.environ.get("RESTORE_CONSISTENCY_CHECK", "1") != "0",
)
if os.environ.get("RESTORE_FIX", "1") != "0":
    install(app)

source = app.topic(INPUT_TOPIC, key_type=str, value_type=int, key_serializer="json", value_serializer="json",
                   partitions=PARTITIONS)
counts = app.Table("counts", default=int, key_type=str, value_type=int, partitions=PARTITIONS)


@app.agent(source)
async def count(stream):
    async for key, _ in stream.items():
        counts[key] += 1


@app.page("/dump")
async def dump(web, request):
    changelog = counts.changelog_topic_name
    actives = sorted(tp.partition for tp in app.assignor.assigned_actives() if tp.topic == changelog)
    items = dict(counts.items())
    return web.json({
        "actives": actives,
        "recovered": app.tables.recovery.completed.is_set() and not app.tables.recovery.in_recovery,
        "keys": len(items),
        "sum": sum(items.values()),
    })


if __name__ == "__main__":
    faust.Worker(app, loglevel="info", redirect_stdouts=False).execute_from_commandline()
