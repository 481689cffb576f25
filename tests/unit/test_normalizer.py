"""streams.normalizer.parse on realistic Debezium 3.6 records: every shipped table, every record form, money,
timestamps, schema drift, control records, dead letters and correlation ids. Pure logic: no broker, no database."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from streams.mapping import Mapping, entity_fields
from streams.normalizer import Control, DeadLetter, Parsed, RawRecord, parse
from streams.watermarks import acked_mark
from tests.unit.envelopes import (
    COLUMNS,
    CREATED,
    ENVELOPE_TS_MS,
    KEY_COLUMN,
    ROWS,
    SOURCE_TS_MS,
    TABLES,
    data_record,
    days,
    envelope,
    precise,
    record,
    row,
    sequence,
    shipped_mapping,
    topic,
    unwrapped,
    with_schema,
)

UTC = timezone.utc

ENTITY = {
    ("crm", "accounts"): "account",
    ("crm", "opportunities"): "opportunity",
    ("billing", "customers"): "billing_customer",
    ("billing", "subscriptions"): "subscription",
    ("billing", "invoices"): "invoice",
    ("billing", "payments"): "payment",
    ("erp", "customers"): "erp_customer",
    ("erp", "sales_orders"): "sales_order",
    ("erp", "ar_postings"): "ar_posting",
}
ENTITY_ID = {
    ("crm", "accounts"): "ACC-LSN1",
    ("crm", "opportunities"): "OPP-0001",
    ("billing", "customers"): "cus_NwT1",
    ("billing", "subscriptions"): "sub_NwT1",
    ("billing", "invoices"): "in_NwT1",
    ("billing", "payments"): "py_NwT1",
    ("erp", "customers"): "C-100042",
    ("erp", "sales_orders"): "SO-20001",
    ("erp", "ar_postings"): "AR-30001",
}
# canonical money field -> amount in the shipped sample row (currency EUR everywhere)
MONEY = {
    ("crm", "accounts"): {},
    ("crm", "opportunities"): {"amount": "1200.00"},
    ("billing", "customers"): {},
    ("billing", "subscriptions"): {"unit_amount": "400.00"},
    ("billing", "invoices"): {"amount_due": "1200.00", "amount_paid": "0.00"},
    ("billing", "payments"): {"amount": "1200.00"},
    ("erp", "customers"): {},
    ("erp", "sales_orders"): {"total_amount": "1200.00"},
    ("erp", "ar_postings"): {"amount": "1200.00"},
}
UPDATED_AT = datetime(2026, 11, 27, 21, 15, 55, 780123, tzinfo=UTC)
OPS = {"c": "create", "u": "update", "d": "delete", "r": "snapshot"}


@pytest.fixture(scope="module")
def mapping() -> Mapping:
    return shipped_mapping()


def parsed(outcome) -> Parsed:
    assert isinstance(outcome, Parsed), outcome
    return outcome


def dead(outcome) -> DeadLetter:
    assert isinstance(outcome, DeadLetter), outcome
    assert outcome.reason
    assert not outcome.reason.startswith("unexpected"), outcome.reason
    return outcome


def assert_canonical(fields: dict, table: tuple[str, str], source_row: dict) -> None:
    """Every canonical field present, with the canonical Python type and the source's value."""
    entity = ENTITY[table]
    kinds = entity_fields(entity)
    assert set(fields) == set(kinds)
    for name, kind in kinds.items():
        value = fields[name]
        if kind == "trueup.Money":
            expected = MONEY[table][name]
            assert value == {"amount": Decimal(expected), "currency": "EUR"}
            assert type(value["amount"]) is Decimal and str(value["amount"]) == expected
        elif kind == "date":
            assert type(value) is date
            assert (value - date(1970, 1, 1)).days == source_row[name]
        elif kind == "timestamp-micros":
            assert isinstance(value, datetime) and value.utcoffset() is not None
            assert value.utcoffset().total_seconds() == 0
            assert value == (UPDATED_AT if name == "updated_at" else datetime.fromisoformat(source_row[name]))
        elif kind == "boolean":
            assert type(value) is bool and value is source_row[name]
        elif kind == "long":
            assert type(value) is int and value == source_row[name]
        else:
            assert kind == "string"
            assert value == source_row[name] and (value is None or type(value) is str)


# --- 1. every shipped data table ---------------------------------------------------------------------------


def test_the_fixture_covers_every_shipped_table(mapping):
    shipped = {(name, table) for name, source in mapping.sources.items() for table in source.tables
               if name in ("crm", "billing", "erp")}  # the polled billing sources reuse billing's tables
    assert shipped == set(TABLES) and len(shipped) == 9


