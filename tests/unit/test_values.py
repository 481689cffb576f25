"""streams.values: Debezium column values -> Decimal money, aware UTC datetimes, dates, checked scalars."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from streams.values import ValueProblem, date_from, decimal_from, json_text, money, scalar_from, timestamp_from
from tests.unit.envelopes import precise

UTC = timezone.utc


# --- decimal_from ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw,expected", [
    ("1200.00", "1200.00"), (" 12.5 ", "12.5"), ("-0.01", "-0.01"), ("+3", "3"), ("1e2", "1E+2"), (12, "12"),
])
def test_decimal_strings_and_ints(raw, expected):
    got = decimal_from(raw, "amount", 2)
    assert type(got) is Decimal and str(got) == expected


@pytest.mark.parametrize("value,scale", [("1200.00", 2), ("-1200.00", 2), ("0.00", 2), ("12.345", 3),
                                         ("-0.5", 1), ("42", 0), ("-1.28", 2), ("1.27", 2)])
def test_precise_base64_with_a_scale(value, scale):
    encoded = precise(Decimal(value), scale)
    assert decimal_from(encoded, "amount", scale) == Decimal(value)


def test_precise_bytes_are_twos_complement_big_endian():
    assert decimal_from("AP8=", "amount", 2) == Decimal("2.55")     # 00 FF
    assert decimal_from("/w==", "amount", 2) == Decimal("-0.01")    # FF
    assert decimal_from("gA==", "amount", 0) == Decimal("-128")     # 80
    assert decimal_from("AQAA", "amount", 2) == Decimal("655.36")   # 01 00 00


def test_variable_scale_decimal():
    assert decimal_from({"scale": 4, "value": precise(Decimal("1.2345"), 4)}, "amount", None) == Decimal("1.2345")


def test_base64_needs_a_scale():
    with pytest.raises(ValueProblem, match="bad money"):
        decimal_from("AP8=", "amount", None)


@pytest.mark.parametrize("raw", [1200.0, 0.1, True, False, None, [], {}, "12,00", "abc", "", "NaN", "1.2.3",
                                 "--1", "AP8", "Infinity"])
def test_bad_decimals(raw):
    with pytest.raises(ValueProblem, match="bad money"):
        decimal_from(raw, "amount", 2)


# --- money ------------------------------------------------------------------------------------------------


def test_money_quantizes_to_cents():
    value = money(Decimal("7.5"), "EUR", "amount")
    assert value == {"amount": Decimal("7.50"), "currency": "EUR"} and str(value["amount"]) == "7.50"


@pytest.mark.parametrize("amount", ["12.345", "0.001", "10000000000000000", "-10000000000000000.00"])
def test_money_out_of_numeric_18_2(amount):
    with pytest.raises(ValueProblem, match="bad money"):
        money(Decimal(amount), "EUR", "amount")


def test_money_far_out_of_range_is_bad_money_not_a_crash():
    """BUG: money() quantizes before the range check; Decimal('1e30').quantize(Decimal('0.01')) raises
    decimal.InvalidOperation (needs 33 digits > context precision 28) instead of ValueProblem."""
    with pytest.raises(ValueProblem, match="bad money"):
        money(Decimal("1e30"), "EUR", "amount")


@pytest.mark.parametrize("currency", ["eur", "EURO", "EU", "", None, 978, "E1R"])
def test_money_currency_is_iso_4217(currency):
    with pytest.raises(ValueProblem, match="bad money"):
        money(Decimal("1.00"), currency, "amount")


# --- dates and timestamps ------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw,expected", [(0, date(1970, 1, 1)), (20818, date(2026, 12, 31)),
                                          (-719162, date(1, 1, 1)), ("2026-12-31", date(2026, 12, 31))])
def test_date_from(raw, expected):
    assert date_from(raw, "close_date", "io.debezium.time.Date") == expected


@pytest.mark.parametrize("raw", ["soon", True, 1.5, None, [], "2026-13-01"])
def test_bad_dates_are_schema_drift(raw):
    with pytest.raises(ValueProblem, match="schema drift"):
        date_from(raw, "close_date")


@pytest.mark.parametrize("raw,name,expected", [
    (1795814155780123, "io.debezium.time.MicroTimestamp", datetime(2026, 11, 27, 21, 15, 55, 780123)),
    (1795814155780123999, "io.debezium.time.NanoTimestamp", datetime(2026, 11, 27, 21, 15, 55, 780123)),
    (1795814155780, "io.debezium.time.Timestamp", datetime(2026, 11, 27, 21, 15, 55, 780000)),
    (1795814155780, "org.apache.kafka.connect.data.Timestamp", datetime(2026, 11, 27, 21, 15, 55, 780000)),
    (1795814155780123, None, datetime(2026, 11, 27, 21, 15, 55, 780123)),
    (-1500, "io.debezium.time.Timestamp", datetime(1969, 12, 31, 23, 59, 58, 500000)),
    ("2026-11-27T22:15:55.780123+01:00", "io.debezium.time.ZonedTimestamp",
     datetime(2026, 11, 27, 21, 15, 55, 780123)),
    ("2026-11-27T21:15:55Z", None, datetime(2026, 11, 27, 21, 15, 55)),
])
def test_timestamp_from(raw, name, expected):
    got = timestamp_from(raw, "updated_at", name)
    assert got == expected.replace(tzinfo=UTC) and got.tzinfo == UTC


@pytest.mark.parametrize("raw", ["yesterday", True, 1.5, None, {}, ""])
def test_bad_timestamps_are_schema_drift(raw):
    with pytest.raises(ValueProblem, match="schema drift"):
        timestamp_from(raw, "updated_at")


@pytest.mark.parametrize("fn,raw", [(date_from, 10**9), (date_from, -(10**9)), (timestamp_from, 10**20)])
def test_out_of_range_dates_are_schema_drift_not_a_crash(fn, raw):
    """BUG: an integer date/timestamp beyond Python's range raises OverflowError out of values.date_from /
    timestamp_from (the normalizer then dead-letters it as "unexpected OverflowError")."""
    with pytest.raises(ValueProblem, match="schema drift"):
        fn(raw, "close_date")


# --- scalar_from -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind,raw", [("text", "x"), ("text", ""), ("integer", 0), ("integer", -5),
                                      ("boolean", True), ("boolean", False)])
def test_scalar_accepts_its_own_type(kind, raw):
    got = scalar_from(raw, "col", kind)
    assert got == raw and type(got) is type(raw)


@pytest.mark.parametrize("kind,raw", [("text", 1), ("text", True), ("text", {"a": 1}), ("integer", "1"),
                                      ("integer", True), ("integer", 1.0), ("boolean", "yes"), ("boolean", 1),
                                      ("boolean", "true"), ("numeric", "1.00"), ("nonsense", "x")])
def test_scalar_rejects_other_types_as_schema_drift(kind, raw):
    with pytest.raises(ValueProblem, match="schema drift: column col"):
        scalar_from(raw, "col", kind)


# --- json_text -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [
    "plain", "", 'quote " and \\ backslash', "tab\tnew\nline\x01", "Zürich – 東京 😀", "__debezium",
    0, -7, 2**70, True, False, None, 1.5, float("nan"), float("inf"), [3, "a", None],
    {"b": 1, "a": [True, {"z": "é", "y": 2}]},
])
def test_json_text_is_json_dumps_with_sorted_keys_byte_for_byte(value):
    import json

    assert json_text(value) == json.dumps(value, sort_keys=True)
