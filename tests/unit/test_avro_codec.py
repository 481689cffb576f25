"""streams.avro_codec: single-object and Confluent round trips, exact money, and decode errors."""

from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal

import pytest
from fastavro import schemaless_reader
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.avro_codec import (
    ALERT,
    CANONICAL_EVENT,
    DEAD_LETTER,
    MONEY,
    SINGLE_OBJECT_MARKER,
    AvroDecodeError,
    AvroEncodeError,
    SchemaSet,
    decode,
    encode_confluent,
    encode_single_object,
)

SCHEMAS = SchemaSet.load()
UTC = dt.timezone.utc


def eur(amount: str) -> dict:
    return {"amount": Decimal(amount), "currency": "EUR"}


def invoice_event(**overrides) -> dict:
    event = {
        "idempotency_key": "billing:public.invoices:in_1NaXk2:0/16B3748:771",
        "correlation_id": "3f1c2a9e-7c55-4c1e-9b7e-0d2c9a1e4b10",
        "entity_type": "invoice",
        "entity_id": "in_1NaXk2",
        "system": "billing",
        "source_table": "invoices",
        "op": "create",
        "position": {
            "kind": "stream",
            "lsn": 23803720,
            "tx_id": 771,
            "sequence": '["23803600","23803720"]',
            "cursor": None,
            "order": [23803720, 0],
        },
        "source_ts": dt.datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC),
        "captured_ts": dt.datetime(2024, 5, 1, 12, 0, 0, 456000, tzinfo=UTC),
        "before": None,
        "after": {
            "id": "in_1NaXk2",
            "customer_id": "cus_Q1",
            "subscription_id": "sub_77",
            "erp_order_no": "SO100042",
            "amount_due": eur("1234.50"),
            "amount_paid": eur("0.00"),
            "status": "open",
            "issued_at": dt.datetime(2024, 5, 1, 12, 0, 0, 100000, tzinfo=UTC),
            "updated_at": dt.datetime(2024, 5, 1, 12, 0, 0, 122917, tzinfo=UTC),
        },
        "extra": {"memo": '"net 30"', "tax_rate": '"0.19"'},
        "unavailable": [],
        "repair": False,
    }
    event.update(overrides)
    return event


def dead_letter() -> dict:
    return {
        "topic": "billing.public.invoices",
        "partition": 3,
        "offset": 9_000_000_001,
        "key": b'{"id":"in_1"}\x00\xff',
        "value": b"\xc3\x01not-json\x00\x80\xfe",
        "headers": [{"key": "traceparent", "value": b"00-abc-01"}, {"key": "empty", "value": None}],
        "error": "amount_due: '12.345' has more than 2 decimal places",
        "stage": "normalize",
        "failed_at": dt.datetime(2024, 5, 1, 12, 0, 1, tzinfo=UTC),
        "worker": "worker-0",
        "correlation_id": None,
    }


def alert() -> dict:
    return {
        "rule_id": "invoice_amount_mismatch",
        "severity": "high",
        "entity_type": "invoice",
        "entity_id": "in_1NaXk2",
        "status": "open",
        "occurrence": 2,
        "message": "Billing invoice in_1NaXk2 is 1234.50 EUR but ERP posting AR-9 books 1243.50 EUR.",
        "evidence": [
            {"system": "billing", "table": "invoices", "key": "in_1NaXk2", "field": "amount_due",
             "value": "1234.50", "position": "lsn:23803720"},
            {"system": "erp", "table": "ar_postings", "key": "AR-9", "field": "amount", "value": "1243.50",
             "position": None},
        ],
        "first_seen": dt.datetime(2024, 5, 1, 12, 0, 2, tzinfo=UTC),
        "last_seen": dt.datetime(2024, 5, 1, 13, 0, 2, tzinfo=UTC),
        "deadline": dt.datetime(2024, 5, 2, 12, 0, 2, tzinfo=UTC),
        "correlation_id": "3f1c2a9e-7c55-4c1e-9b7e-0d2c9a1e4b10",
    }