@pytest.mark.parametrize("table", TABLES, ids="/".join)
def test_insert_becomes_a_canonical_event(mapping, table):
    out = parsed(parse(data_record(*table, "c"), mapping))
    assert out.entity_type == ENTITY[table]
    assert out.entity_id == ENTITY_ID[table] == ROWS[table][KEY_COLUMN[table]]
    assert out.system == table[0] and out.source == table[0] and out.table == table[1]
    assert out.op == "create"
    assert out.before is None
    assert out.source_ts_ms == SOURCE_TS_MS
    assert out.unavailable == set()
    assert out.state_key == f"{ENTITY[table]}|{ENTITY_ID[table]}"
    assert_canonical(out.after, table, ROWS[table])


@pytest.mark.parametrize("table", TABLES, ids="/".join)
def test_unmapped_columns_ride_along_in_extra_as_json_text(mapping, table):
    new = row(*table, loyalty_tier="gold", tags=["a", "b"], nested={"z": 1, "a": None})
    out = parsed(parse(data_record(*table, "c", after=new), mapping))
    mapped = set(mapping.sources[table[0]].tables[table[1]].columns)
    assert set(out.extra) == set(new) - mapped
    assert out.extra["created_at"] == json.dumps(CREATED)
    assert out.extra["loyalty_tier"] == '"gold"'
    assert json.loads(out.extra["tags"]) == ["a", "b"]
    assert json.loads(out.extra["nested"]) == {"z": 1, "a": None}
    for text in out.extra.values():
        assert isinstance(text, str)
        json.loads(text)
    # the canonical fields are untouched by the extra columns
    assert_canonical(out.after, table, ROWS[table])


@pytest.mark.parametrize("table", TABLES, ids="/".join)
@pytest.mark.parametrize("op", ["c", "u", "d", "r"])
def test_every_op_maps_and_converts_before_and_after(mapping, table, op):
    out = parsed(parse(data_record(*table, op), mapping))
    assert out.op == OPS[op]
    assert out.entity_id == ENTITY_ID[table]
    if op in ("c", "r", "u"):
        assert_canonical(out.after, table, ROWS[table])
    else:
        assert out.after is None and out.extra == {}
    if op in ("u", "d"):
        assert_canonical(out.before, table, ROWS[table])
    else:
        assert out.before is None
    assert out.position["kind"] == ("snapshot" if op == "r" else "stream")


def test_update_converts_the_before_image_separately(mapping):
    before = row("billing", "invoices", amount_paid="0.00", status="open", updated_at="2026-11-27T21:00:00Z")
    after = row("billing", "invoices", amount_paid="1200.00", status="paid", updated_at="2026-11-28T09:00:00.5Z")
    out = parsed(parse(data_record("billing", "invoices", "u", before=before, after=after), mapping))
    assert out.before["amount_paid"] == {"amount": Decimal("0.00"), "currency": "EUR"}
    assert out.before["status"] == "open"
    assert out.before["updated_at"] == datetime(2026, 11, 27, 21, 0, tzinfo=UTC)
    assert out.after["amount_paid"] == {"amount": Decimal("1200.00"), "currency": "EUR"}
    assert out.after["status"] == "paid"
    assert out.after["updated_at"] == datetime(2026, 11, 28, 9, 0, 0, 500000, tzinfo=UTC)


def test_delete_with_a_key_only_before_image(mapping):
    """REPLICA IDENTITY DEFAULT: the before image of a delete carries the key, every other column null."""
    before = {column: None for column in ROWS[("erp", "sales_orders")]}
    before["order_no"] = "SO-20001"
    out = parsed(parse(data_record("erp", "sales_orders", "d", before=before), mapping))
    assert out.op == "delete" and out.entity_id == "SO-20001" and out.after is None
    assert out.before["order_no"] == "SO-20001"
    assert out.before["total_amount"] is None and out.before["status"] is None


def test_entity_id_falls_back_to_the_record_key(mapping):
    value = unwrapped({"stage": None}, op="d", deleted=True, lsn=36001656)
    rec = record(topic("crm", "opportunities"), value, key={"id": "OPP-0001"})
    out = parsed(parse(rec, mapping))
    assert out.op == "delete" and out.entity_id == "OPP-0001"
    wrapped_key = {"schema": {"type": "struct", "fields": [{"type": "string", "field": "id"}]},
                   "payload": {"id": "OPP-0002"}}
    out = parsed(parse(record(topic("crm", "opportunities"), value, key=wrapped_key), mapping))
    assert out.entity_id == "OPP-0002"


def test_no_key_anywhere_is_a_dead_letter(mapping):
    value = unwrapped({"stage": None}, op="d", deleted=True, lsn=36001656)
    out = dead(parse(record(topic("crm", "opportunities"), value, key=None), mapping))
    assert "no key" in out.reason and "id" in out.reason


