"""Builders of realistic Debezium 3.6 change records for the normalizer's unit tests.

PostgreSQL connector, pgoutput, JSON converter (schemas.enable=false unless `with_schema` wraps it),
decimal.handling.mode=string (or `precise`), time.precision.mode=adaptive. Rows follow sql/*/001_schema.sql,
including the "realism" columns the mapping does not map (they must ride along in `extra`).
"""

from __future__ import annotations

import base64
import copy
import json
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from streams.mapping import Mapping, load_mapping
from streams.normalizer import RawRecord

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_MAPPING = ROOT / "config" / "mapping.yaml"

UNAVAILABLE = "__debezium_unavailable_value"
CREATED = "2026-11-27T21:15:55.780123Z"
UPDATED = "2026-11-27T21:15:55.780123Z"
SOURCE_TS_MS = 1795814155780
ENVELOPE_TS_MS = 1795814155790


def days(d: date) -> int:
    """io.debezium.time.Date: days since the epoch."""
    return (d - date(1970, 1, 1)).days


@lru_cache(maxsize=None)
def shipped_mapping() -> Mapping:
    return load_mapping(SHIPPED_MAPPING)


# (system, table) -> [(column, PostgreSQL type)], in table order, as in sql/<system>/001_schema.sql.
COLUMNS: dict[tuple[str, str], list[tuple[str, str]]] = {
    ("crm", "accounts"): [
        ("id", "text"), ("billing_customer_id", "text"), ("erp_customer_no", "text"),
        ("parent_account_id", "text"), ("name", "text"), ("domain", "text"), ("country", "char"),
        ("tax_id", "text"), ("status", "text"), ("industry", "text"), ("owner_email", "text"), ("phone", "text"),
        ("employee_count", "integer"), ("billing_street", "text"), ("billing_city", "text"),
        ("billing_state", "text"), ("billing_postal_code", "text"), ("created_at", "timestamptz"),
        ("updated_at", "timestamptz"),
    ],
    ("crm", "opportunities"): [
        ("id", "text"), ("account_id", "text"), ("stage", "text"), ("amount", "numeric"), ("currency", "char"),
        ("close_date", "date"), ("name", "text"), ("type", "text"), ("probability", "smallint"),
        ("owner_email", "text"), ("lead_source", "text"), ("created_at", "timestamptz"),
        ("updated_at", "timestamptz"),
    ],
    ("billing", "customers"): [
        ("id", "text"), ("crm_account_id", "text"), ("name", "text"), ("email", "text"), ("currency", "char"),
        ("delinquent", "boolean"), ("phone", "text"), ("description", "text"), ("address_line1", "text"),
        ("address_line2", "text"), ("address_city", "text"), ("address_state", "text"),
        ("address_postal_code", "text"), ("address_country", "char"), ("tax_exempt", "text"),
        ("created_at", "timestamptz"), ("updated_at", "timestamptz"),
    ],
    ("billing", "subscriptions"): [
        ("id", "text"), ("customer_id", "text"), ("crm_opportunity_id", "text"), ("quantity", "integer"),
        ("unit_amount", "numeric"), ("currency", "char"), ("status", "text"), ("price_id", "text"),
        ("product_name", "text"), ("billing_interval", "text"), ("current_period_start", "timestamptz"),
        ("current_period_end", "timestamptz"), ("trial_end", "timestamptz"), ("cancel_at_period_end", "boolean"),
        ("canceled_at", "timestamptz"), ("created_at", "timestamptz"), ("updated_at", "timestamptz"),
    ],
    ("billing", "invoices"): [
        ("id", "text"), ("customer_id", "text"), ("subscription_id", "text"), ("erp_order_no", "text"),
        ("amount_due", "numeric"), ("amount_paid", "numeric"), ("currency", "char"), ("status", "text"),
        ("number", "text"), ("issued_at", "timestamptz"), ("due_date", "date"), ("paid_at", "timestamptz"),
        ("period_start", "timestamptz"), ("period_end", "timestamptz"), ("created_at", "timestamptz"),
        ("updated_at", "timestamptz"),
    ],
    ("billing", "payments"): [
        ("id", "text"), ("invoice_id", "text"), ("customer_id", "text"), ("amount", "numeric"),
        ("currency", "char"), ("status", "text"), ("kind", "text"), ("refunded_payment_id", "text"),
        ("payment_method", "text"), ("paid_at", "timestamptz"), ("failure_code", "text"),
        ("failure_message", "text"), ("description", "text"), ("created_at", "timestamptz"),
        ("updated_at", "timestamptz"),
    ],
    ("erp", "customers"): [
        ("customer_no", "text"), ("crm_account_id", "text"), ("name", "text"), ("tax_id", "text"),
        ("country", "char"), ("credit_hold", "boolean"), ("subsidiary", "text"), ("currency", "char"),
        ("payment_terms", "text"), ("credit_limit", "numeric"), ("email", "text"), ("bill_city", "text"),
        ("bill_postal_code", "text"), ("inactive", "boolean"), ("created_at", "timestamptz"),
        ("updated_at", "timestamptz"),
    ],
    ("erp", "sales_orders"): [
        ("order_no", "text"), ("customer_no", "text"), ("crm_opportunity_id", "text"),
        ("billing_subscription_id", "text"), ("total_amount", "numeric"), ("currency", "char"),
        ("status", "text"), ("order_date", "date"), ("po_number", "text"), ("subsidiary", "text"),
        ("memo", "text"), ("created_at", "timestamptz"), ("updated_at", "timestamptz"),
    ],
    ("erp", "ar_postings"): [
        ("id", "text"), ("invoice_ref", "text"), ("order_no", "text"), ("customer_no", "text"),
        ("amount", "numeric"), ("currency", "char"), ("entry_type", "text"), ("posting_date", "date"),
        ("gl_account", "text"), ("document_no", "text"), ("due_date", "date"), ("memo", "text"),
        ("created_at", "timestamptz"), ("updated_at", "timestamptz"),
    ],
}