@pytest.mark.parametrize(
    ("name", "record"),
    [(CANONICAL_EVENT, invoice_event()), (DEAD_LETTER, dead_letter()), (ALERT, alert())],
    ids=["event", "dead_letter", "alert"],
)
def test_single_object_round_trip(name, record):
    data = encode_single_object(SCHEMAS, name, record)
    assert data[:2] == SINGLE_OBJECT_MARKER == b"\xc3\x01"
    assert data[2:10] == SCHEMAS.fingerprint(name)
    assert decode(data, SCHEMAS) == (name, record)


def test_fingerprint_is_the_specs_crc64_of_the_canonical_form():
    # The spec's reference: CRC-64-AVRO of "int" is 0x7275d51a3f395c8f, written little-endian.
    from fastavro.schema import fingerprint

    assert bytes.fromhex(fingerprint('"int"', "CRC-64-AVRO")) == (0x7275D51A3F395C8F).to_bytes(8, "little")
    assert len({SCHEMAS.fingerprint(n) for n in SCHEMAS.names()}) == len(SCHEMAS.names())


def test_event_entity_union_follows_entity_type():
    """A sparse before-image must land in its own entity record, not whichever union branch fits first."""
    event = invoice_event(
        entity_type="ar_posting", entity_id="AR-9", system="erp", source_table="ar_postings", op="delete",
        before={"id": "AR-9", "customer_no": "C-1", "amount": eur("-10.00")}, after=None,
    )
    name, back = decode(encode_single_object(SCHEMAS, CANONICAL_EVENT, event), SCHEMAS)
    assert back["before"] == {"id": "AR-9", "invoice_ref": None, "order_no": None, "customer_no": "C-1",
                              "amount": eur("-10.00"), "updated_at": None}
    # ...and on the wire it is the ArPosting branch (index 9 of [null, 9 entities])
    raw = schemaless_reader(io.BytesIO(encode_single_object(SCHEMAS, CANONICAL_EVENT, event)[10:]),
                            SCHEMAS.parsed(CANONICAL_EVENT), None, return_record_name=True)
    assert raw["before"][0] == "trueup.entities.ArPosting"


def test_defaults_fill_omitted_optional_fields():
    event = invoice_event()
    for key in ("before", "extra", "unavailable", "repair"):
        del event[key]
    _, back = decode(encode_single_object(SCHEMAS, CANONICAL_EVENT, event), SCHEMAS)
    assert (back["before"], back["extra"], back["unavailable"], back["repair"]) == (None, {}, [], False)


def test_confluent_round_trip_with_a_lookup():
    registry = {7: json.loads(SCHEMAS.schema_json(ALERT)), 8: json.loads(SCHEMAS.schema_json(CANONICAL_EVENT))}
    data = encode_confluent(7, SCHEMAS.parsed(ALERT), alert())
    assert data[0] == 0 and int.from_bytes(data[1:5], "big") == 7
    assert decode(data, SCHEMAS, registry_lookup=registry.__getitem__) == (ALERT, alert())
    data = encode_confluent(8, SCHEMAS.parsed(CANONICAL_EVENT), invoice_event())
    assert decode(data, SCHEMAS, registry_lookup=registry.get) == (CANONICAL_EVENT, invoice_event())
    # a raw (unparsed) schema dict is accepted too
    assert encode_confluent(7, registry[7], alert()) == encode_confluent(7, SCHEMAS.parsed(ALERT), alert())


def test_confluent_writer_schema_resolves_into_the_current_reader():
    """An older producer's schema (without a field that has a default) still decodes into the current one."""
    older = json.loads(SCHEMAS.schema_json(ALERT))
    older["fields"] = [f for f in older["fields"] if f["name"] != "deadline"]
    record = {k: v for k, v in alert().items() if k != "deadline"}
    data = encode_confluent(41, older, record)
    name, back = decode(data, SCHEMAS, registry_lookup={41: older}.__getitem__)
    assert name == ALERT and back == {**record, "deadline": None}


def test_both_formats_in_one_stream():
    registry = {1: json.loads(SCHEMAS.schema_json(DEAD_LETTER))}
    messages = [encode_single_object(SCHEMAS, DEAD_LETTER, dead_letter()),
                encode_confluent(1, SCHEMAS.parsed(DEAD_LETTER), dead_letter())]
    assert [decode(m, SCHEMAS, registry.__getitem__) for m in messages] == [(DEAD_LETTER, dead_letter())] * 2


