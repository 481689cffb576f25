"""Baseline Faust workers for the benchmark, built with the pipeline's own app settings.

`python -m trueup.bench.faust_variant minimal|naive EXPECTED RESULT_FILE` consumes the raw data topics:
minimal only counts (the framework's limit); naive decodes each record and writes one RocksDB table entry
(what a straightforward stateful agent costs). When EXPECTED records are in, it writes the first and last
processing times to RESULT_FILE and stops itself.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import faust
import uvloop

from streams import gc_tuning
from streams.app import create_app
from streams.mapping import load_mapping
from streams.topics import raw_data_topics
from trueup import logs
from trueup.settings import load_settings


def build(variant: str, expected: int, result_file: str) -> faust.App:
    settings = load_settings()
    mapping = load_mapping(settings.mapping)
    app = create_app(settings, settings.kafka.bootstrap, 0, int(os.environ["TRUEUP_BENCH_WEB_PORT"]))
    topics = app.topic(*raw_data_topics(mapping, settings.enabled_sources), key_serializer="raw",
                       value_serializer="raw")
    table = app.Table("bench_naive", default=None, key_type=bytes, value_type=bytes,
                      partitions=settings.kafka.partitions) if variant == "naive" else None
    seen = {"n": 0, "first": None, "cpu_first": None}

    def done() -> None:
        # CPU from the first record on, as the wall clock: the process's, all threads (Faust's consumer too).
        write_atomic(result_file, {"variant": variant, "records": seen["n"], "first": seen["first"],
                                 "last": time.time(), "cpu_s": time.process_time() - seen["cpu_first"]})
        os.kill(os.getpid(), signal.SIGTERM)

    @app.agent(topics, name=f"bench_{variant}")
    async def consume(stream):
        async for event in stream.events():
            if seen["first"] is None:
                seen["first"], seen["cpu_first"] = time.time(), time.process_time()
            if table is not None:
                value = json.loads(event.message.value)
                after = value.get("after") if isinstance(value, dict) else None
                table[event.message.key or b""] = json.dumps(after).encode()
            seen["n"] += 1
            if seen["n"] == expected:
                done()

    @app.task
    async def configure_logging() -> None:
        logs.apply(settings.log.format, "warning")
        gc_tuning.tune(settings.worker.gc_young_threshold)  # as the pipeline's worker does

    return app


def write_atomic(path: str, body: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(body, f)
    os.replace(tmp, path)


def main(argv: list[str]) -> None:
    variant, expected, result_file = argv[0], int(argv[1]), argv[2]
    if variant not in ("minimal", "naive"):
        raise SystemExit(f"variant must be minimal or naive, not {variant!r}")
    uvloop.install()
    app = build(variant, expected, result_file)
    faust.Worker(app, loglevel="warning", redirect_stdouts=False).execute_from_commandline()


if __name__ == "__main__":
    main(sys.argv[1:])