# One realistic row per table, as Debezium's JSON converter writes its `after` image.
ROWS: dict[tuple[str, str], dict] = {
    ("crm", "accounts"): {
        "id": "ACC-LSN1", "billing_customer_id": None, "erp_customer_no": "C-100042", "parent_account_id": None,
        "name": "Northwind Traders", "domain": "northwind.example", "country": "DE", "tax_id": "DE811907980",
        "status": "prospect", "industry": "retail", "owner_email": "ae@trueup.example", "phone": None,
        "employee_count": 240, "billing_street": "Hauptstr. 1", "billing_city": "Berlin", "billing_state": None,
        "billing_postal_code": "10115", "created_at": CREATED, "updated_at": UPDATED,
    },
    ("crm", "opportunities"): {
        "id": "OPP-0001", "account_id": "ACC-LSN1", "stage": "proposal", "amount": "1200.00", "currency": "EUR",
        "close_date": days(date(2026, 12, 31)), "name": "Northwind renewal", "type": "renewal",
        "probability": 60, "owner_email": "ae@trueup.example", "lead_source": "web", "created_at": CREATED,
        "updated_at": UPDATED,
    },
    ("billing", "customers"): {
        "id": "cus_NwT1", "crm_account_id": "ACC-LSN1", "name": "Northwind Traders",
        "email": "ap@northwind.example", "currency": "EUR", "delinquent": False, "phone": None,
        "description": None, "address_line1": "Hauptstr. 1", "address_line2": None, "address_city": "Berlin",
        "address_state": None, "address_postal_code": "10115", "address_country": "DE", "tax_exempt": "none",
        "created_at": CREATED, "updated_at": UPDATED,
    },
    ("billing", "subscriptions"): {
        "id": "sub_NwT1", "customer_id": "cus_NwT1", "crm_opportunity_id": "OPP-0001", "quantity": 3,
        "unit_amount": "400.00", "currency": "EUR", "status": "active", "price_id": "price_std",
        "product_name": "trueup standard", "billing_interval": "month",
        "current_period_start": "2026-11-01T00:00:00Z", "current_period_end": "2026-12-01T00:00:00Z",
        "trial_end": None, "cancel_at_period_end": False, "canceled_at": None, "created_at": CREATED,
        "updated_at": UPDATED,
    },
    ("billing", "invoices"): {
        "id": "in_NwT1", "customer_id": "cus_NwT1", "subscription_id": "sub_NwT1", "erp_order_no": "SO-20001",
        "amount_due": "1200.00", "amount_paid": "0.00", "currency": "EUR", "status": "open",
        "number": "NW-0001", "issued_at": "2026-11-27T21:15:55Z", "due_date": days(date(2026, 12, 27)),
        "paid_at": None, "period_start": "2026-11-01T00:00:00Z", "period_end": "2026-12-01T00:00:00Z",
        "created_at": CREATED, "updated_at": UPDATED,
    },
    ("billing", "payments"): {
        "id": "py_NwT1", "invoice_id": "in_NwT1", "customer_id": "cus_NwT1", "amount": "1200.00",
        "currency": "EUR", "status": "succeeded", "kind": "charge", "refunded_payment_id": None,
        "payment_method": "card", "paid_at": "2026-11-28T09:00:00Z", "failure_code": None,
        "failure_message": None, "description": None, "created_at": CREATED, "updated_at": UPDATED,
    },
    ("erp", "customers"): {
        "customer_no": "C-100042", "crm_account_id": "ACC-LSN1", "name": "Northwind Traders GmbH",
        "tax_id": "DE811907980", "country": "DE", "credit_hold": True, "subsidiary": "EU", "currency": "EUR",
        "payment_terms": "net_30", "credit_limit": "50000.00", "email": None, "bill_city": "Berlin",
        "bill_postal_code": "10115", "inactive": False, "created_at": CREATED, "updated_at": UPDATED,
    },
    ("erp", "sales_orders"): {
        "order_no": "SO-20001", "customer_no": "C-100042", "crm_opportunity_id": "OPP-0001",
        "billing_subscription_id": "sub_NwT1", "total_amount": "1200.00", "currency": "EUR",
        "status": "pending_fulfillment", "order_date": days(date(2026, 11, 27)), "po_number": "PO-77",
        "subsidiary": "EU", "memo": None, "created_at": CREATED, "updated_at": UPDATED,
    },
    ("erp", "ar_postings"): {
        "id": "AR-30001", "invoice_ref": "in_NwT1", "order_no": "SO-20001", "customer_no": "C-100042",
        "amount": "1200.00", "currency": "EUR", "entry_type": "invoice", "posting_date": days(date(2026, 11, 27)),
        "gl_account": "1200", "document_no": "INV-1", "due_date": days(date(2026, 12, 27)), "memo": None,
        "created_at": CREATED, "updated_at": UPDATED,
    },
}

