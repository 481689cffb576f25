"""streams.debezium_envelope.parse_change: full envelopes and ExtractNewRecordState rows, with and without the
JSON converter's schema wrapper."""

from __future__ import annotations

import json

import pytest

from streams.debezium_envelope import EnvelopeProblem, decode_json, parse_change
from tests.unit.envelopes import envelope, row, unwrapped, with_schema

ACC = ("crm", "accounts")
OPP = ("crm", "opportunities")


def enc(doc) -> bytes:
    return json.dumps(doc).encode()


@pytest.mark.parametrize("op", ["c", "u", "d", "r"])
def test_full_envelope(op):
    doc = envelope(*ACC, op)
    change = parse_change(enc(doc))
    assert change.op == op and not change.unwrapped
    assert change.after == doc["after"] and change.before == doc["before"]
    assert change.source == doc["source"] and change.column_schemas == {}


def test_full_envelope_accepts_str():
    assert parse_change(json.dumps(envelope(*ACC, "c"))).op == "c"


def test_schema_wrapper_yields_column_schemas():
    change = parse_change(enc(with_schema(envelope(*OPP, "c"), *OPP, decimal_mode="precise")))
    assert change.after["id"] == "OPP-0001"
    assert change.column_schemas["close_date"]["name"] == "io.debezium.time.Date"
    assert change.column_schemas["updated_at"]["name"] == "io.debezium.time.ZonedTimestamp"
    assert change.column_schemas["amount"]["name"] == "org.apache.kafka.connect.data.Decimal"
    assert change.column_schemas["amount"]["parameters"]["scale"] == "2"
    assert change.column_schemas["stage"]["type"] == "string"


def test_unwrapped_row_with_metadata():
    data = row(*ACC)
    doc = unwrapped(data, op="c", lsn=36001656, source_ts_ms=1795814155780, seq='["1","2"]', source_txId=882,
                    table="accounts", deleted=False)
    change = parse_change(enc(doc))
    assert change.unwrapped and change.op == "c" and change.before is None
    assert change.after == data
    assert change.source["lsn"] == 36001656 and change.source["ts_ms"] == 1795814155780
    assert change.source["sequence"] == '["1","2"]' and change.source["txId"] == 882
    assert change.source["table"] == "accounts"


def test_unwrapped_row_with_the_schema_wrapper():
    doc = with_schema(unwrapped(row(*OPP), op="u", lsn=1), *OPP)
    change = parse_change(enc(doc))
    assert change.unwrapped and change.op == "u"
    assert change.column_schemas["close_date"]["name"] == "io.debezium.time.Date"
    assert "__op" not in change.after


def test_bare_row_is_an_update_without_position():
    change = parse_change(enc(row(*ACC)))
    assert change.unwrapped and change.op == "u" and change.after == row(*ACC)
    assert change.source["lsn"] is None and change.source["ts_ms"] is None


@pytest.mark.parametrize("deleted", ["true", "TRUE", True])
def test_unwrapped_delete(deleted):
    doc = {**row(*ACC), "__deleted": deleted}
    change = parse_change(enc(doc))
    assert change.op == "d" and change.after is None and change.before == row(*ACC)


@pytest.mark.parametrize("value,words", [
    (b"\x00\xff\xfe", "not JSON"),
    (b'{"op": "c", "source": {}', "not JSON"),
    (b"[1, 2]", "got list"),
    (b"42", "got int"),
    (b"{}", "neither a Debezium envelope nor a row"),
    (b'{"__op": "c"}', "neither a Debezium envelope nor a row"),
    (enc({**envelope(*ACC, "c"), "op": "t"}), "unsupported op 't'"),
    (enc({**envelope(*ACC, "c"), "op": None}), "unsupported op"),
    (enc({**envelope(*ACC, "c"), "source": None}), "source"),
    (enc({**envelope(*ACC, "u"), "before": "x"}), "before is not an object"),
    (enc({**envelope(*ACC, "r"), "after": None}), "without an after image"),
    (enc({**envelope(*ACC, "d"), "before": None}), "delete without a before image"),
    (enc(unwrapped(row(*ACC), op="x")), "unsupported __op"),
    (enc({"schema": {}, "payload": [1]}), "got list"),
])
def test_not_a_change(value, words):
    with pytest.raises(EnvelopeProblem, match="malformed") as err:
        parse_change(value)
    assert words in str(err.value)


def test_deeply_nested_json_is_malformed_not_a_crash():
    with pytest.raises(EnvelopeProblem):
        decode_json(b"[" * 100000 + b"]" * 100000)
