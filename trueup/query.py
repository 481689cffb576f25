"""`trueup query`: the live query API from the command line, tables for people and JSON for tools."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime

from rich.console import Console
from rich.table import Table


class QueryError(RuntimeError):
    """The API answered with an error (its JSON message) or could not be reached."""


def fetch(base_url: str, path: str, params: dict | None = None, token: str | None = None,
          timeout_s: float = 15.0) -> dict:
    query = urllib.parse.urlencode({k: v for k, v in (params or {}).items() if v is not None})
    url = base_url.rstrip("/") + path + (f"?{query}" if query else "")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("error", exc.reason)
        except ValueError:
            message = exc.reason
        retry = exc.headers.get("Retry-After")
        raise QueryError(f"{exc.code}: {message}" + (f" (retry after {retry}s)" if retry else "")) from None
    except (urllib.error.URLError, OSError) as exc:
        raise QueryError(f"cannot reach {url}: {exc}") from None


def watermark_ms(source_health: dict) -> int:
    """A source's watermark from its /health entry, in epoch milliseconds; -1 while it has none."""
    mark = source_health.get("watermark")
    return int(datetime.fromisoformat(mark.replace("Z", "+00:00")).timestamp() * 1000) if mark else -1


def quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def _cell(value) -> str:
    if isinstance(value, dict) and set(value) == {"amount", "currency"}:
        return f"{value['amount']} {value['currency']}"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return "" if value is None else str(value)


def print_entity(console: Console, entity: dict) -> None:
    table = Table(title=f"{entity['entity_type']} {entity['entity_id']}  ({entity['system']}.{entity['table']}, "
                        f"{entity['position']}, committed {entity['source_ts']})")
    table.add_column("field")
    table.add_column("value")
    for name, value in entity["fields"].items():
        table.add_row(name, _cell(value))
    console.print(table)


def print_projection(console: Console, projection: dict) -> None:
    table = Table(title=f"{projection['projection']} {projection['id']}  status {projection.get('status')}")
    for column in ("field", "value", "from", "others say"):
        table.add_column(column)
    for name, field in projection["fields"].items():
        others = "; ".join(f"{a.get('system')}: {_cell(a.get('value'))}" for a in field.get("alternatives", []))
        table.add_row(name, _cell(field.get("value")), _cell(field.get("system") or field.get("basis")), others)
    console.print(table)
    for name, amounts in (projection.get("totals") or {}).items():
        console.print(f"{name}: " + (", ".join(_cell(a) for a in amounts) or "-"))


def print_alerts(console: Console, page: dict) -> None:
    table = Table()
    for column in ("first seen", "status", "severity", "rule", "entity", "message"):
        table.add_column(column, overflow="fold")
    for a in page["items"]:
        table.add_row(a["first_seen"], a["status"], a["severity"], a["rule_id"],
                      f"{a['entity_type']}/{a['entity_id']}", a["message"])
    console.print(table)
    if page.get("next_cursor"):
        console.print(f"more: --cursor {page['next_cursor']}", soft_wrap=True)


def print_health(console: Console, health: dict) -> None:
    table = Table(title="sources")
    for column in ("source", "watermark", "lag s", "last event", "slot lag bytes", "waiting checks"):
        table.add_column(column)
    for name, s in (health.get("sources") or {}).items():
        table.add_row(name, _cell(s.get("watermark")), _cell(s.get("lag_seconds")), _cell(s.get("last_event_time")),
                      _cell(s.get("slot_lag_bytes")), _cell(s.get("waiting_alerts")))
    console.print(table)
    workers = Table(title="workers")
    for column in ("worker", "url", "recovery", "partitions"):
        workers.add_column(column)
    for w in health.get("workers") or [health]:
        workers.add_row(_cell(w.get("worker")), _cell(w.get("url")), _cell(w.get("recovery")),
                        str(len(w.get("partitions") or [])))
    console.print(workers)
    for name, s in (health.get("sources") or {}).items():
        if s.get("why"):
            console.print(f"{name}: {s['why']}")