TABLES = tuple(ROWS)
KEY_COLUMN = {t: ("customer_no" if t == ("erp", "customers") else "order_no" if t == ("erp", "sales_orders")
                  else "id") for t in TABLES}


def topic(system: str, table: str) -> str:
    return f"{system}.public.{table}"


def row(system: str, table: str, **changes) -> dict:
    out = copy.deepcopy(ROWS[(system, table)])
    out.update(changes)
    return out


def sequence(last_commit: int | None, lsn: int) -> str:
    """Debezium's source.sequence: a JSON array of two strings (last commit LSN, this change's LSN)."""
    return json.dumps([None if last_commit is None else str(last_commit), str(lsn)], separators=(",", ":"))


def source_block(system: str, table: str, *, lsn: int = 36001656, last_commit: int | None = 36001240,
                 tx_id: int | None = 882, ts_ms: int = SOURCE_TS_MS, snapshot: str = "false",
                 seq: str | None = None) -> dict:
    if seq is None:
        seq = sequence(None if snapshot != "false" else last_commit, lsn)
    return {
        "version": "3.6.3.Final", "connector": "postgresql", "name": system, "ts_ms": ts_ms,
        "snapshot": snapshot, "db": system, "sequence": seq, "ts_us": ts_ms * 1000,
        "ts_ns": ts_ms * 1_000_000, "schema": "public", "table": table, "txId": tx_id, "lsn": lsn,
        "xmin": None,
    }


