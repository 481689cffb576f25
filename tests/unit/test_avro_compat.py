"""Schema evolution: current schemas read every released version; incompatible changes are caught."""

from __future__ import annotations

import datetime as dt
import io
import json
import random
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from fastavro import schemaless_writer
from fastavro.utils import generate_many

from streams.avro_codec import (
    ALERT,
    AVRO_DIR,
    CANONICAL_EVENT,
    DEAD_LETTER,
    SINGLE_OBJECT_MARKER,
    SchemaSet,
    check_backward_compatible,
    decode,
    encode_single_object,
    released_versions,
)

SCHEMAS = SchemaSet.load()
INCOMPATIBLE = Path(__file__).resolve().parents[1] / "fixtures" / "avro" / "incompatible"
RELEASED = [(version, name) for version, schemas in SCHEMAS.released.items() for name in schemas.names()]
UTC = dt.timezone.utc
TS = dt.datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC)


def money(amount: str, currency: str = "EUR") -> dict:
    return {"amount": Decimal(amount), "currency": currency}


ENTITIES = {
    "account": {"id": "ACC-000123", "billing_customer_id": "cus_Q1", "erp_customer_no": "C-10001",
                "parent_account_id": None, "name": "Acme GmbH", "domain": "acme.example", "country": "DE",
                "tax_id": "DE123456789", "status": "active", "updated_at": TS},
    "opportunity": {"id": "OPP-77", "account_id": "ACC-000123", "stage": "closed_won", "amount": money("12000.00"),
                    "close_date": dt.date(2024, 6, 30), "updated_at": TS},
    "billing_customer": {"id": "cus_Q1", "crm_account_id": "ACC-000123", "name": "Acme GmbH",
                         "email": "ap@acme.example", "currency": "EUR", "delinquent": False, "updated_at": TS},
    "subscription": {"id": "sub_77", "customer_id": "cus_Q1", "crm_opportunity_id": "OPP-77", "quantity": 12,
                     "unit_amount": money("1000.00"), "status": "active", "updated_at": TS},
    "invoice": {"id": "in_1", "customer_id": "cus_Q1", "subscription_id": "sub_77", "erp_order_no": "SO100042",
                "amount_due": money("12000.00"), "amount_paid": money("11999.99"), "status": "open",
                "updated_at": TS},
    "payment": {"id": "py_9", "invoice_id": "in_1", "customer_id": "cus_Q1", "amount": money("11999.99"),
                "kind": "card", "status": "succeeded", "updated_at": TS},
    "erp_customer": {"customer_no": "C-10001", "crm_account_id": "ACC-000123", "name": "ACME GMBH",
                     "tax_id": "DE123456789", "country": "DE", "credit_hold": True, "updated_at": TS},
    "sales_order": {"order_no": "SO100042", "customer_no": "C-10001", "crm_opportunity_id": "OPP-77",
                    "billing_subscription_id": "sub_77", "total_amount": money("12000.00"), "status": "released",
                    "updated_at": TS},
    "ar_posting": {"id": "AR-9", "invoice_ref": "in_1", "order_no": "SO100042", "customer_no": "C-10001",
                   "amount": money("-0.01"), "updated_at": TS},
}


def event(entity_type: str, op: str = "update") -> dict:
    row = ENTITIES[entity_type]
    entity_id = row.get("id") or row.get("customer_no") or row.get("order_no")
    return {
        "idempotency_key": f"{entity_type}:{entity_id}:42", "correlation_id": "corr-1", "entity_type": entity_type,
        "entity_id": entity_id, "system": "crm", "source_table": entity_type + "s", "op": op,
        "position": {"kind": "snapshot", "lsn": None, "tx_id": None, "sequence": None, "cursor": None, "order": [0]},
        "source_ts": TS, "captured_ts": TS, "before": row, "after": None if op == "delete" else row,
        "extra": {}, "unavailable": ["email"], "repair": True,
    }


REALISTIC = [(CANONICAL_EVENT, event(t, op)) for t in ENTITIES for op in ("update", "delete")] + [
    (DEAD_LETTER, {"topic": "crm.public.accounts", "partition": 0, "offset": 1, "key": None, "value": b"\x00{",
                   "headers": [], "error": "not JSON", "stage": "decode", "failed_at": TS, "worker": None,
                   "correlation_id": None}),
    (ALERT, {"rule_id": "account_link_missing", "severity": "critical", "entity_type": "account",
             "entity_id": "ACC-000123", "status": "resolved", "occurrence": 1, "message": "Fixed.", "evidence": [],
             "first_seen": TS, "last_seen": TS, "deadline": None, "correlation_id": "corr-1"}),
]


def _common(a: dict, b: dict) -> dict:
    """a's fields that b has too, at every depth: fields added since a release decode to their defaults."""
    return {k: _common(v, b[k]) if isinstance(v, dict) and isinstance(b[k], dict) else v
            for k, v in a.items() if k in b}


@pytest.mark.parametrize(("version", "name"), RELEASED, ids=[f"{v}:{n}" for v, n in RELEASED])
def test_current_schemas_read_every_released_schema(version, name):
    released = SCHEMAS.released[version]
    assert name in SCHEMAS, f"{name} was released in {version} and must stay readable"
    assert check_backward_compatible(released.parsed(name), SCHEMAS.parsed(name), samples=50) == []