def test_topic_argument_overrides_the_record_topic(mapping):
    """The DLQ replay path hands the original topic in explicitly."""
    rec = data_record("crm", "accounts")
    replayed = RawRecord("trueup.dlq.replay", 0, 99, rec.key, rec.value)
    assert isinstance(parse(replayed, mapping), DeadLetter)
    out = parsed(parse(replayed, mapping, topic("crm", "accounts")))
    assert out.entity_type == "account" and out.entity_id == "ACC-LSN1"


# --- 2. record forms ---------------------------------------------------------------------------------------

FORM_TABLES = [("crm", "opportunities"), ("billing", "invoices"), ("erp", "customers")]


def _form(form: str, table: tuple[str, str], wrapped: bool, decimal_mode: str = "string") -> dict:
    data = row(*table)
    if decimal_mode == "precise":
        for column, pg_type in COLUMNS[table]:
            if pg_type == "numeric" and data[column] is not None:
                data[column] = precise(Decimal(data[column]))
    if form == "envelope":
        value = envelope(*table, "u", after=data, before=data)
    elif form == "unwrapped":
        value = unwrapped(data, op="u", lsn=36001656, source_ts_ms=SOURCE_TS_MS, seq=sequence(36001240, 36001656),
                          source_txId=882, deleted=False)
    else:
        value = dict(data)
    return with_schema(value, *table, decimal_mode=decimal_mode) if wrapped else value


@pytest.mark.parametrize("table", FORM_TABLES, ids="/".join)
@pytest.mark.parametrize("wrapped", [False, True], ids=["plain", "schema"])
@pytest.mark.parametrize("form", ["envelope", "unwrapped", "bare"])
def test_every_record_form_yields_the_same_fields(mapping, table, wrapped, form):
    out = parsed(parse(record(topic(*table), _form(form, table, wrapped), offset=41), mapping))
    assert out.op == "update"
    assert out.entity_id == ENTITY_ID[table]
    assert_canonical(out.after, table, ROWS[table])
    assert "__op" not in out.extra and not any(k.startswith("__") for k in out.extra)
    assert "created_at" in out.extra
    if form == "bare":
        assert out.source_ts_ms == ENVELOPE_TS_MS  # no metadata: the Kafka timestamp
        assert out.position["order"] == [1, 0, 0, 41]  # no metadata: the partition offset orders
        assert out.correlation_id.startswith(f"{table[0]}-{table[1]}-{ENTITY_ID[table]}-")
    else:
        assert out.source_ts_ms == SOURCE_TS_MS
        assert out.position["order"] == [1, 36001240, 36001656]
        assert out.position["lsn"] == 36001656
        assert out.correlation_id == f"{table[0]}-tx-882"


@pytest.mark.parametrize("table", FORM_TABLES, ids="/".join)
@pytest.mark.parametrize("form", ["envelope", "unwrapped", "bare"])
def test_precise_decimals_with_the_schema_wrapper(mapping, table, form):
    value = _form(form, table, wrapped=True, decimal_mode="precise")
    out = parsed(parse(record(topic(*table), value), mapping))
    assert_canonical(out.after, table, ROWS[table])


def test_unwrapped_snapshot_and_delete(mapping):
    data = row("crm", "accounts")
    snap = unwrapped(data, op="r", lsn=35989824, source_snapshot="true", source_ts_ms=SOURCE_TS_MS,
                     deleted=False)
    out = parsed(parse(record(topic("crm", "accounts"), snap), mapping))
    assert out.op == "snapshot" and out.position["kind"] == "snapshot" and out.position["order"] == [0, 35989824, 0]
    gone = unwrapped(data, op="d", lsn=36002000, deleted=True)
    for value in (gone, with_schema(gone, "crm", "accounts")):
        out = parsed(parse(record(topic("crm", "accounts"), value), mapping))
        assert out.op == "delete" and out.after is None
        assert_canonical(out.before, ("crm", "accounts"), data)
    # delete.handling.mode=rewrite without __op: __deleted alone marks the delete
    out = parsed(parse(record(topic("crm", "accounts"), unwrapped(data, deleted=True)), mapping))
    assert out.op == "delete"


# --- 3. money ----------------------------------------------------------------------------------------------

OPP = ("crm", "opportunities")


def _opp(mapping, amount, currency="EUR", *, wrapped=False, decimal_mode="string", form="envelope"):
    data = row(*OPP, amount=amount, currency=currency)
    value = envelope(*OPP, "c", after=data) if form == "envelope" else unwrapped(data, op="c", lsn=36001656)
    if wrapped:
        value = with_schema(value, *OPP, decimal_mode=decimal_mode)
    return parse(record(topic(*OPP), value), mapping)


