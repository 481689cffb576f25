"""Convert Debezium column values into canonical Python values: Decimal money, UTC datetimes, dates."""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from json.encoder import encode_basestring_ascii

UNAVAILABLE = "__debezium_unavailable_value"
EPOCH_DATE = date(1970, 1, 1)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
CURRENCY = re.compile(r"^[A-Z]{3}$")
MONEY_SCALE = Decimal("0.01")
MONEY_LIMIT = Decimal(10) ** 16  # numeric(18,2)


def json_text(value) -> str:
    """json.dumps(value, sort_keys=True), the same text, without building an encoder for a plain scalar.

    Every unmapped column of every change is kept as JSON text; json.dumps set up a fresh encoder for each.
    """
    kind = type(value)
    if kind is str:
        return encode_basestring_ascii(value)  # what json.dumps does for a str (ensure_ascii)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return int.__repr__(value)
    return json.dumps(value, sort_keys=True)


class ValueProblem(ValueError):
    """A column value cannot be converted; the message is the dead-letter reason."""


def decimal_from(raw, column: str, scale: int | None, encoded_as_bytes: bool = False) -> Decimal:
    """A numeric column from decimal.handling.mode=string, or the base64 `precise` form with a known scale.

    encoded_as_bytes: the schema wrapper says the column is Connect's Decimal (base64 bytes), so a value
    such as "1000" is bytes, not digits.
    """
    if isinstance(raw, bool) or raw is None:
        raise ValueProblem(f"bad money: column {column} holds {raw!r}, not a number")
    if isinstance(raw, float):
        raise ValueProblem(f"bad money: column {column} arrived as a binary float ({raw!r}); refusing to guess")
    if isinstance(raw, int):
        return Decimal(raw)
    if isinstance(raw, dict) and "value" in raw and "scale" in raw:  # io.debezium.data.VariableScaleDecimal
        return _from_base64(raw["value"], int(raw["scale"]), column)
    if not isinstance(raw, str):
        raise ValueProblem(f"bad money: column {column} holds {type(raw).__name__}, not a decimal string")
    text = raw.strip()
    if encoded_as_bytes and scale is not None:
        return _from_base64(text, scale, column)
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = None
    if value is not None:
        if not value.is_finite():
            raise ValueProblem(f"bad money: column {column} holds {raw!r}, not a finite amount")
        if re.fullmatch(r"[+-]?\d+(\.\d+)?([eE][+-]?\d+)?", text):
            return value
    if scale is not None and re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", text) and len(text) % 4 == 0:
        return _from_base64(text, scale, column)
    raise ValueProblem(f"bad money: column {column} holds {raw!r}, not a decimal")


def _from_base64(text: str, scale: int, column: str) -> Decimal:
    try:
        unscaled = int.from_bytes(base64.b64decode(text, validate=True), "big", signed=True)
    except (binascii.Error, ValueError):
        raise ValueProblem(f"bad money: column {column} holds {text!r}, not base64 decimal bytes") from None
    return Decimal(unscaled).scaleb(-scale)


def money(amount: Decimal, currency, field: str) -> dict:
    """A canonical Money value: exact to the cent, within numeric(18,2), with an ISO 4217 currency."""
    if not isinstance(currency, str) or not CURRENCY.match(currency.strip()):
        raise ValueProblem(f"bad money: {field} has currency {currency!r}, not an ISO 4217 code")
    if not amount.is_finite() or abs(amount) >= MONEY_LIMIT:
        raise ValueProblem(f"bad money: {field} = {amount} exceeds numeric(18,2)")
    try:
        exact = amount.quantize(MONEY_SCALE)
    except InvalidOperation:
        raise ValueProblem(f"bad money: {field} = {amount} is not representable") from None
    if amount != exact:
        raise ValueProblem(f"bad money: {field} = {amount} has more than two decimal places")
    return {"amount": exact, "currency": currency.strip()}


def date_from(raw, column: str, schema_name: str | None = None) -> date:
    """io.debezium.time.Date / Kafka Connect Date: days since the epoch (or an ISO date string)."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        try:
            return EPOCH_DATE + timedelta(days=raw)
        except OverflowError:
            raise ValueProblem(f"schema drift: column {column} date {raw} out of range") from None
    if isinstance(raw, str):
        try:
            return date.fromisoformat(raw)
        except ValueError:
            pass
    raise ValueProblem(f"schema drift: column {column} declared date arrived as {raw!r}")


_INT_TIMESTAMP_UNITS = {
    "io.debezium.time.MicroTimestamp": 1_000_000,
    "io.debezium.time.NanoTimestamp": 1_000_000_000,
    "io.debezium.time.Timestamp": 1_000,
    "org.apache.kafka.connect.data.Timestamp": 1_000,
}


def timestamp_from(raw, column: str, schema_name: str | None = None) -> datetime:
    """Debezium timestamps (ZonedTimestamp strings, Micro/Nano/Milli epoch integers) as UTC datetimes."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        per_second = _INT_TIMESTAMP_UNITS.get(schema_name or "io.debezium.time.MicroTimestamp", 1_000_000)
        seconds, rest = divmod(raw, per_second)
        try:
            return EPOCH + timedelta(seconds=seconds, microseconds=rest * 1_000_000 // per_second)
        except OverflowError:
            raise ValueProblem(f"schema drift: column {column} timestamp {raw} out of range") from None
    if isinstance(raw, str):
        try:
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None:
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=timezone.utc)
            return parsed.astimezone(timezone.utc)
    raise ValueProblem(f"schema drift: column {column} declared timestamp arrived as {raw!r}")


def scalar_from(raw, column: str, kind: str, schema_name: str | None = None):
    """A text, integer or boolean column, checked against the type the mapping declares."""
    if kind == "text":
        if isinstance(raw, str):
            return raw
    elif kind == "integer":
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
    elif kind == "boolean":
        if isinstance(raw, bool):
            return raw
    elif kind == "date":
        return date_from(raw, column, schema_name)
    elif kind in ("timestamp", "timestamptz"):
        return timestamp_from(raw, column, schema_name)
    raise ValueProblem(f"schema drift: column {column} declared {kind} arrived as {type(raw).__name__} {raw!r}")


def timestamp_of_ms(value):
    """An epoch-milliseconds int as the UTC datetime an Avro timestamp-millis decodes to; anything else as is."""
    if isinstance(value, int) and not isinstance(value, bool):
        return EPOCH + timedelta(microseconds=value * 1000)  # fastavro's own arithmetic, to the microsecond
    return value


def epoch_ms(value) -> int:
    """Milliseconds since the epoch of a datetime, or an int taken as already in milliseconds (None is 0)."""
    return int(value.timestamp() * 1000) if isinstance(value, datetime) else int(value or 0)