def test_reader_name_is_enforced():
    data = encode_single_object(SCHEMAS, ALERT, alert())
    assert decode(data, SCHEMAS, reader=ALERT)[0] == ALERT
    with pytest.raises(AvroDecodeError):
        decode(data, SCHEMAS, reader=DEAD_LETTER)
    with pytest.raises(AvroDecodeError, match="no current reader schema"):
        decode(data, SCHEMAS, reader="trueup.Nope")


# --- exact money ----------------------------------------------------------------------------------------------

MAX = 10**16


@st.composite
def exact_amounts(draw):
    places = draw(st.integers(min_value=0, max_value=2))
    unscaled = draw(st.integers(min_value=-(MAX * 10**places) + 1, max_value=MAX * 10**places - 1))
    return Decimal(unscaled).scaleb(-places)


@st.composite
def over_precise_amounts(draw):
    places = draw(st.integers(min_value=3, max_value=8))
    unscaled = draw(st.integers(min_value=-(10**19), max_value=10**19)) * 10 + draw(st.integers(1, 9))
    return Decimal(unscaled).scaleb(-places)  # the last decimal place is never 0


@settings(max_examples=250, deadline=None)
@given(amount=exact_amounts())
def test_money_round_trips_exactly(amount):
    name, back = decode(encode_single_object(SCHEMAS, MONEY, {"amount": amount, "currency": "EUR"}), SCHEMAS)
    assert back["amount"] == amount and back["amount"].as_tuple().exponent == -2
    event = invoice_event(after={**invoice_event()["after"], "amount_paid": {"amount": amount, "currency": "USD"}})
    _, back = decode(encode_single_object(SCHEMAS, CANONICAL_EVENT, event), SCHEMAS)
    assert back["after"]["amount_paid"]["amount"] == amount


@settings(max_examples=200, deadline=None)
@given(amount=over_precise_amounts())
def test_money_with_more_than_two_places_is_refused_not_rounded(amount):
    with pytest.raises(AvroEncodeError, match="more than 2 decimal places"):
        encode_single_object(SCHEMAS, MONEY, {"amount": amount, "currency": "EUR"})
    event = invoice_event(after={**invoice_event()["after"], "amount_due": {"amount": amount, "currency": "EUR"}})
    with pytest.raises(AvroEncodeError, match=r"after\.amount_due\.amount"):
        encode_single_object(SCHEMAS, CANONICAL_EVENT, event)
    with pytest.raises(AvroEncodeError):
        encode_confluent(3, SCHEMAS.parsed(MONEY), {"amount": amount, "currency": "EUR"})


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        (1.5, "must be a Decimal, got float"),
        (150, "must be a Decimal, got int"),
        ("1.50", "must be a Decimal, got str"),
        (Decimal("NaN"), "not a finite amount"),
        (Decimal("Infinity"), "not a finite amount"),
        (Decimal("1E+16"), r"does not fit decimal\(18,2\)"),
        (Decimal("-10000000000000000.00"), r"does not fit decimal\(18,2\)"),
        (Decimal("0.001"), "more than 2 decimal places"),
    ],
)
def test_bad_money_is_refused_clearly(amount, message):
    with pytest.raises(AvroEncodeError, match=message):
        encode_single_object(SCHEMAS, MONEY, {"amount": amount, "currency": "EUR"})


def test_money_at_the_edges():
    for text in ("9999999999999999.99", "-9999999999999999.99", "0", "-0.01", "1E+2", "1.500", "2.000000"):
        amount = Decimal(text)
        _, back = decode(encode_single_object(SCHEMAS, MONEY, {"amount": amount, "currency": "EUR"}), SCHEMAS)
        assert back["amount"] == amount


# --- encode errors --------------------------------------------------------------------------------------------


