"""Live queries over the state tables: parameters, paging and JSON views. Pure: no Faust, no HTTP.

The HTTP edge (streams/api.py) routes a key to the worker that owns it and calls these on the state it finds
there; an alert listing is gathered from every worker's page and merged here.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal

from streams.alert_lifecycle import SEVERITIES
from streams.join_topology import ACC, INV, OPP
from streams.joins import live_members
from streams.mapping import ENTITY_TYPES
from streams.projections import projector
from streams.rules import CATALOG

PROJECTION_BUCKETS = {"invoice": INV, "account": ACC, "quote_to_cash": OPP}
ALERT_STATUSES = ("open", "resolved")
ALERT_FILTERS: dict[str, tuple[str, ...]] = {
    "status": ALERT_STATUSES,
    "rule": tuple(CATALOG),
    "severity": SEVERITIES,
    "entity_type": ENTITY_TYPES,
}
ALERT_PARAMS = (*ALERT_FILTERS, "limit", "cursor", "scope")
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
MAX_ID_LENGTH = 256


class BadParameter(ValueError):
    """A request parameter that cannot be served; the message names it."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.name = name


@dataclass(frozen=True)
class AlertQuery:
    filters: tuple[tuple[str, str], ...]
    limit: int
    after: tuple[int, str] | None
    local: bool

    def matches(self, record: Mapping) -> bool:
        field = {"rule": "rule_id"}
        return all(record[field.get(name, name)] == value for name, value in self.filters)


def check_id(name: str, value: str) -> str:
    if not value or len(value) > MAX_ID_LENGTH or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise BadParameter(name, f"must be 1 to {MAX_ID_LENGTH} printable characters")
    return value


def parse_alert_query(params: Mapping[str, str]) -> AlertQuery:
    for name in params:
        if name not in ALERT_PARAMS:
            raise BadParameter(name, f"unknown parameter; known: {', '.join(ALERT_PARAMS)}")
    filters = []
    for name, allowed in ALERT_FILTERS.items():
        value = params.get(name)
        if value is None or value == "":
            continue
        if value not in allowed:
            raise BadParameter(name, f"must be one of {', '.join(allowed)}")
        filters.append((name, value))
    raw_limit = params.get("limit") or str(DEFAULT_LIMIT)
    if not (len(raw_limit) <= 4 and raw_limit.isdigit() and 1 <= int(raw_limit) <= MAX_LIMIT):
        raise BadParameter("limit", f"must be an integer from 1 to {MAX_LIMIT}")
    scope = params.get("scope") or "all"
    if scope not in ("all", "local"):
        raise BadParameter("scope", "must be all or local")
    cursor = params.get("cursor")
    return AlertQuery(tuple(filters), int(raw_limit), decode_cursor(cursor) if cursor else None, scope == "local")


def encode_cursor(position: tuple[int, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(position)).encode()).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[int, str]:
    try:
        if len(text) > 2 * MAX_ID_LENGTH + 64:
            raise ValueError("too long")
        first_seen, key = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        if not isinstance(first_seen, int) or not isinstance(key, str):
            raise ValueError("wrong shape")
        return first_seen, key
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise BadParameter("cursor", "not a cursor this API returned") from exc


def alert_key_of(record: Mapping) -> str:
    return f"{record['rule_id']}|{record['entity_type']}|{record['entity_id']}"


def order_of(record: Mapping) -> tuple[int, str]:
    return _ms(record["first_seen"]), alert_key_of(record)


def page(records: Iterable[Mapping], query: AlertQuery) -> tuple[list[Mapping], str | None]:
    """The first `limit` matching records after the cursor, by (first_seen, key), and the next cursor."""
    chosen = sorted((r for r in records if query.matches(r) and (query.after is None or order_of(r) > query.after)),
                    key=order_of)
    items = chosen[:query.limit]
    more = len(chosen) > query.limit
    return items, encode_cursor(order_of(items[-1])) if more and items else None


def alert_view(record: Mapping) -> dict:
    """An alert record as the API shows it: times in ISO 8601 (UTC), its key alongside."""
    out = to_json(dict(record))
    for name in ("first_seen", "last_seen", "deadline"):
        if record.get(name) is not None:
            out[name] = _iso(_ms(record[name]))
    out["key"] = alert_key_of(record)
    return out


def entity_view(entity_type: str, entity_id: str, state: dict | None) -> dict | None:
    """The entity's latest canonical state with where it came from; None if unknown or deleted."""
    if state is None:
        return None
    me = live_members(state).get(("self", entity_id))
    if me is None:
        return None
    return to_json({"entity_type": entity_type, "entity_id": entity_id, "system": me["system"],
                    "table": me["table"], "position": me["position"], "source_ts": me["source_ts"],
                    "correlation_id": me["correlation_id"], "fields": me["fields"]})


def projection_view(name: str, projection_id: str, state: dict | None) -> dict | None:
    if state is None:
        return None
    for found_name, pid, record in projector(PROJECTION_BUCKETS[name], projection_id, live_members(state)):
        if found_name == name and pid == projection_id and record is not None:
            return to_json(record)
    return None


def to_json(value):
    """Money and times as JSON: Decimal as its exact text, datetimes and dates in ISO 8601."""
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_json(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _ms(value) -> int:
    """Epoch milliseconds of a record's time: stored as ms, decoded as datetime, or shown as ISO 8601 text."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, datetime):
        return round(value.timestamp() * 1000)
    return int(value)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