@pytest.mark.parametrize("text,expected", [
    ("1200.00", "1200.00"), ("0.00", "0.00"), ("7", "7.00"), ("7.5", "7.50"), ("-12.34", "-12.34"),
    ("9999999999999999.99", "9999999999999999.99"), ("-0.01", "-0.01"),
])
def test_money_from_decimal_strings(mapping, text, expected):
    out = parsed(_opp(mapping, text))
    amount = out.after["amount"]["amount"]
    assert type(amount) is Decimal and str(amount) == expected
    assert out.after["amount"]["currency"] == "EUR"


@pytest.mark.parametrize("value", ["1200.00", "-1200.00", "0.01", "-0.01", "9999999999999999.99", "0.00",
                                   "-8388608.00", "1.28", "-1.28", "327.67"])
@pytest.mark.parametrize("form", ["envelope", "unwrapped"])
def test_money_from_precise_bytes_with_the_wrapper_scale(mapping, value, form):
    out = parsed(_opp(mapping, precise(Decimal(value)), wrapped=True, decimal_mode="precise", form=form))
    assert out.after["amount"] == {"amount": Decimal(value), "currency": "EUR"}
    assert str(out.after["amount"]["amount"]) == value


def test_money_precise_scale_comes_from_the_wrapper_parameters(mapping):
    value = with_schema(envelope(*OPP, "c", after=row(*OPP, amount=precise(Decimal("12.3"), scale=1))), *OPP,
                        overrides={"amount": {"type": "bytes", "optional": True,
                                              "name": "org.apache.kafka.connect.data.Decimal", "version": 1,
                                              "parameters": {"scale": "1", "connect.decimal.precision": "18"}}})
    out = parsed(parse(record(topic(*OPP), value), mapping))
    assert out.after["amount"]["amount"] == Decimal("12.30")


@pytest.mark.parametrize("value", ["1200.00", "-1200.00", "0.01", "-0.01", "123456.78", "-123456.78"])
def test_money_from_precise_bytes_without_the_wrapper_uses_the_mapping_scale(mapping, value):
    encoded = precise(Decimal(value))
    assert not encoded.isdigit()  # a digits-only encoding would be read as a decimal string without a schema
    out = parsed(_opp(mapping, encoded))
    assert out.after["amount"] == {"amount": Decimal(value), "currency": "EUR"}


def test_money_precise_scale_from_mapping_scales(mapping):
    raw = mapping.model_dump(by_alias=True)
    raw["sources"]["crm"]["tables"]["opportunities"]["scales"] = {"amount": 4}
    custom = Mapping.model_validate(raw)
    out = parsed(_opp(custom, precise(Decimal("12.3400"), scale=4)))
    assert out.after["amount"]["amount"] == Decimal("12.34")


def test_money_in_the_precise_form_that_looks_like_digits(mapping):
    """BUG: -26672.12 is unscaled -2667212 = bytes D7 4D 34 = base64 "1000". With the wrapper declaring the
    column org.apache.kafka.connect.data.Decimal (bytes), the value is base64, yet values.decimal_from tries it
    as a decimal string first and reads 1000.00."""
    encoded = precise(Decimal("-26672.12"))
    assert encoded == "1000"
    out = parsed(_opp(mapping, encoded, wrapped=True, decimal_mode="precise"))
    assert out.after["amount"]["amount"] == Decimal("-26672.12")


def test_variable_scale_decimal_struct(mapping):
    out = parsed(_opp(mapping, {"scale": 3, "value": precise(Decimal("1.250"), scale=3)}))
    assert out.after["amount"]["amount"] == Decimal("1.25")


def test_a_null_amount_is_a_null_money(mapping):
    out = parsed(_opp(mapping, None))
    assert out.after["amount"] is None


@pytest.mark.parametrize("amount,currency", [
    (1200.0, "EUR"),            # a JSON float: never
    (12.5, "EUR"),
    ("12,00", "EUR"),
    ("abc", "EUR"),
    ("12.345", "EUR"),          # three places in numeric(18,2)
    ("1.001", "EUR"),
    ("", "EUR"),
    ("NaN", "EUR"),
    ("Infinity", "EUR"),        # Decimal parses it, but it is no amount (must not be read as base64)
    ("1e30", "EUR"),            # beyond numeric(18,2)
    ("10000000000000000.00", "EUR"),
    (True, "EUR"),
    ("12.00", "eur"),
    ("12.00", "EURO"),
    ("12.00", None),
    ("12.00", ""),
    ("12.00", 978),
])
def test_bad_money_is_a_dead_letter(mapping, amount, currency):
    out = dead(_opp(mapping, amount, currency))
    assert "bad money" in out.reason


def test_a_float_amount_is_named_in_the_reason(mapping):
    out = dead(_opp(mapping, 1200.0))
    assert "bad money" in out.reason and "amount" in out.reason and "float" in out.reason


