"""Verification against the sources, pure: row hashes and key buckets computed identically here and in SQL.

A row's text is its mapped source columns in name order, each rendered one fixed way (numeric at its scale,
booleans as true/false, dates as days and times as microseconds since the epoch, NULL as \\N), joined by the
unit separator; its hash is the first 64 bits of the text's md5 as a signed integer. A key's bucket is the
first 32 bits of the key's md5 modulo the bucket count. trueup/verify_sql.py writes the same in SQL.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, timezone
from decimal import Decimal

from streams.mapping import TableMapping

NULL = "\\N"
SEPARATOR = "\x1f"
EPOCH_DAY = date(1970, 1, 1)


def bucket_of(key: str, buckets: int) -> int:
    return int(hashlib.md5(key.encode()).hexdigest()[:8], 16) % buckets


def text_hash(text: str) -> int:
    value = int(hashlib.md5(text.encode()).hexdigest()[:16], 16)
    return value - (1 << 64) if value >= 1 << 63 else value


def _render(value, kind: str, scale: int) -> str:
    if value is None:
        return NULL
    if kind == "numeric":
        return format(Decimal(value).quantize(Decimal(1).scaleb(-scale)), "f")
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "integer":
        return str(int(value))
    if kind == "date":
        return str((value - EPOCH_DAY).days)
    if kind in ("timestamp", "timestamptz"):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return str(int(value.timestamp()) * 1_000_000 + value.microsecond)
    return str(value)


def source_values(fields: dict, spec: TableMapping) -> dict[str, object]:
    """The source columns back from canonical fields: money fields split, renames undone."""
    out: dict[str, object] = {}
    for column in spec.columns:
        if column in spec.scalar_columns:
            out[column] = fields.get(spec.field_of(column))
            continue
        out[column] = None
        for field, (amount, currency) in spec.money.items():
            money = fields.get(field)
            if money is not None and column in (amount, currency):
                out[column] = money["amount" if column == amount else "currency"]
                break
    return out


def row_text(values: dict, spec: TableMapping) -> str:
    return SEPARATOR.join(_render(values.get(c), spec.columns[c], spec.scale_of(c)) for c in sorted(spec.columns))


def state_row_hash(fields: dict, spec: TableMapping) -> int:
    return text_hash(row_text(source_values(fields, spec), spec))


@dataclass(frozen=True)
class Drift:
    kind: str  # missing_in_trueup | extra_in_trueup | field_differs
    key: str
    source: dict | None  # the source row's mapped columns (None when the source has no such row)
    trueup: dict | None


def classify(source_rows: dict[str, int], trueup_rows: dict[str, tuple[int | None, int]], snapshot_ms: int) -> dict:
    """{key: kind} of drift between a bucket's source rows {key: hash} and trueup's {key: (hash, source ms)}.

    trueup's hash is None for an entity it holds as deleted. A row trueup holds from a change (or delete)
    committed after the source snapshot is not drift: the snapshot is older.
    """
    out: dict[str, str] = {}
    for key in source_rows.keys() | trueup_rows.keys():
        mine = trueup_rows.get(key)
        if mine is not None and mine[1] > snapshot_ms:
            continue
        theirs = source_rows.get(key)
        if mine is None or mine[0] is None:
            if theirs is not None:
                out[key] = "missing_in_trueup"
        elif theirs is None:
            out[key] = "extra_in_trueup"
        elif theirs != mine[0]:
            out[key] = "field_differs"
    return out


def differing(source: dict[int, tuple[int, int]], trueup: dict[int, tuple[int, int]]) -> set[int]:
    """Buckets whose (rows, sum of hashes) differ between the source and trueup."""
    return {b for b in source.keys() | trueup.keys() if tuple(source.get(b, (0, 0))) != tuple(trueup.get(b, (0, 0)))}


def split(buckets: set[int], level: int, finer: int) -> set[int]:
    """The buckets at count `finer` that make up `buckets` at count `level` (both powers of two, finer >= level)."""
    return {b + i * level for b in buckets for i in range(finer // level)}


def merge_sums(parts: list[dict[int, tuple[int, int]]]) -> dict[int, tuple[int, int]]:
    """Bucket sums of several workers (each over its own partitions) added up."""
    out: dict[int, tuple[int, int]] = {}
    for part in parts:
        for bucket, (count, total) in part.items():
            c, t = out.get(bucket, (0, 0))
            out[bucket] = (c + count, t + total)
    return out