@pytest.mark.parametrize("version", sorted(SCHEMAS.released))
def test_records_written_by_a_release_decode_into_the_current_schemas(version):
    released = SCHEMAS.released[version]
    for name, record in REALISTIC:
        data = encode_single_object(released, name, record)
        assert data[2:10] == released.fingerprint(name)
        decoded_name, back = decode(data, SCHEMAS)
        assert decoded_name == name
        assert _common(back, record) == _common(record, back)

    state = random.getstate()
    random.seed(1234)
    try:
        for name in released.names():
            writer = released.parsed(name)
            for sample in generate_many(writer, 20):
                body = io.BytesIO()
                schemaless_writer(body, writer, sample)
                data = SINGLE_OBJECT_MARKER + released.fingerprint(name) + body.getvalue()
                assert decode(data, SCHEMAS)[0] == name
    finally:
        random.setstate(state)


def test_a_compatible_change_reads_old_messages_through_the_released_fingerprint(tmp_path):
    """Evolve Alert (new field with a default) in a copy of avro/: v1-written alerts decode with the default."""
    avro = tmp_path / "avro"
    shutil.copytree(AVRO_DIR, avro)
    path = avro / f"{ALERT}.avsc"
    schema = json.loads(path.read_text())
    schema["fields"].append({"name": "runbook", "type": ["null", "string"], "default": None})
    path.write_text(json.dumps(schema))
    evolved = SchemaSet.load(avro)
    v1 = evolved.released["v1"]
    assert evolved.fingerprint(ALERT) != v1.fingerprint(ALERT)
    assert check_backward_compatible(v1.parsed(ALERT), evolved.parsed(ALERT)) == []

    old = dict(REALISTIC[-1][1])
    name, back = decode(encode_single_object(v1, ALERT, old), evolved)
    assert (name, back) == (ALERT, {**old, "runbook": None})
    new = {**old, "runbook": "https://runbooks.example/account_link_missing"}
    assert decode(encode_single_object(evolved, ALERT, new), evolved) == (ALERT, new)
    # both writer schemas are known by fingerprint: the current one and the released one
    assert evolved.by_fingerprint(evolved.fingerprint(ALERT)) is evolved.parsed(ALERT)
    assert evolved.by_fingerprint(v1.fingerprint(ALERT)) is v1.parsed(ALERT)


INCOMPATIBLE_FIXTURES = sorted(INCOMPATIBLE.glob("*.avsc"))


def test_there_are_incompatible_fixtures():
    assert len(INCOMPATIBLE_FIXTURES) >= 5


@pytest.mark.parametrize("path", INCOMPATIBLE_FIXTURES, ids=[p.stem for p in INCOMPATIBLE_FIXTURES])
def test_incompatible_changes_are_reported(path):
    candidate = SCHEMAS.parse(json.loads(path.read_text()))
    name = candidate["name"]
    for version in released_versions(AVRO_DIR):
        problems = check_backward_compatible(SCHEMAS.released[version.name].parsed(name), candidate)
        assert problems, f"{path.name} should be incompatible with {version.name}"
        assert all(isinstance(p, str) and p for p in problems)


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("alert_added_required_field", "Alert.owner: reader field has no default"),
        ("canonical_event_entity_id_long", "entity_id: writer type string cannot be read as long"),
        ("canonical_event_union_branch_removed", "before<trueup.entities.ArPosting>: writer type"),
        ("dead_letter_offset_narrowed", "offset: writer type long cannot be read as int"),
        ("money_scale_changed", "decimal scale changed from 2 to 4"),
        ("position_kind_symbol_removed", "enum symbols ['repair'] are not in the reader"),
    ],
)
def test_problems_say_where_and_why(fixture, expected):
    candidate = SCHEMAS.parse(json.loads((INCOMPATIBLE / f"{fixture}.avsc").read_text()))
    problems = check_backward_compatible(SCHEMAS.released["v1"].parsed(candidate["name"]), candidate)
    assert any(expected in p for p in problems), problems


def test_sample_round_trips_catch_what_the_writer_cannot_resolve():
    """The sample half of the check alone: reading generated Alerts with a reader that needs a new field fails."""
    candidate = SCHEMAS.parse(json.loads((INCOMPATIBLE / "alert_added_required_field.avsc").read_text()))
    problems = check_backward_compatible(SCHEMAS.parsed(ALERT), candidate, samples=5)
    assert any(p.startswith("sample 0: SchemaResolutionError") for p in problems), problems


def test_compatibility_check_is_deterministic_and_leaves_random_alone():
    random.seed(99)
    expected = random.random()
    random.seed(99)
    first = check_backward_compatible(SCHEMAS.parsed(CANONICAL_EVENT), SCHEMAS.parsed(CANONICAL_EVENT))
    assert random.random() == expected
    assert first == [] == check_backward_compatible(SCHEMAS.parsed(CANONICAL_EVENT), SCHEMAS.parsed(CANONICAL_EVENT))


def test_unparseable_candidate_is_a_problem_not_a_crash():
    assert check_backward_compatible(SCHEMAS.parsed(ALERT), {"type": "record", "name": "x", "fields": [{}]})