def envelope(system: str, table: str, op: str = "c", *, after: dict | None = None, before: dict | None = None,
             **source_kw) -> dict:
    """A full Debezium change event (the `value` of the record), schemas.enable=false."""
    if op in ("c", "r", "u") and after is None:
        after = row(system, table)
    if op in ("u", "d") and before is None:
        before = row(system, table)
    if op in ("c", "r"):
        before = None
    if op == "d":
        after = None
    if op == "r":
        source_kw.setdefault("snapshot", "true")
    ts_ms = source_kw.get("ts_ms", SOURCE_TS_MS)
    return {
        "before": before, "after": after, "source": source_block(system, table, **source_kw),
        "transaction": None, "op": op, "ts_ms": ts_ms + 10, "ts_us": (ts_ms + 10) * 1000,
        "ts_ns": (ts_ms + 10) * 1_000_000,
    }


def unwrapped(data: dict, *, op: str | None = None, deleted: bool | None = None, lsn: int | None = None,
              source_ts_ms: int | None = None, seq: str | None = None, **meta) -> dict:
    """ExtractNewRecordState output: the row plus the `__`-prefixed metadata asked for with add.fields."""
    out = dict(data)
    if op is not None:
        out["__op"] = op
    if lsn is not None:
        out["__lsn"] = lsn
    if source_ts_ms is not None:
        out["__source_ts_ms"] = source_ts_ms
    if seq is not None:
        out["__source_sequence"] = seq
    for name, value in meta.items():
        out[f"__{name}"] = value
    if deleted is not None:
        out["__deleted"] = "true" if deleted else "false"
    return out


# --- the JSON converter's schema wrapper (schemas.enable=true) ---------------------------------------------


def column_schema(column: str, pg_type: str, *, decimal_mode: str = "string", scale: int = 2) -> dict:
    optional = column not in ("id", "customer_no", "order_no", "created_at", "updated_at")
    base = {"optional": optional, "field": column}
    if pg_type in ("text", "char"):
        return {"type": "string", **base}
    if pg_type == "integer":
        return {"type": "int32", **base}
    if pg_type == "smallint":
        return {"type": "int16", **base}
    if pg_type == "boolean":
        return {"type": "boolean", **base}
    if pg_type == "numeric":
        if decimal_mode == "string":
            return {"type": "string", **base}
        return {"type": "bytes", "name": "org.apache.kafka.connect.data.Decimal", "version": 1,
                "parameters": {"scale": str(scale), "connect.decimal.precision": "18"}, **base}
    if pg_type == "date":
        return {"type": "int32", "name": "io.debezium.time.Date", "version": 1, **base}
    if pg_type == "timestamptz":
        return {"type": "string", "name": "io.debezium.time.ZonedTimestamp", "version": 1, **base}
    if pg_type == "timestamp":
        return {"type": "int64", "name": "io.debezium.time.MicroTimestamp", "version": 1, **base}
    raise AssertionError(pg_type)


def _fix_overrides(cols: list[dict], overrides: dict | None) -> list[dict]:
    if not overrides:
        return cols
    out = []
    for col in cols:
        name = col["field"]
        out.append({**overrides[name], "field": name} if name in overrides else col)
    return out


SOURCE_SCHEMA = {
    "type": "struct",
    "fields": [
        {"type": "string", "optional": False, "field": "version"},
        {"type": "string", "optional": False, "field": "connector"},
        {"type": "string", "optional": False, "field": "name"},
        {"type": "int64", "optional": False, "field": "ts_ms"},
        {"type": "string", "optional": True, "name": "io.debezium.data.Enum", "version": 1,
         "parameters": {"allowed": "true,first,first_in_data_collection,last_in_data_collection,last,false,"
                                   "incremental"},
         "default": "false", "field": "snapshot"},
        {"type": "string", "optional": False, "field": "db"},
        {"type": "string", "optional": True, "field": "sequence"},
        {"type": "int64", "optional": True, "field": "ts_us"},
        {"type": "int64", "optional": True, "field": "ts_ns"},
        {"type": "string", "optional": False, "field": "schema"},
        {"type": "string", "optional": False, "field": "table"},
        {"type": "int64", "optional": True, "field": "txId"},
        {"type": "int64", "optional": True, "field": "lsn"},
        {"type": "int64", "optional": True, "field": "xmin"},
    ],
    "optional": False,
    "name": "io.debezium.connector.postgresql.Source",
    "field": "source",
}


