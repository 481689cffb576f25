"""avro/: every contract parses, is named after its file, and has exactly the fields DESIGN.md fixes."""

from __future__ import annotations

import json

import pytest

from streams.avro_codec import (
    AVRO_DIR,
    CANONICAL_EVENT,
    ENTITY_RECORDS,
    AvroSchemaError,
    SchemaSet,
    released_versions,
)
from streams.mapping import ENTITY_TYPES

SCHEMAS = SchemaSet.load(AVRO_DIR)

ENTITY_FIELDS = {
    "Account": ["id", "billing_customer_id", "erp_customer_no", "parent_account_id", "name", "domain", "country",
                "tax_id", "status", "updated_at"],
    "Opportunity": ["id", "account_id", "stage", "amount", "close_date", "updated_at"],
    "BillingCustomer": ["id", "crm_account_id", "name", "email", "currency", "delinquent", "updated_at"],
    "Subscription": ["id", "customer_id", "crm_opportunity_id", "quantity", "unit_amount", "status", "updated_at"],
    "Invoice": ["id", "customer_id", "subscription_id", "erp_order_no", "amount_due", "amount_paid", "status",
                "issued_at", "updated_at"],
    "Payment": ["id", "invoice_id", "customer_id", "amount", "kind", "status", "updated_at"],
    "ErpCustomer": ["customer_no", "crm_account_id", "name", "tax_id", "country", "credit_hold", "updated_at"],
    "SalesOrder": ["order_no", "customer_no", "crm_opportunity_id", "billing_subscription_id", "total_amount",
                   "status", "updated_at"],
    "ArPosting": ["id", "invoice_ref", "order_no", "customer_no", "amount", "updated_at"],
}
ID_FIELD = {"ErpCustomer": "customer_no", "SalesOrder": "order_no"}
MONEY_FIELDS = {"amount", "unit_amount", "amount_due", "amount_paid", "total_amount"}

TOP_LEVEL = {
    "trueup.Money", "trueup.Position", "trueup.PositionKind", "trueup.EntityType", "trueup.Op", "trueup.Header",
    "trueup.DeadLetter", "trueup.Severity", "trueup.AlertStatus", "trueup.alerts.Evidence", "trueup.alerts.Alert",
    CANONICAL_EVENT, *(f"trueup.entities.{n}" for n in ENTITY_FIELDS),
    "trueup.projections.Projection", "trueup.projections.ProjectedField", "trueup.projections.Alternative",
}


def _raw(name: str) -> dict:
    return json.loads((AVRO_DIR / f"{name}.avsc").read_text())


def _fields(name: str) -> dict[str, dict]:
    return {f["name"]: f for f in _raw(name)["fields"]}


def test_every_named_type_has_its_own_file_and_parses():
    assert set(SCHEMAS.names()) == TOP_LEVEL
    assert not (AVRO_DIR / "__init__.py").exists(), "avro/ holds schema files only"
    for name in SCHEMAS.names():
        raw = _raw(name)
        assert f"{raw['namespace']}.{raw['name']}" == name
        assert raw.get("doc"), f"{name} needs a doc"
        parsed = SCHEMAS.parsed(name)
        assert parsed["name"] == name
        assert len(SCHEMAS.fingerprint(name)) == 8
        assert SCHEMAS.by_fingerprint(SCHEMAS.fingerprint(name)) is parsed


def test_named_references_resolve_in_self_contained_json():
    for name in SCHEMAS.names():
        doc = json.loads(SCHEMAS.schema_json(name))
        assert doc["name"] == name
        # every named type is defined exactly once in the self-contained form, whatever references it
        definitions: list[str] = []

        def walk(node):
            if isinstance(node, dict):
                if node.get("type") in ("record", "enum", "fixed"):
                    definitions.append(node["name"])
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(doc)
        assert len(definitions) == len(set(definitions)), name


@pytest.mark.parametrize("record", sorted(ENTITY_FIELDS))
def test_entity_records_have_exactly_the_listed_fields(record):
    name = f"trueup.entities.{record}"
    raw = _raw(name)
    assert raw["namespace"] == "trueup.entities" and raw["doc"]
    assert [f["name"] for f in raw["fields"]] == ENTITY_FIELDS[record]
    id_field = ID_FIELD.get(record, "id")
    for field in raw["fields"]:
        if field["name"] == id_field:
            assert field["type"] == "string" and "default" not in field
            continue
        assert field["type"][0] == "null" and len(field["type"]) == 2 and field["default"] is None, field
        branch = field["type"][1]
        if field["name"] in MONEY_FIELDS:
            assert branch == "trueup.Money"
        elif field["name"] in ("updated_at", "issued_at"):
            assert branch == {"type": "long", "logicalType": "timestamp-micros"}
        elif field["name"] == "close_date":
            assert branch == {"type": "int", "logicalType": "date"}
        elif field["name"] in ("delinquent", "credit_hold"):
            assert branch == "boolean"
        elif field["name"] == "quantity":
            assert branch == "long"
        else:
            assert branch == "string", field