def test_money_currency_is_checked_for_every_money_field(mapping):
    data = row("billing", "invoices", currency="euro")
    out = dead(parse(data_record("billing", "invoices", "c", after=data), mapping))
    assert "bad money" in out.reason and "amount_due" in out.reason


# --- 4. timestamps and dates -------------------------------------------------------------------------------

ACC = ("crm", "accounts")

INT_TIMESTAMPS = [
    ("io.debezium.time.MicroTimestamp", "int64", 1795814155780123, datetime(2026, 11, 27, 21, 15, 55, 780123)),
    ("io.debezium.time.NanoTimestamp", "int64", 1795814155780123456,
     datetime(2026, 11, 27, 21, 15, 55, 780123)),
    ("io.debezium.time.Timestamp", "int64", 1795814155780, datetime(2026, 11, 27, 21, 15, 55, 780000)),
    ("org.apache.kafka.connect.data.Timestamp", "int64", 1795814155780,
     datetime(2026, 11, 27, 21, 15, 55, 780000)),
    ("io.debezium.time.MicroTimestamp", "int64", -1, datetime(1969, 12, 31, 23, 59, 59, 999999)),
]


@pytest.mark.parametrize("name,kind,raw,expected", INT_TIMESTAMPS, ids=[t[0] + str(t[2]) for t in INT_TIMESTAMPS])
@pytest.mark.parametrize("form", ["envelope", "unwrapped"])
def test_integer_timestamps_take_their_unit_from_the_wrapper(mapping, name, kind, raw, expected, form):
    data = row(*ACC, updated_at=raw)
    value = envelope(*ACC, "c", after=data) if form == "envelope" else unwrapped(data, op="c", lsn=36001656)
    value = with_schema(value, *ACC, overrides={"updated_at": {"type": kind, "optional": False, "name": name,
                                                               "version": 1}})
    out = parsed(parse(record(topic(*ACC), value), mapping))
    assert out.after["updated_at"] == expected.replace(tzinfo=UTC)
    assert out.after["updated_at"].tzinfo is not None and out.after["updated_at"].utcoffset().total_seconds() == 0


def test_integer_timestamp_without_the_wrapper_is_microseconds(mapping):
    out = parsed(parse(data_record(*ACC, after=row(*ACC, updated_at=1795814155780123)), mapping))
    assert out.after["updated_at"] == UPDATED_AT


@pytest.mark.parametrize("text,expected", [
    ("2026-11-27T21:15:55.780123Z", datetime(2026, 11, 27, 21, 15, 55, 780123)),
    ("2026-11-27T21:15:55.78Z", datetime(2026, 11, 27, 21, 15, 55, 780000)),   # ZonedTimestamp trims zeros
    ("2026-11-27T21:15:55Z", datetime(2026, 11, 27, 21, 15, 55)),
    ("2026-11-27T23:15:55.780123+02:00", datetime(2026, 11, 27, 21, 15, 55, 780123)),
    ("2026-11-27T15:45:55.780123-05:30", datetime(2026, 11, 27, 21, 15, 55, 780123)),
    ("2026-11-28T01:15:55+04:00", datetime(2026, 11, 27, 21, 15, 55)),
    ("2026-11-27T21:15:55.780123", datetime(2026, 11, 27, 21, 15, 55, 780123)),   # naive: taken as UTC
])
def test_iso_timestamps_become_aware_utc(mapping, text, expected):
    out = parsed(parse(data_record(*ACC, after=row(*ACC, updated_at=text)), mapping))
    got = out.after["updated_at"]
    assert got == expected.replace(tzinfo=UTC)
    assert got.tzinfo == UTC


@pytest.mark.parametrize("raw,expected", [
    (0, date(1970, 1, 1)), (20818, date(2026, 12, 31)), (-1, date(1969, 12, 31)),
    (days(date(2000, 2, 29)), date(2000, 2, 29)), ("2026-12-31", date(2026, 12, 31)),
])
@pytest.mark.parametrize("wrapped", [False, True])
def test_dates_are_days_since_the_epoch(mapping, raw, expected, wrapped):
    value = envelope(*OPP, "c", after=row(*OPP, close_date=raw))
    if wrapped:
        value = with_schema(value, *OPP)
    out = parsed(parse(record(topic(*OPP), value), mapping))
    assert out.after["close_date"] == expected and type(out.after["close_date"]) is date


