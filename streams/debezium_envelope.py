"""Parse a Debezium change record (full envelope or ExtractNewRecordState form, with or without the JSON
converter's schema wrapper) into one neutral shape."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

OPS = ("r", "c", "u", "d")


class EnvelopeProblem(ValueError):
    """The record is not a Debezium change we can read; the message is the dead-letter reason."""


@dataclass
class Change:
    op: str
    before: dict | None
    after: dict | None
    source: dict
    # column -> Connect schema of that column ({"name": ..., "parameters": {...}}) when the wrapper is present
    column_schemas: dict[str, dict] = field(default_factory=dict)
    unwrapped: bool = False


def decode_json(value: bytes | str, what: str = "envelope"):
    try:
        return json.loads(value)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise EnvelopeProblem(f"malformed {what}: not JSON ({exc})") from None


def _column_schemas(schema: dict) -> dict[str, dict]:
    """Per-column Connect schemas from the wrapper (the before/after structs, or the flat row struct)."""
    out: dict[str, dict] = {}
    fields = schema.get("fields") if isinstance(schema, dict) else None
    if not isinstance(fields, list):
        return out
    for f in fields:
        if not isinstance(f, dict):
            continue
        if f.get("field") in ("before", "after") and isinstance(f.get("fields"), list):
            for col in f["fields"]:
                if isinstance(col, dict) and isinstance(col.get("field"), str):
                    out[col["field"]] = col
        elif isinstance(f.get("field"), str):
            out.setdefault(f["field"], f)
    return out


def parse_change(value: bytes | str) -> Change:
    """Full envelope or unwrapped row -> Change; raise EnvelopeProblem for anything else."""
    doc = decode_json(value)
    schemas: dict[str, dict] = {}
    if isinstance(doc, dict) and set(doc) == {"schema", "payload"}:
        schemas = _column_schemas(doc["schema"])
        doc = doc["payload"]
    if not isinstance(doc, dict):
        raise EnvelopeProblem(f"malformed envelope: expected a JSON object, got {type(doc).__name__}")
    if "op" in doc and ("source" in doc or "before" in doc or "after" in doc):
        op = doc.get("op")
        if op not in OPS:
            raise EnvelopeProblem(f"malformed envelope: unsupported op {op!r}")
        before, after, source = doc.get("before"), doc.get("after"), doc.get("source")
        if not isinstance(source, dict):
            raise EnvelopeProblem("malformed envelope: source block missing or not an object")
        for name, row in (("before", before), ("after", after)):
            if row is not None and not isinstance(row, dict):
                raise EnvelopeProblem(f"malformed envelope: {name} is not an object")
        if op in ("r", "c", "u") and after is None:
            raise EnvelopeProblem(f"malformed envelope: op {op} without an after image")
        if op == "d" and before is None:
            raise EnvelopeProblem("malformed envelope: delete without a before image")
        return Change(op=op, before=before, after=after, source=source, column_schemas=schemas)
    return _unwrapped(doc, schemas)


def _unwrapped(row: dict, schemas: dict[str, dict]) -> Change:
    """ExtractNewRecordState output: the row itself, with optional __op/__deleted/__source_* metadata."""
    meta = {k[2:]: v for k, v in row.items() if k.startswith("__")}
    data = {k: v for k, v in row.items() if not k.startswith("__")}
    if not data:
        raise EnvelopeProblem("malformed envelope: neither a Debezium envelope nor a row")
    deleted = str(meta.get("deleted", "false")).lower() == "true"
    op = "d" if deleted else meta.get("op", "u")
    if op not in OPS:
        raise EnvelopeProblem(f"malformed envelope: unsupported __op {op!r}")
    snapshot = meta.get("source_snapshot", meta.get("snapshot"))
    if snapshot is None:
        snapshot = "true" if op == "r" else "false"
    source = {
        "ts_ms": meta.get("source_ts_ms", meta.get("ts_ms")),
        "lsn": meta.get("lsn", meta.get("source_lsn")),
        "txId": meta.get("txId", meta.get("source_txId")),
        "sequence": meta.get("source_sequence"),
        "snapshot": snapshot,
        "table": meta.get("table", meta.get("source_table")),
    }
    if op == "d":
        return Change(op="d", before=data, after=None, source=source, column_schemas=schemas, unwrapped=True)
    return Change(op=op, before=None, after=data, source=source, column_schemas=schemas, unwrapped=True)