def test_money_is_an_exact_decimal_with_currency():
    fields = _fields("trueup.Money")
    assert fields["amount"]["type"] == {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 2}
    assert fields["currency"]["type"] == "string"


def test_canonical_event_contract():
    fields = _fields(CANONICAL_EVENT)
    assert list(fields) == [
        "idempotency_key", "correlation_id", "entity_type", "entity_id", "system", "source_table", "op",
        "position", "source_ts", "captured_ts", "before", "after", "extra", "unavailable", "repair",
    ]
    assert tuple(_raw("trueup.EntityType")["symbols"]) == ENTITY_TYPES
    assert set(ENTITY_RECORDS) == set(ENTITY_TYPES)
    assert _raw("trueup.Op")["symbols"] == ["snapshot", "create", "update", "delete"]
    assert fields["entity_type"]["type"] == "trueup.EntityType"
    assert fields["position"]["type"] == "trueup.Position"
    for side in ("before", "after"):
        assert fields[side]["type"] == ["null", *ENTITY_RECORDS.values()]
        assert fields[side]["default"] is None
    for ts in ("source_ts", "captured_ts"):
        assert fields[ts]["type"] == {"type": "long", "logicalType": "timestamp-millis"}
    assert fields["extra"] == {**fields["extra"], "type": {"type": "map", "values": "string"}, "default": {}}
    assert fields["unavailable"]["type"] == {"type": "array", "items": "string"}
    assert fields["unavailable"]["default"] == []
    assert fields["repair"]["type"] == "boolean" and fields["repair"]["default"] is False


def test_position_contract():
    fields = _fields("trueup.Position")
    assert list(fields) == ["kind", "lsn", "tx_id", "sequence", "cursor", "order"]
    assert _raw("trueup.PositionKind")["symbols"] == ["snapshot", "stream", "poll", "repair"]
    for name in ("lsn", "tx_id", "sequence", "cursor"):
        assert fields[name]["default"] is None and fields[name]["type"][0] == "null"
    assert fields["order"]["type"] == {"type": "array", "items": "long"}


def test_dead_letter_contract():
    fields = _fields("trueup.DeadLetter")
    assert list(fields) == ["topic", "partition", "offset", "key", "value", "headers", "error", "stage",
                            "failed_at", "worker", "correlation_id"]
    assert fields["key"]["type"] == ["null", "bytes"] and fields["value"]["type"] == ["null", "bytes"]
    assert fields["headers"]["type"] == {"type": "array", "items": "trueup.Header"}
    assert [f["name"] for f in _raw("trueup.Header")["fields"]] == ["key", "value"]


def test_alert_contract():
    fields = _fields("trueup.alerts.Alert")
    assert list(fields) == ["rule_id", "severity", "entity_type", "entity_id", "status", "occurrence", "message",
                            "evidence", "first_seen", "last_seen", "deadline", "correlation_id"]
    assert _raw("trueup.Severity")["symbols"] == ["low", "medium", "high", "critical"]
    assert _raw("trueup.AlertStatus")["symbols"] == ["open", "resolved"]
    assert fields["evidence"]["type"] == {"type": "array", "items": "trueup.alerts.Evidence"}
    assert [f["name"] for f in _raw("trueup.alerts.Evidence")["fields"]] == [
        "system", "table", "key", "field", "value", "position"]
    assert fields["deadline"]["type"] == ["null", {"type": "long", "logicalType": "timestamp-millis"}]
    assert fields["deadline"]["default"] is None


def test_released_v1_is_frozen_and_complete():
    versions = released_versions(AVRO_DIR)
    assert versions and versions[0].name == "v1"
    assert set(SCHEMAS.released) == {v.name for v in versions}
    v1 = SCHEMAS.released["v1"]
    assert set(v1.names()) == TOP_LEVEL
    assert not v1.released, "released versions do not nest"


def test_bad_schema_directory_is_reported(tmp_path):
    with pytest.raises(AvroSchemaError, match="not found"):
        SchemaSet.load(tmp_path / "missing")
    (tmp_path / "x.Wrong.avsc").write_text(json.dumps(
        {"type": "record", "name": "Right", "namespace": "x", "doc": "d", "fields": []}))
    with pytest.raises(AvroSchemaError, match="must be named x.Right.avsc"):
        SchemaSet.load(tmp_path)
    (tmp_path / "x.Wrong.avsc").unlink()
    (tmp_path / "x.Ref.avsc").write_text(json.dumps(
        {"type": "record", "name": "Ref", "namespace": "x", "doc": "d", "fields": [{"name": "a", "type": "x.Nope"}]}))
    with pytest.raises(AvroSchemaError, match="x.Nope"):
        SchemaSet.load(tmp_path)