# --- 6. schema drift ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("table,column", [
    (("crm", "accounts"), "status"), (("crm", "accounts"), "updated_at"),
    (("crm", "opportunities"), "close_date"), (("crm", "opportunities"), "amount"),
    (("crm", "opportunities"), "currency"), (("billing", "customers"), "delinquent"),
    (("billing", "subscriptions"), "quantity"), (("billing", "invoices"), "amount_paid"),
    (("billing", "payments"), "kind"), (("erp", "customers"), "credit_hold"),
    (("erp", "sales_orders"), "total_amount"), (("erp", "ar_postings"), "invoice_ref"),
])
def test_a_mapped_column_missing_from_after_is_schema_drift(mapping, table, column):
    data = row(*table)
    del data[column]
    out = dead(parse(data_record(*table, "u", after=data), mapping))
    assert "schema drift" in out.reason and column in out.reason


@pytest.mark.parametrize("table,column,value", [
    (("crm", "accounts"), "name", 42),
    (("crm", "accounts"), "status", ["active"]),
    (("crm", "accounts"), "updated_at", "yesterday"),
    (("crm", "accounts"), "updated_at", True),
    (("crm", "opportunities"), "close_date", "soon"),
    (("crm", "opportunities"), "close_date", 20818.5),
    (("billing", "customers"), "delinquent", "yes"),
    (("billing", "customers"), "delinquent", 1),
    (("billing", "subscriptions"), "quantity", "3"),
    (("billing", "subscriptions"), "quantity", True),
    (("erp", "customers"), "credit_hold", "true"),
    (("erp", "sales_orders"), "customer_no", {"no": "C-1"}),
])
def test_a_retyped_mapped_column_is_schema_drift(mapping, table, column, value):
    out = dead(parse(data_record(*table, "u", after=row(*table, **{column: value})), mapping))
    assert "schema drift" in out.reason and column in out.reason


def test_a_new_column_never_breaks_the_event(mapping):
    data = row(*OPP, discount_pct=15, forecast_category="commit")
    value = with_schema(envelope(*OPP, "c", after=data), *OPP,
                        extra_columns={"discount_pct": "integer", "forecast_category": "text"})
    for rec in (record(topic(*OPP), value), data_record(*OPP, after=data)):
        out = parsed(parse(rec, mapping))
        assert out.extra["discount_pct"] == "15" and out.extra["forecast_category"] == '"commit"'
        assert_canonical(out.after, OPP, ROWS[OPP])


def test_a_dropped_unmapped_column_is_no_drift(mapping):
    data = row(*ACC)
    del data["industry"], data["created_at"]
    out = parsed(parse(data_record(*ACC, after=data), mapping))
    assert "industry" not in out.extra and "created_at" not in out.extra


# --- 7. control records ------------------------------------------------------------------------------------


@pytest.mark.parametrize("system", ["crm", "billing", "erp"])
def test_heartbeat_topic(mapping, system):
    rec = record(f"__debezium-heartbeat.{system}", {"ts_ms": 1795814160000}, key={"serverName": system})
    assert parse(rec, mapping) == Control("heartbeat", system, 1795814160000)
    wrapped = {"schema": {"type": "struct", "fields": [{"type": "int64", "optional": False, "field": "ts_ms"}],
                          "optional": False, "name": "io.debezium.connector.common.Heartbeat"},
               "payload": {"ts_ms": 1795814160001}}
    assert parse(record(f"__debezium-heartbeat.{system}", wrapped), mapping) == Control("heartbeat", system,
                                                                                         1795814160001)
    assert parse(record(f"__debezium-heartbeat.{system}", None), mapping) == Control("heartbeat", system, None)
    # The connector runner's mark of an acknowledged batch shares the topic: recognised as such, never data.
    mark = record(f"__debezium-heartbeat.{system}", acked_mark(1795814160002))
    assert parse(mark, mapping) == Control("mark", system, 1795814160002)


@pytest.mark.parametrize("system", ["crm", "billing", "erp"])
def test_heartbeat_table_carries_the_source_commit_time(mapping, system):
    hb = {"id": 1, "ts": "2026-11-27T21:16:00.001Z"}
    value = envelope(system, "trueup_heartbeat", "u", after=hb, before=hb, ts_ms=1795814160001)
    value["ts_ms"] = 1795814169999  # the envelope's own (processing) time is not the source time
    t = topic(system, "trueup_heartbeat")
    assert parse(record(t, value), mapping) == Control("heartbeat", system, 1795814160001)
    assert parse(record(t, with_schema_heartbeat(value)), mapping) == Control("heartbeat", system, 1795814160001)
    flat = unwrapped(hb, op="u", lsn=36001700, source_ts_ms=1795814160002)
    assert parse(record(t, flat), mapping) == Control("heartbeat", system, 1795814160002)
    assert parse(record(t, None), mapping) == Control("tombstone", system)


