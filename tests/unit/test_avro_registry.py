"""streams.schema_registry against a small real HTTP schema registry (the REST subset the client calls)."""

from __future__ import annotations

import datetime as dt
import json
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

import pytest

from streams.avro_codec import (
    ALERT,
    CANONICAL_EVENT,
    DEAD_LETTER,
    AvroDecodeError,
    AvroEncodeError,
    SchemaSet,
    decode,
    encode_single_object,
)
from streams.schema_registry import RegistryCodec, RegistryError, value_subject

SCHEMAS = SchemaSet.load()
UTC = dt.timezone.utc
TS = dt.datetime(2024, 5, 1, 12, 0, 0, 500000, tzinfo=UTC)


class FakeRegistry(ThreadingHTTPServer):
    """Confluent Schema Registry REST subset: register under a subject, fetch by id; logs every request."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.ids: dict[str, int] = {}
        self.schemas: dict[int, str] = {}
        self.subjects: dict[str, list[int]] = {}
        self.requests: list[tuple[str, str]] = []
        self.unexpected: list[tuple[str, str]] = []
        self.fail_with: int | None = None
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeRegistry

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _reply(self, status: int, body: dict | list) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self, method: str) -> None:
        path = urlsplit(self.path).path
        registry = self.server
        registry.requests.append((method, path))
        if registry.fail_with is not None:
            return self._reply(registry.fail_with, {"error_code": registry.fail_with * 100, "message": "injected"})
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if method == "POST" and len(parts) == 3 and parts[0] == "subjects" and parts[2] == "versions":
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if body.get("schemaType", "AVRO") != "AVRO":
                return self._reply(422, {"error_code": 42201, "message": "only AVRO"})
            text = body["schema"]
            json.loads(text)  # a real registry refuses invalid JSON
            with registry.lock:
                schema_id = registry.ids.setdefault(text, len(registry.ids) + 1)
                registry.schemas[schema_id] = text
                versions = registry.subjects.setdefault(parts[1], [])
                if schema_id not in versions:
                    versions.append(schema_id)
            return self._reply(200, {"id": schema_id})
        if method == "GET" and len(parts) == 3 and parts[:2] == ["schemas", "ids"]:
            text = registry.schemas.get(int(parts[2]))
            if text is None:
                return self._reply(404, {"error_code": 40403, "message": f"Schema {parts[2]} not found"})
            return self._reply(200, {"schema": text})
        if method == "GET" and len(parts) == 4 and parts[:2] == ["associations", "resources"]:
            return self._reply(200, [])  # confluent-kafka's AvroSerializer asks for topic associations: none
        registry.unexpected.append((method, path))
        return self._reply(404, {"error_code": 40401, "message": f"no route {method} {path}"})

    def do_GET(self):
        self._route("GET")

    def do_POST(self):
        self._route("POST")


@pytest.fixture
def registry():
    server = FakeRegistry()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="fake-schema-registry", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert server.unexpected == [], f"client called routes the fake does not implement: {server.unexpected}"


@pytest.fixture
def codec(registry):
    with RegistryCodec(registry.url, SCHEMAS) as c:
        yield c


def alert(**overrides) -> dict:
    record = {
        "rule_id": "payment_without_invoice", "severity": "medium", "entity_type": "payment", "entity_id": "py_9",
        "status": "open", "occurrence": 1, "message": "Payment py_9 references invoice in_404 that billing lacks.",
        "evidence": [{"system": "billing", "table": "payments", "key": "py_9", "field": "invoice_id",
                      "value": "in_404", "position": "lsn:1"}],
        "first_seen": TS, "last_seen": TS, "deadline": None, "correlation_id": "corr-9",
    }
    record.update(overrides)
    return record


def invoice_event() -> dict:
    return {
        "idempotency_key": "k", "correlation_id": "c", "entity_type": "invoice", "entity_id": "in_1",
        "system": "billing", "source_table": "invoices", "op": "update",
        "position": {"kind": "poll", "lsn": None, "tx_id": None, "sequence": None, "cursor": "2024-05-01T12:00:00Z",
                     "order": [1714564800000000, 3]},
        "source_ts": TS, "captured_ts": TS,
        "before": {"id": "in_1", "customer_id": None, "subscription_id": None, "erp_order_no": None,
                   "amount_due": {"amount": Decimal("10.00"), "currency": "EUR"}, "amount_paid": None,
                   "status": "draft", "issued_at": None, "updated_at": None},
        "after": {"id": "in_1", "customer_id": None, "subscription_id": None, "erp_order_no": None,
                  "amount_due": {"amount": Decimal("10.00"), "currency": "EUR"},
                  "amount_paid": {"amount": Decimal("10.00"), "currency": "EUR"}, "status": "paid",
                  "issued_at": TS, "updated_at": None},
        "extra": {}, "unavailable": [], "repair": False,
    }


def test_encode_registers_once_and_round_trips(registry, codec):
    subject = value_subject("trueup.alerts")
    assert subject == "trueup.alerts-value"
    first = codec.encode(subject, ALERT, alert())
    second = codec.encode(subject, ALERT, alert(status="resolved", occurrence=1))
    schema_id = int.from_bytes(first[1:5], "big")
    assert first[0] == 0 and second[1:5] == first[1:5]
    assert registry.subjects == {subject: [schema_id]}
    assert [r for r in registry.requests if r[0] == "POST"] == [("POST", f"/subjects/{subject}/versions")]
    assert json.loads(registry.schemas[schema_id]) == json.loads(SCHEMAS.schema_json(ALERT))

    assert codec.decode(first) == (ALERT, alert())
    assert decode(second, SCHEMAS, registry_lookup=codec.lookup) == (ALERT, alert(status="resolved", occurrence=1))
    assert [r for r in registry.requests if r[0] == "GET"] == [("GET", f"/schemas/ids/{schema_id}")]


def test_the_registered_schema_is_self_contained(registry, codec):
    data = codec.encode(value_subject("trueup.events.invoice"), CANONICAL_EVENT, invoice_event())
    assert codec.decode(data) == (CANONICAL_EVENT, invoice_event())
    schema_id = int.from_bytes(data[1:5], "big")
    fetched = codec.lookup(schema_id)
    assert fetched["name"] == CANONICAL_EVENT
    assert SCHEMAS.parse(fetched)["name"] == CANONICAL_EVENT  # no outside references needed
    text = registry.schemas[schema_id]
    assert text.count('"name":"trueup.Money"') == 1 and '"logicalType":"decimal"' in text


def test_lookup_is_cached_and_fresh_codecs_share_the_registry(registry, codec):
    data = codec.encode("trueup.dlq-value", DEAD_LETTER, {
        "topic": "erp.public.sales_orders", "partition": 1, "offset": 2, "key": b"k", "value": b"v",
        "headers": [], "error": "unknown table", "stage": "normalize", "failed_at": TS,
        "worker": "w1", "correlation_id": None})
    with RegistryCodec(registry.url, SCHEMAS) as other:
        assert other.decode(data)[0] == DEAD_LETTER
        assert other.decode(data)[0] == DEAD_LETTER
        schema_id = int.from_bytes(data[1:5], "big")
        assert registry.requests.count(("GET", f"/schemas/ids/{schema_id}")) == 1


def test_single_object_messages_need_no_registry(registry, codec):
    data = encode_single_object(SCHEMAS, ALERT, alert())
    assert codec.decode(data) == (ALERT, alert())
    assert registry.requests == []


def test_unknown_schema_id_is_a_decode_error_caused_by_the_registry(registry, codec):
    with pytest.raises(AvroDecodeError, match="schema id 4242") as info:
        codec.decode(b"\x00" + (4242).to_bytes(4, "big") + b"garbage")
    assert isinstance(info.value.__cause__, RegistryError)
    with pytest.raises(RegistryError, match="4242"):
        codec.lookup(4242)


def test_registry_failures_and_bad_records(registry, codec):
    registry.fail_with = 409
    with pytest.raises(RegistryError, match="registering trueup.alerts.Alert under subject 'trueup.alerts-value'"):
        codec.encode("trueup.alerts-value", ALERT, alert())
    registry.fail_with = None
    with pytest.raises(AvroEncodeError, match="more than 2 decimal places"):
        codec.encode("e-value", CANONICAL_EVENT, {**invoice_event(), "after": {
            "id": "in_1", "amount_due": {"amount": Decimal("0.125"), "currency": "EUR"}}})
    with pytest.raises(AvroEncodeError, match="no schema named"):
        codec.encode("x-value", "trueup.Nope", {})


def test_unreachable_registry(registry):
    with RegistryCodec("http://127.0.0.1:9", SCHEMAS, conf={"max.retries": 0, "timeout": 2}) as dead:
        with pytest.raises(RegistryError, match="127.0.0.1:9"):
            dead.register("s-value", ALERT)
        with pytest.raises(AvroDecodeError, match="registry lookup failed") as info:
            dead.decode(b"\x00\x00\x00\x00\x01\x00")
        assert isinstance(info.value.__cause__, RegistryError)


def test_interoperates_with_confluent_kafka_avro_serdes(registry, codec):
    """Bytes from confluent-kafka's own AvroSerializer decode here, and ours decode with its AvroDeserializer."""
    pytest.importorskip("confluent_kafka.schema_registry.avro")
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    client = SchemaRegistryClient({"url": registry.url})
    ctx = SerializationContext("trueup.alerts", MessageField.VALUE)
    theirs = AvroSerializer(client, SCHEMAS.schema_json(ALERT))(alert(), ctx)
    assert codec.decode(theirs) == (ALERT, alert())
    ours = codec.encode(value_subject("trueup.alerts"), ALERT, alert())
    assert ours[1:5] == theirs[1:5]  # same subject, same schema text: same id
    assert AvroDeserializer(client)(ours, ctx) == alert()
    client.close()
