"""`trueup bench`: latency (and the captured input) on a real stack, throughput against baselines, snapshot.

Each part runs on stacks and brokers of its own in a temporary folder, removed at the end; the result goes
to `<out>/bench-<time>.json` and `.png`.
"""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from state.topic_end import read_to_end
from streams.mapping import load_mapping
from streams.topics import raw_data_topics
from trueup.bench import envelopes, latency, snapshot
from trueup.bench.envelopes import Raw
from trueup.bench.report import write_json, write_png
from trueup.bench.throughput import run_throughput
from trueup.settings import Settings
from trueup.stack.orchestrator import Stack
from trueup.stack.postgres import cluster_home

PARTS = ("latency", "throughput", "snapshot")


def machine() -> dict:
    memory = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    model = None
    try:
        model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), None)
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu_model": model, "memory_gib": memory, "python": platform.python_version(),
            "system": platform.platform()}


def _stack(settings: Settings, folder: Path, echo) -> Stack:
    return Stack(settings.model_copy(update={"data_dir": folder}), echo=lambda *a: None)


def _remove(stack: Stack) -> None:
    stack.down()
    shutil.rmtree(stack.data_dir, ignore_errors=True)
    shutil.rmtree(cluster_home(stack.data_dir), ignore_errors=True)


def capture(settings: Settings, bootstrap: str) -> list[Raw]:
    """Every record the connectors wrote to the raw data topics (heartbeats and signals left out), in commit order."""
    topics = raw_data_topics(load_mapping(settings.mapping), settings.enabled_sources)
    records = [Raw(r.topic, r.key, r.value) for r in read_to_end(bootstrap, topics, timeout_s=600) if r.value]
    return envelopes.in_commit_order(records)


def _keep_profile(throughput: dict, work: Path, stem: Path) -> None:
    """Keep the profiled run's raw py-spy stacks beside the result (its summary keeps only the top functions):
    callers and whole stacks are in the raw file, for flame graphs and questions the summary cannot answer."""
    profile = throughput.get("profile")
    raws = sorted(work.glob("full-*/profile.txt"))
    if not isinstance(profile, dict) or "error" in profile or not raws:
        return
    kept = stem.with_name(stem.name + "-profile.txt")
    kept.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(raws[-1], kept)
    profile["raw_stacks"] = kept.name


def run_bench(settings: Settings, out: Path, events: int, runs: int, latency_rate: float, latency_s: float,
              snapshot_rows: int, parts: tuple[str, ...] = PARTS, echo=print,
              input_file: Path | None = None, snapshot_workers: int = 1,
              latency_workers: int = 1) -> tuple[dict, Path, Path]:
    """Run the parts; the throughput input comes from the latency stack, or from `input_file` when given."""
    started = datetime.now(timezone.utc)
    token = settings.api.token.get_secret_value() if settings.api.token else None
    result: dict = {"started": started.isoformat(), "machine": machine(), "parts": list(parts)}
    stem = out / f"bench-{started.strftime('%Y%m%dT%H%M%SZ')}"
    work = Path(tempfile.mkdtemp(prefix="trueup-bench-"))
    try:
        captured: list[Raw] = envelopes.load(input_file) if input_file else []
        if "latency" in parts or ("throughput" in parts and not captured):
            echo("starting a stack for the latency run (its raw records are the throughput input)")
            stack = _stack(settings, work / "stack", echo)
            try:
                stack.up(workers=latency_workers)
                status = stack.status()
                result["latency"] = latency.measure(settings, status, latency_rate, latency_s,
                                                    seed=int(time.time()), echo=echo, token=token)
                result["latency"]["workers"] = latency_workers
                captured = capture(settings, status["kafka"]["bootstrap"])
                out.mkdir(parents=True, exist_ok=True)
                envelopes.save(captured, out / "bench-input.jsonl")
            finally:
                _remove(stack)
            if "latency" not in parts:
                result.pop("latency")
        if "throughput" in parts:
            result["throughput"] = run_throughput(settings, captured, events, runs, work / "throughput", echo)
            _keep_profile(result["throughput"], work / "throughput", stem)
        if "snapshot" in parts:
            stack = _stack(settings, work / "snapshot", echo)
            try:
                result["snapshot"] = snapshot.measure(stack, snapshot_rows, echo, snapshot_workers, token)
            finally:
                _remove(stack)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["finished"] = datetime.now(timezone.utc).isoformat()
    json_path, png_path = stem.with_suffix(".json"), stem.with_suffix(".png")
    write_json(result, json_path)
    write_png(result, png_path)
    return result, json_path, png_path