def with_schema_heartbeat(value: dict) -> dict:
    cols = [{"type": "int32", "optional": False, "field": "id"},
            {"type": "string", "optional": False, "name": "io.debezium.time.ZonedTimestamp", "field": "ts"}]
    return {"schema": {"type": "struct", "fields": [
        {"type": "struct", "fields": cols, "optional": True, "field": "before"},
        {"type": "struct", "fields": cols, "optional": True, "field": "after"},
        {"type": "struct", "fields": [], "optional": False, "field": "source"},
        {"type": "string", "optional": False, "field": "op"},
    ]}, "payload": value}


@pytest.mark.parametrize("system", ["crm", "billing", "erp"])
def test_signal_table(mapping, system):
    signal = {"id": "ad-hoc-1", "type": "execute-snapshot",
              "data": '{"data-collections": ["public.accounts"], "type": "incremental"}'}
    t = topic(system, "debezium_signal")
    for value in (envelope(system, "debezium_signal", "c", after=signal), None, b"not even json"):
        out = parse(record(t, value), mapping)
        assert out == Control("signal", system)


@pytest.mark.parametrize("system", ["crm", "billing", "erp"])
def test_transaction_topic(mapping, system):
    for status in ("BEGIN", "END"):
        value = {"status": status, "id": "882:36001656", "event_count": 2 if status == "END" else None,
                 "data_collections": None, "ts_ms": SOURCE_TS_MS}
        out = parse(record(f"{system}.transaction", value, key={"id": "882:36001656"}), mapping)
        assert isinstance(out, Control) and out.kind == "transaction" and out.source == system


@pytest.mark.parametrize("table", TABLES, ids="/".join)
def test_tombstone_after_a_delete(mapping, table):
    key_col = KEY_COLUMN[table]
    out = parse(record(topic(*table), None, key={key_col: ENTITY_ID[table]}), mapping)
    assert out == Control("tombstone", table[0])


# --- 8. dead letters ---------------------------------------------------------------------------------------

BAD_VALUES = {
    "garbage bytes": (b"\x00\xff\xfe", "malformed"),
    "truncated json": (json.dumps(envelope(*ACC, "c")).encode()[:-20], "not JSON"),
    "json array": (b'[{"op": "c"}]', "expected a JSON object"),
    "json string": (b'"c"', "expected a JSON object"),
    "json null": (b"null", "expected a JSON object"),
    "empty object": (b"{}", "malformed"),
    "empty bytes": (b"", "not JSON"),
    "op t": (json.dumps({**envelope(*ACC, "c"), "op": "t", "after": None}).encode(), "unsupported op"),
    "op m": (json.dumps({**envelope(*ACC, "c"), "op": "m"}).encode(), "unsupported op"),
    "source not an object": (json.dumps({**envelope(*ACC, "c"), "source": "crm"}).encode(), "source"),
    "after not an object": (json.dumps({**envelope(*ACC, "c"), "after": [1]}).encode(), "after"),
    "create without after": (json.dumps({**envelope(*ACC, "c"), "after": None}).encode(), "after"),
    "delete without before": (json.dumps({**envelope(*ACC, "d"), "before": None}).encode(), "before"),
    "unwrapped op t": (json.dumps(unwrapped(row(*ACC), op="t")).encode(), "unsupported __op"),
}


@pytest.mark.parametrize("name", list(BAD_VALUES))
def test_malformed_records_are_dead_letters(mapping, name):
    value, words = BAD_VALUES[name]
    out = dead(parse(record(topic(*ACC), value), mapping))
    assert words in out.reason


def test_missing_source_block_is_a_malformed_envelope(mapping):
    """BUG (reason): an envelope without `source` falls through to the unwrapped-row path and is dead-lettered
    as "schema drift: mapped column id missing", pointing the operator at the mapping instead of the producer."""
    value = envelope(*ACC, "c")
    del value["source"]
    out = dead(parse(record(topic(*ACC), value), mapping))
    assert "malformed envelope" in out.reason and "source" in out.reason


@pytest.mark.parametrize("name", ["crm.public.leads", "crm.public.accounts_archive", "hr.public.employees",
                                  "crm.accounts", ""])
def test_unknown_table_is_a_dead_letter(mapping, name):
    for value in (envelope(*ACC, "c"), None):
        out = dead(parse(record(name, value), mapping))
        assert "unknown table" in out.reason and (name in out.reason)


def test_parse_never_raises_on_broken_records(mapping):
    broken = [
        RawRecord(topic(*ACC), 0, 0, b"\xff", json.dumps(envelope(*ACC, "d")).replace('"ACC-LSN1"', "null")
                  .encode()),
        RawRecord(topic(*ACC), 0, 0, None, json.dumps({"schema": None, "payload": None}).encode()),
        RawRecord(topic(*ACC), 0, 0, None, json.dumps({"schema": 5, "payload": envelope(*ACC)}).encode()),
        RawRecord("__debezium-heartbeat.crm", 0, 0, None, b"\x00\xff"),
        RawRecord(topic("crm", "trueup_heartbeat"), 0, 0, None, b"[]"),
    ]
    for rec in broken:
        out = parse(rec, mapping)
        assert isinstance(out, (Parsed, Control, DeadLetter))