def test_encode_errors_are_the_codecs_own():
    with pytest.raises(AvroEncodeError, match="no schema named"):
        encode_single_object(SCHEMAS, "trueup.Nope", {})
    event = invoice_event()
    del event["entity_id"]
    with pytest.raises(AvroEncodeError, match="entity_id"):
        encode_single_object(SCHEMAS, CANONICAL_EVENT, event)
    with pytest.raises(AvroEncodeError, match="amout"):
        encode_single_object(SCHEMAS, CANONICAL_EVENT,
                             invoice_event(after={"id": "in_1", "amout": eur("1.00")}))
    with pytest.raises(AvroEncodeError):
        encode_single_object(SCHEMAS, ALERT, {**alert(), "severity": "catastrophic"})
    with pytest.raises(AvroEncodeError):
        encode_single_object(SCHEMAS, DEAD_LETTER, {**dead_letter(), "partition": "three"})
    with pytest.raises(AvroEncodeError, match="not a valid Avro schema"):
        encode_confluent(1, {"type": "nonsense"}, {})
    with pytest.raises(AvroEncodeError, match="4-byte"):
        encode_confluent(2**32, SCHEMAS.parsed(ALERT), alert())


# --- decode errors --------------------------------------------------------------------------------------------

GOOD = encode_single_object(SCHEMAS, CANONICAL_EVENT, invoice_event())
GOOD_CONFLUENT = encode_confluent(5, SCHEMAS.parsed(ALERT), alert())
LOOKUP = {5: json.loads(SCHEMAS.schema_json(ALERT))}.__getitem__


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty message"),
        (b"{", "unknown encoding marker 7b"),
        (b'{"id": "in_1"}', "unknown encoding marker"),
        (b"\xc3\x02" + GOOD[2:], "unknown encoding marker c302"),
        (b"\xc3", "unknown encoding marker"),
        (b"\xc3\x01\x00\x01", "truncated single-object header"),
        (b"\xc3\x01" + bytes(8) + GOOD[10:], "unknown schema fingerprint 0000000000000000"),
        (GOOD[:10], "undecodable body"),
        (GOOD[:-7], "undecodable body"),
        (GOOD[:40], "undecodable body"),
        (GOOD + b"\x00", "1 unexpected bytes after the record"),
        (b"\x00\x00\x00", "truncated Confluent header"),
        (b"\x00\x00\x00\x03\x09garbage\xff\xfe", "schema id 777: registry lookup failed: KeyError"),
        (GOOD_CONFLUENT[:-2], "undecodable body"),
        (GOOD_CONFLUENT[:5] + b"\xff" * 12, "undecodable body"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_decode_errors_are_avro_decode_errors(data, message):
    with pytest.raises(AvroDecodeError, match=message):
        decode(data, SCHEMAS, registry_lookup=LOOKUP)


def test_confluent_without_a_registry_or_with_a_bad_schema():
    with pytest.raises(AvroDecodeError, match="no schema registry configured"):
        decode(GOOD_CONFLUENT, SCHEMAS)
    with pytest.raises(AvroDecodeError, match="not a valid Avro schema"):
        decode(GOOD_CONFLUENT, SCHEMAS, registry_lookup=lambda i: {"type": "nonsense"})
    with pytest.raises(AvroDecodeError, match="has no current reader schema"):
        decode(GOOD_CONFLUENT, SCHEMAS, registry_lookup=lambda i: {"type": "record", "name": "other.X",
                                                                    "fields": []})

    def failing(schema_id):
        raise ConnectionError("registry down")

    with pytest.raises(AvroDecodeError, match="registry down") as info:
        decode(GOOD_CONFLUENT, SCHEMAS, registry_lookup=failing)
    assert isinstance(info.value.__cause__, ConnectionError)


def test_decode_refuses_non_bytes():
    with pytest.raises(AvroDecodeError, match="expected bytes"):
        decode("c301", SCHEMAS)  # type: ignore[arg-type]
    with pytest.raises(AvroDecodeError, match="expected bytes"):
        decode(None, SCHEMAS)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=64))
def test_decode_never_raises_anything_else_on_garbage(data):
    for blob in (data, b"\xc3\x01" + GOOD[2:10] + data, b"\x00\x00\x00\x00\x05" + data):
        try:
            decode(blob, SCHEMAS, registry_lookup=LOOKUP)
        except AvroDecodeError:
            pass
