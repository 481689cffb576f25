"""A minimal Faust worker for test_paused_partitions: records every offset it is handed, while a timer pauses a
random input partition for 2 ms every 5 ms, as Faust itself pauses partitions around recovery. The worker's
offset watch (state/faust_offset_watch.py) looks at the same records, to be checked against what is missing.

Configured from the environment (PAUSED_*), run as `python -m tests.integration.paused_app` from the repo root.
PAUSED_FIX=0 leaves state.faust_handover out, to measure what plain Faust loses; PAUSED_STALL_S adds the
worker's stall repair (state/faust_stall_repair.py) with that period, to see it meet the stalls Faust makes then.
"""

from __future__ import annotations

import asyncio
import os
import random

import faust

from state import faust_fetch_wait, faust_handover
from state import faust_stall_repair as stall_repair
from state.faust_offset_watch import OffsetWatch
from tests.integration.minimal_app import PARTITIONS, minimal_app
from trueup.settings import KafkaSettings

INPUT_TOPIC = os.environ.get("PAUSED_INPUT", "paused-input")

app = minimal_app(
    "PAUSED", "paused-test",
    store="memory://",
    broker_commit_interval=0.1,  # the worker's own setting: commits land between pauses
)
# The worker's fetch wait: with Faust's own 1.5 s, a partition read again waits out the fetch in flight for the
# others, once they are at their ends, so the last one left crawls on at one read again per 1.5 s.
faust_fetch_wait.install(app, KafkaSettings.model_fields["fetch_max_wait_ms"].default)
if os.environ.get("PAUSED_FIX", "1") != "0":
    faust_handover.install(app)
if os.environ.get("PAUSED_STALL_S"):
    stall_repair.install(app, float(os.environ["PAUSED_STALL_S"]))

source = app.topic(INPUT_TOPIC, key_serializer="raw", value_serializer="raw", partitions=PARTITIONS)
seen: dict[int, set[int]] = {p: set() for p in range(PARTITIONS)}
watch = OffsetWatch(app, {INPUT_TOPIC})
handed = {"records": 0, "pauses": 0, "pausing": True}


@app.agent(source)
async def record(stream):
    async for event in stream.events():
        seen[event.message.partition].add(event.message.offset)
        watch.see(event.message)
        handed["records"] += 1


@app.timer(interval=0.005)
async def pause_one_partition():
    consumer = app.consumer
    assigned = sorted(tp for tp in consumer.assignment() if tp.topic == INPUT_TOPIC)
    if not assigned or app.rebalancing or not handed["pausing"]:
        return
    tp = random.choice(assigned)
    consumer.pause_partitions([tp])
    await asyncio.sleep(0.002)
    consumer.resume_partitions([tp])
    handed["pauses"] += 1


@app.page("/rewind")
async def rewind(web, request):
    """Stop pausing, and read every input partition again from its start."""
    handed["pausing"] = False
    consumer = app.consumer
    tps = {tp: 0 for tp in consumer.assignment() if tp.topic == INPUT_TOPIC}
    async with faust_handover.seek_lock(consumer):
        faust_handover.note_seek(consumer, tps)
        await consumer.seek_wait(tps)
    return web.json({"rewound": len(tps)})


@app.page("/dump")
async def dump(web, request):
    return web.json({
        "distinct": {p: len(offsets) for p, offsets in seen.items()},
        "lowest": {p: min(offsets, default=0) for p, offsets in seen.items()},
        "highest": {p: max(offsets, default=-1) for p, offsets in seen.items()},
        "skipped": watch.skipped.get(INPUT_TOPIC, 0),
        "missing": watch.missing(INPUT_TOPIC),
        "filled": watch.filled.get(INPUT_TOPIC, 0),
        "lost": watch.lost.get(INPUT_TOPIC, 0),
        **handed,
    })


if __name__ == "__main__":
    faust.Worker(app, loglevel="info", redirect_stdouts=False).execute_from_commandline()
