"""`trueup demo`: the stack, traffic into the three sources, and a live view of changes flowing."""

from __future__ import annotations

import json
import time
import urllib.request

from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from trueup.demo_traffic import DemoTraffic


def _counts(url: str) -> list[dict]:
    try:
        with urllib.request.urlopen(url + "/counts", timeout=2) as resp:
            return json.loads(resp.read())["tables"]
    except OSError:
        return []


def _view(stack, traffic: DemoTraffic, started: float, previous: dict, now: float) -> tuple[Group, dict]:
    status = stack.status()
    totals: dict[tuple[str, str], int] = {}
    for comp in status["components"]:
        if comp["name"].startswith("worker-") and comp["state"] == "up":
            for row in _counts(comp["url"]):
                key = (row["source"], row["table"])
                totals[key] = totals.get(key, 0) + row["changes"]
    table = Table(title="raw changes per source table")
    for col in ("source", "table", "changes", "per second"):
        table.add_column(col, justify="right" if col in ("changes", "per second") else "left")
    for (source, name), count in sorted(totals.items()):
        rate = (count - previous.get((source, name), count)) / max(now - previous.get("_t", now), 1e-9)
        table.add_row(source, name, str(count), f"{rate:.1f}")
    comps = Table(title="components")
    for col in ("component", "state", "detail"):
        comps.add_column(col)
    for comp in status["components"]:
        detail = comp.get("url") or ""
        if "phase" in comp:
            detail = f"{comp['phase']}, slot lag {comp.get('slot_lag_bytes')} B, last event {comp.get('last_event_time')}"
        comps.add_row(comp["name"], comp["state"], detail)
    lines = [
        Text(f"query API: {status['api']['url']}   kafka: {status['kafka']['bootstrap']}"),
        Text(f"traffic: {traffic.changes} source row changes written in {now - started:.0f}s"
             + (f"   ERROR {traffic.error}" if traffic.error else "")),
        Text("Ctrl-C stops everything", style="dim"),
    ]
    snapshot = dict(totals)
    snapshot["_t"] = now
    return Group(comps, table, *lines), snapshot


def run_demo(stack, workers: int, rate: float) -> None:
    print("starting the stack (PostgreSQL, broker, three Debezium connectors, workers)...")
    stack.up(workers=workers)
    status = stack.status()
    traffic = DemoTraffic(status["postgres"], rate)
    traffic.start()
    started = time.monotonic()
    previous: dict = {}
    try:
        with Live(refresh_per_second=1, screen=False) as live:
            while True:
                renderable, previous = _view(stack, traffic, started, previous, time.monotonic())
                live.update(renderable)
                time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        traffic.stop()
        traffic.join(5)
        print("stopping the stack...")
        stack.down()
        print("stopped: no trueup process left running")
