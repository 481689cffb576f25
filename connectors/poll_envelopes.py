"""Debezium-shaped change records built from polled rows and API objects. Pure: no database, no Kafka.

The envelope is what Debezium's JSON converter writes without schemas (decimal.handling.mode=string): numeric
as text, timestamptz as ISO 8601 in UTC, date as days since the epoch. Its `source` block names the
trueup-poll connector and carries `poll_order` (the row's change time in microseconds, then a tie-break) and a
readable `cursor`, so the normalizer orders polled changes the way it orders log positions.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timezone
from decimal import Decimal

from streams.mapping import HEARTBEAT_TABLE
from streams.positions import POLL_CONNECTOR

EPOCH = date(1970, 1, 1)


def debezium_value(value):
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return (value - EPOCH).days
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return value


def micros(ts: datetime) -> int:
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    return int(ts.timestamp()) * 1_000_000 + ts.microsecond


def envelope(connector_name: str, db: str, schema: str, table: str, op: str, before: dict | None,
             after: dict | None, changed_at: datetime, tie_break: int, now_ms: int) -> dict:
    """One change record; op is c, u, d or r (a row first seen by a poll is an r, a read)."""
    cursor = debezium_value(changed_at)
    return {
        "before": None if before is None else {k: debezium_value(v) for k, v in before.items()},
        "after": None if after is None else {k: debezium_value(v) for k, v in after.items()},
        "source": {"version": "trueup", "connector": POLL_CONNECTOR, "name": connector_name, "db": db,
                   "schema": schema, "table": table, "ts_ms": micros(changed_at) // 1000, "snapshot": "false",
                   "cursor": f"{cursor}#{tie_break}", "poll_order": [micros(changed_at), tie_break]},
        "op": op,
        "ts_ms": now_ms,
    }


def heartbeat(connector_name: str, db: str, schema: str, seen_up_to: datetime) -> tuple[bytes, bytes]:
    """(key, value) of a heartbeat row change, as Debezium's action query makes: all committed by then is read."""
    value = envelope(connector_name, db, schema, HEARTBEAT_TABLE, "u", None, {"id": 1, "ts": seen_up_to}, seen_up_to,
                     0, int(seen_up_to.timestamp() * 1000))
    return b'{"id":1}', encode(value)


def record_key(key_columns: list[str], row: dict) -> bytes:
    """The Kafka key Debezium would write for the row: its key columns as a JSON object."""
    return json.dumps({c: debezium_value(row[c]) for c in key_columns}, separators=(",", ":")).encode()


def encode(value: dict) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
