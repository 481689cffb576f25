"""The demo's live terminal view, built from plain data: what flows per source, how far behind, what is wrong.

`snapshot` gathers the data from the stack and the query API; `render` turns a snapshot (and the previous
one, for rates) into rich renderables. Rendering never calls out, so it is tested with plain dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.console import Group
from rich.table import Table
from rich.text import Text

from trueup.query import QueryError, fetch

NEWEST = 8
MAX_ALERT_PAGES = 20


@dataclass
class Snapshot:
    at: float
    api_url: str
    bootstrap: str
    components: list[dict]
    changes: dict[str, int]  # source -> raw changes counted by the workers
    sources: dict[str, dict]  # system -> /health source entry (watermark lag, waiting checks)
    open_by_rule: dict[str, int]
    newest: list[dict]  # newest open alerts, newest first
    simulated: dict = field(default_factory=dict)  # the simulator's progress
    errors: list[str] = field(default_factory=list)


def _open_alerts(api_url: str, token: str | None) -> list[dict]:
    items, cursor = [], None
    for _ in range(MAX_ALERT_PAGES):
        page = fetch(api_url, "/alerts", {"status": "open", "limit": 500, "cursor": cursor}, token, timeout_s=5)
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    return items


def snapshot(stack, token: str | None, now: float, simulated: dict) -> Snapshot:
    status = stack.status()
    errors: list[str] = []
    changes: dict[str, int] = {}
    for comp in status["components"]:
        if comp["name"].startswith("worker-") and comp["state"] == "up":
            try:
                for row in fetch(comp["url"], "/counts", None, token, timeout_s=2)["tables"]:
                    changes[row["source"]] = changes.get(row["source"], 0) + row["changes"]
            except QueryError as exc:
                errors.append(str(exc))
    api = status["api"]["url"]
    sources: dict[str, dict] = {}
    alerts: list[dict] = []
    try:
        sources = fetch(api, "/health", None, token, timeout_s=5).get("sources", {})
        alerts = _open_alerts(api, token)
    except QueryError as exc:
        errors.append(str(exc))
    by_rule: dict[str, int] = {}
    for a in alerts:
        by_rule[a["rule_id"]] = by_rule.get(a["rule_id"], 0) + 1
    newest = sorted(alerts, key=lambda a: a.get("last_seen") or "", reverse=True)[:NEWEST]
    return Snapshot(now, api, status["kafka"]["bootstrap"], status["components"], changes, sources, by_rule,
                    newest, dict(simulated), errors)


def _rate(now: Snapshot, before: Snapshot | None, source: str) -> float:
    if before is None or now.at <= before.at:
        return 0.0
    return max(0, now.changes.get(source, 0) - before.changes.get(source, 0)) / (now.at - before.at)


def render(now: Snapshot, before: Snapshot | None) -> Group:
    flow = Table(title="sources", title_justify="left")
    for col in ("source", "changes", "per second", "watermark lag", "checks waiting"):
        flow.add_column(col, justify="left" if col == "source" else "right")
    for source in sorted(set(now.changes) | set(now.sources)):
        health = now.sources.get(source, {})
        lag = health.get("lag_seconds")
        flow.add_row(source, str(now.changes.get(source, 0)), f"{_rate(now, before, source):.1f}",
                     "-" if lag is None else f"{lag:.1f} s", str(health.get("waiting_alerts", 0)))

    comps = Table(title="components", title_justify="left")
    for col in ("component", "state", "detail"):
        comps.add_column(col)
    for comp in now.components:
        detail = comp.get("url") or ""
        if "phase" in comp:
            detail = f"{comp['phase']}, {comp.get('records', 0)} records"
            if comp.get("slot_lag_bytes") is not None:
                detail += f", slot lag {comp['slot_lag_bytes']} B"
        style = {"up": "green", "starting": "yellow"}.get(comp["state"], "red")
        comps.add_row(comp["name"], Text(comp["state"], style=style), detail)

    rules = Table(title=f"open alerts: {sum(now.open_by_rule.values())}", title_justify="left")
    rules.add_column("rule")
    rules.add_column("open", justify="right")
    for rule, count in sorted(now.open_by_rule.items(), key=lambda kv: (-kv[1], kv[0])):
        rules.add_row(rule, str(count))

    newest = Table(title="newest alerts", title_justify="left", expand=True)
    for col in ("last seen", "severity", "rule", "what"):
        newest.add_column(col, overflow="fold")
    for a in now.newest:
        newest.add_row((a.get("last_seen") or "")[11:19], a.get("severity", ""), a["rule_id"], a.get("message", ""))

    sim = now.simulated
    lines = [
        Text(f"query API: {now.api_url}   (try: trueup query alerts)   kafka: {now.bootstrap}", style="bold"),
        Text(f"simulator: {sim.get('changes', 0)} source row changes, {sim.get('faults', 0)} faults injected"
             + (f"   ERROR {sim['error']}" if sim.get("error") else "")),
        *[Text(f"unreachable: {e}", style="red") for e in now.errors[:3]],
        Text("Ctrl-C stops everything", style="dim"),
    ]
    return Group(flow, comps, rules, newest, *lines)