def with_schema(doc: dict, system: str, table: str, *, decimal_mode: str = "string",
                overrides: dict | None = None, extra_columns: dict | None = None) -> dict:
    """Wrap a full envelope or an unwrapped row as the JSON converter does with schemas.enable=true."""
    value_name = f"{system}.public.{table}.Value"
    cols = _fix_overrides(
        [column_schema(c, t, decimal_mode=decimal_mode) for c, t in COLUMNS[(system, table)]]
        + [column_schema(c, t) for c, t in (extra_columns or {}).items()],
        overrides,
    )
    if "source" in doc and "op" in doc:
        schema = {
            "type": "struct",
            "fields": [
                {"type": "struct", "fields": copy.deepcopy(cols), "optional": True, "name": value_name,
                 "field": "before"},
                {"type": "struct", "fields": copy.deepcopy(cols), "optional": True, "name": value_name,
                 "field": "after"},
                SOURCE_SCHEMA,
                {"type": "struct", "fields": [
                    {"type": "string", "optional": False, "field": "id"},
                    {"type": "int64", "optional": False, "field": "total_order"},
                    {"type": "int64", "optional": False, "field": "data_collection_order"},
                ], "optional": True, "name": "event.block", "version": 1, "field": "transaction"},
                {"type": "string", "optional": False, "field": "op"},
                {"type": "int64", "optional": True, "field": "ts_ms"},
                {"type": "int64", "optional": True, "field": "ts_us"},
                {"type": "int64", "optional": True, "field": "ts_ns"},
            ],
            "optional": False,
            "name": f"{system}.public.{table}.Envelope",
            "version": 2,
        }
    else:
        meta = []
        for name, value in doc.items():
            if name.startswith("__"):
                kind = "int64" if isinstance(value, int) and not isinstance(value, bool) else "string"
                meta.append({"type": kind, "optional": True, "field": name})
        schema = {"type": "struct", "fields": cols + meta, "optional": False, "name": value_name}
    return {"schema": schema, "payload": doc}


# --- money in Connect's `precise` form ------------------------------------------------------------------


def precise(amount: Decimal, scale: int = 2) -> str:
    """Base64 of the unscaled value as minimal big-endian two's complement (Java BigInteger.toByteArray)."""
    scaled = amount.scaleb(scale)
    unscaled = int(scaled)
    assert scaled == unscaled, f"{amount} has more than {scale} places"
    bits = unscaled.bit_length() if unscaled >= 0 else (~unscaled).bit_length()
    return base64.b64encode(unscaled.to_bytes(bits // 8 + 1, "big", signed=True)).decode()


# --- records ---------------------------------------------------------------------------------------------


def encode(value) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return json.dumps(value).encode()


def record(topic_name: str, value, *, key=None, offset: int = 7, partition: int = 0,
           timestamp_ms: int = ENVELOPE_TS_MS) -> RawRecord:
    """A raw Kafka record; dict values are JSON-encoded, bytes kept as they are."""
    return RawRecord(topic=topic_name, partition=partition, offset=offset, key=encode(key), value=encode(value),
                     timestamp_ms=timestamp_ms)


def data_record(system: str, table: str, op: str = "c", *, offset: int = 7, **kw) -> RawRecord:
    """A full-envelope record on the table's raw topic, keyed like Debezium's key converter does."""
    value = envelope(system, table, op, **kw)
    image = value["after"] if value["after"] is not None else value["before"]
    key_col = KEY_COLUMN[(system, table)]
    return record(topic(system, table), value, key={key_col: image[key_col]}, offset=offset)
