"""A minimal Faust worker for test_paused_partitions: records every offset it is handed, while a timer pauses a
random input partition for 2 ms every 5 ms, as Faust itself pauses partitions around recovery.

Configured from the environment (PAUSED_*), run as `python -m tests.integration.paused_app` from the repo root.
PAUSED_FIX=0 leaves state.faust_handover out, to measure what plain Faust loses; PAUSED_STALL_S adds the
worker's stall repair (state/faust_stall_repair.py) with that period, to see it meet the stalls Faust makes then.
"""

from __future__ import annotations

import asyncio
import os
import random

import faust

from state import faust_handover
from state import faust_stall_repair as stall_repair

INPUT_TOPIC = os.environ.get("PAUSED_INPUT", "paused-input")
PARTITIONS = 4

app = faust.App(
    os.environ.get("PAUSED_APP_ID", "paused-test"),
    broker=f"kafka://{os.environ.get('PAUSED_BOOTSTRAP', '127.0.0.1:9092')}",
    store="memory://",
    web_enabled=True,
    web_bind="127.0.0.1",
    web_host="127.0.0.1",
    web_port=int(os.environ.get("PAUSED_WEB_PORT", "6066")),
    web_in_thread=False,
    broker_session_timeout=6,
    broker_heartbeat_interval=1,
    broker_commit_interval=0.1,  # the worker's own setting: commits land between pauses
    topic_partitions=PARTITIONS,
    topic_replication_factor=1,
    consumer_auto_offset_reset="earliest",
)
if os.environ.get("PAUSED_FIX", "1") != "0":
    faust_handover.install(app)
if os.environ.get("PAUSED_STALL_S"):
    stall_repair.install(app, float(os.environ["PAUSED_STALL_S"]))

source = app.topic(INPUT_TOPIC, key_serializer="raw", value_serializer="raw", partitions=PARTITIONS)
seen: dict[int, set[int]] = {p: set() for p in range(PARTITIONS)}
handed = {"records": 0, "pauses": 0}


@app.agent(source)
async def record(stream):
    async for event in stream.events():
        seen[event.message.partition].add(event.message.offset)
        handed["records"] += 1


@app.timer(interval=0.005)
async def pause_one_partition():
    consumer = app.consumer
    assigned = sorted(tp for tp in consumer.assignment() if tp.topic == INPUT_TOPIC)
    if not assigned or app.rebalancing:
        return
    tp = random.choice(assigned)
    consumer.pause_partitions([tp])
    await asyncio.sleep(0.002)
    consumer.resume_partitions([tp])
    handed["pauses"] += 1


@app.page("/dump")
async def dump(web, request):
    return web.json({
        "distinct": {p: len(offsets) for p, offsets in seen.items()},
        **handed,
    })


if __name__ == "__main__":
    faust.Worker(app, loglevel="info", redirect_stdouts=False).execute_from_commandline()