def test_a_wrapped_envelope_with_a_broken_schema_still_parses(mapping):
    value = {"schema": {"type": "struct", "fields": "nope"}, "payload": envelope(*ACC, "c")}
    out = parsed(parse(record(topic(*ACC), value), mapping))
    assert_canonical(out.after, ACC, ROWS[ACC])


# --- 10. correlation ids -----------------------------------------------------------------------------------


def test_changes_in_one_transaction_share_a_correlation_id(mapping):
    acc = parsed(parse(data_record("crm", "accounts", "c", tx_id=882, lsn=36001656), mapping))
    opp = parsed(parse(data_record("crm", "opportunities", "c", tx_id=882, lsn=36001900), mapping))
    other = parsed(parse(data_record("crm", "opportunities", "u", tx_id=883, lsn=36002400,
                                     last_commit=36002000), mapping))
    assert acc.correlation_id == opp.correlation_id == "crm-tx-882"
    assert other.correlation_id == "crm-tx-883"
    inv = parsed(parse(data_record("billing", "invoices", "c", tx_id=882), mapping))
    assert inv.correlation_id == "billing-tx-882"  # same txId in another database is another transaction


def test_without_a_transaction_id_each_change_has_its_own_correlation_id(mapping):
    first = parsed(parse(record(topic(*ACC), unwrapped(row(*ACC), op="u", lsn=36001656)), mapping))
    second = parsed(parse(record(topic(*ACC), unwrapped(row(*ACC), op="u", lsn=36001700)), mapping))
    assert first.correlation_id and second.correlation_id and first.correlation_id != second.correlation_id
    assert "-tx-" not in first.correlation_id


def _with_correlation(mapping: Mapping, column: str) -> Mapping:
    raw = mapping.model_dump(by_alias=True)
    raw["sources"]["billing"]["tables"]["payments"]["correlation"] = column
    return Mapping.model_validate(raw)


def test_a_configured_correlation_column_wins(mapping):
    custom = _with_correlation(mapping, "invoice_id")
    assert custom.sources["billing"].tables["payments"].correlation == "invoice_id"
    out = parsed(parse(data_record("billing", "payments", "c", tx_id=900), custom))
    assert out.correlation_id == "in_NwT1"
    # on a delete the before image carries it
    out = parsed(parse(data_record("billing", "payments", "d", tx_id=901), custom))
    assert out.correlation_id == "in_NwT1"
    # a null correlation column falls back to the transaction
    out = parsed(parse(data_record("billing", "payments", "c", tx_id=902,
                                   after=row("billing", "payments", invoice_id=None)), custom))
    assert out.correlation_id == "billing-tx-902"
    # other tables keep the transaction id
    out = parsed(parse(data_record("billing", "invoices", "c", tx_id=900), custom))
    assert out.correlation_id == "billing-tx-900"


def test_a_correlation_column_must_be_mapped(mapping):
    with pytest.raises(ValueError):
        _with_correlation(mapping, "trace_id")


# --- routed topics: the envelope's own table is the authority ----------------------------------------------


def test_an_envelope_names_its_own_table(mapping):
    """A routing SMT can put several tables on one topic; source.table decides the entity."""
    value = envelope(*OPP, "c")
    out = parsed(parse(record(topic(*ACC), value), mapping))
    assert out.table == "opportunities" and out.entity_type == "opportunity" and out.entity_id == "OPP-0001"
    assert_canonical(out.after, OPP, ROWS[OPP])
    flat = unwrapped(row(*OPP), op="c", lsn=36001656, table="opportunities")
    out = parsed(parse(record(topic(*ACC), flat), mapping))
    assert out.entity_type == "opportunity"


def test_routed_control_tables_are_control_records(mapping):
    hb = {"id": 1, "ts": "2026-11-27T21:16:00Z"}
    out = parse(record(topic(*ACC), envelope("crm", "trueup_heartbeat", "u", after=hb, before=hb,
                                              ts_ms=1795814160000)), mapping)
    assert out == Control("heartbeat", "crm", 1795814160000)
    signal = {"id": "s1", "type": "log", "data": "{}"}
    out = parse(record(topic(*ACC), envelope("crm", "debezium_signal", "c", after=signal)), mapping)
    assert out == Control("signal", "crm")


def test_a_routed_unknown_table_is_a_dead_letter(mapping):
    value = envelope("crm", "leads", "c", after={"id": "LEAD-1", "email": "x@example.com"})
    out = dead(parse(record(topic(*ACC), value), mapping))
    assert "unknown table" in out.reason and "leads" in out.reason
