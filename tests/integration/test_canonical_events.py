"""Rows written in the sources come out as canonical Avro events; bad raw input goes to the dead-letter topic."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import psycopg
import pytest
from confluent_kafka import Producer

from state.topic_end import read_to_end
from tests.canonical import dead_letters, envelope, events, metric, wait_until

pytestmark = pytest.mark.integration


def _by_id(items, entity_id):
    return [e for e in items if e["entity_id"] == entity_id]


def test_rows_in_three_sources_become_canonical_events(stack, stack_status):
    bootstrap = stack_status["kafka"]["bootstrap"]
    n = uuid.uuid4().hex[:8]
    acc, inv, so = f"ACC-CE{n}", f"in_ce{n}", f"SO9{int(n, 16) % 10**7:07d}"
    dsn = stack_status["postgres"]
    with psycopg.connect(dsn["crm"], autocommit=True) as conn:
        conn.execute("INSERT INTO accounts (id, name, domain, country, status) VALUES (%s, 'Canon BV', "
                     "'canon.example', 'NL', 'active')", (acc,))
    with psycopg.connect(dsn["billing"], autocommit=True) as conn:
        conn.execute("INSERT INTO invoices (id, customer_id, amount_due, currency, status) "
                     "VALUES (%s, 'cus_snap01', 1234.56, 'EUR', 'open')", (inv,))
        conn.execute("UPDATE invoices SET amount_paid = 1234.56, status = 'paid' WHERE id = %s", (inv,))
        oracle = conn.execute("SELECT amount_due::text, amount_paid::text, currency, status FROM invoices "
                              "WHERE id = %s", (inv,)).fetchone()
    with psycopg.connect(dsn["erp"], autocommit=True) as conn:
        conn.execute("INSERT INTO sales_orders (order_no, customer_no, total_amount, currency, status) "
                     "VALUES (%s, 'C900001', 99.90, 'USD', 'billed')", (so,))

    invoices = wait_until(lambda: _by_id(events(bootstrap, "invoice"), inv), lambda es: len(es) >= 2,
                          what=f"events for {inv}")
    created, updated = invoices[0], invoices[-1]
    assert created["op"] == "create" and updated["op"] == "update"
    after = updated["after"]
    assert isinstance(after["amount_due"]["amount"], Decimal)
    assert str(after["amount_due"]["amount"]) == oracle[0]
    assert str(after["amount_paid"]["amount"]) == oracle[1]
    assert after["amount_due"]["currency"] == oracle[2] and after["status"] == oracle[3]
    assert updated["before"]["status"] == "open"
    assert updated["entity_type"] == "invoice" and updated["system"] == "billing"
    assert updated["_key"] == inv
    assert updated["_headers"]["correlation_id"] == updated["correlation_id"]
    assert updated["position"]["kind"] == "stream" and updated["position"]["lsn"] > 0
    assert created["idempotency_key"] != updated["idempotency_key"]
    assert "created_at" in updated["extra"]  # unmapped columns ride along

    account = wait_until(lambda: _by_id(events(bootstrap, "account"), acc), bool, what=acc)[0]
    assert account["after"]["country"] == "NL" and account["after"]["domain"] == "canon.example"
    assert account["after"]["updated_at"].tzinfo is not None
    order = wait_until(lambda: _by_id(events(bootstrap, "sales_order"), so), bool, what=so)[0]
    assert order["after"]["total_amount"] == {"amount": Decimal("99.90"), "currency": "USD"}


def test_bad_raw_input_is_dead_lettered_while_valid_events_flow_on(stack, stack_status):
    bootstrap = stack_status["kafka"]["bootstrap"]
    n = uuid.uuid4().hex[:8]
    producer = Producer({"bootstrap.servers": bootstrap})
    bad = {
        "garbage": ("crm.public.accounts", b'{"id":"ACC-X"}', b"\x00\xff\xfe garbage " + n.encode()),
        "truncated": ("erp.public.sales_orders", b'{"order_no":"SO1"}',
                      envelope("sales_orders", "erp", "c", {"order_no": f"SO{n}"})[:40]),
        "unknown table": ("crm.public.accounts", b'{"id":"L1"}',
                          envelope("leads", "crm", "c", {"id": f"L-{n}", "name": "x"})),
        "bad money": ("billing.public.invoices", json.dumps({"id": f"in_bad{n}"}).encode(),
                      envelope("invoices", "billing", "c", {
                          "id": f"in_bad{n}", "customer_id": "cus_snap01", "subscription_id": None,
                          "erp_order_no": None, "amount_due": "12,00", "amount_paid": "0.00", "currency": "EUR",
                          "status": "open", "issued_at": None, "updated_at": "2026-01-01T00:00:00Z"})),
    }
    for topic, key, value in bad.values():
        producer.produce(topic, key=key, value=value)
    assert producer.flush(10) == 0
    valid = f"ACC-OK{n}"
    with psycopg.connect(stack_status["postgres"]["crm"], autocommit=True) as conn:
        conn.execute("INSERT INTO accounts (id, name, status) VALUES (%s, 'After Garbage', 'prospect')", (valid,))

    letters = wait_until(lambda: dead_letters(bootstrap),
                         lambda ls: all(any(v == l["value"] for l in ls) for _t, _k, v in bad.values()),
                         what="four dead letters")
    by_value = {l["value"]: l for l in letters}
    for reason, (topic, key, value) in bad.items():
        letter = by_value[value]
        assert letter["topic"] == topic and letter["key"] == key
        assert letter["stage"] == "normalize"
        if reason == "garbage" or reason == "truncated":
            assert "malformed" in letter["error"]
        else:
            assert reason in letter["error"], letter["error"]
    assert wait_until(lambda: _by_id(events(bootstrap, "account"), valid), bool, what=valid)
    url = stack_status["api"]["url"]
    assert metric(url, "trueup_dead_letters_total", source="crm", stage="normalize") >= 2
    assert metric(url, "trueup_events_out_total", source="crm", entity_type="account") >= 1


def test_redelivered_raw_events_are_dropped_as_duplicates(stack, stack_status):
    bootstrap = stack_status["kafka"]["bootstrap"]
    url = stack_status["api"]["url"]
    key = f"cus_dup{uuid.uuid4().hex[:8]}"
    with psycopg.connect(stack_status["postgres"]["billing"], autocommit=True) as conn:
        conn.execute("INSERT INTO customers (id, name, currency) VALUES (%s, 'Twice GmbH', 'EUR')", (key,))
    wait_until(lambda: _by_id(events(bootstrap, "billing_customer"), key), bool, what=key)
    raw = next(r for r in read_to_end(bootstrap, ["billing.public.customers"])
               if r.value and json.loads(r.value)["after"] and json.loads(r.value)["after"]["id"] == key)
    before = metric(url, "trueup_duplicates_dropped_total", source="billing", reason="duplicate")
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce("billing.public.customers", key=raw.key, value=raw.value, partition=raw.partition)
    producer.produce("billing.public.customers", key=raw.key, value=raw.value, partition=raw.partition)
    assert producer.flush(10) == 0
    wait_until(lambda: metric(url, "trueup_duplicates_dropped_total", source="billing", reason="duplicate"),
               lambda v: v >= before + 2, what="two duplicates dropped")
    assert len(_by_id(events(bootstrap, "billing_customer"), key)) == 1


def test_heartbeats_and_signals_are_never_dead_lettered(stack, stack_status):
    bootstrap = stack_status["kafka"]["bootstrap"]
    url = stack_status["api"]["url"]
    with psycopg.connect(stack_status["postgres"]["erp"], autocommit=True) as conn:
        conn.execute("INSERT INTO debezium_signal (id, type, data) VALUES (%s, 'log', '{\"message\": \"hi\"}')",
                     (uuid.uuid4().hex[:20],))
    wait_until(lambda: metric(url, "trueup_control_records_total", source="erp", kind="signal"), lambda v: v >= 1,
               what="signal recognised")
    for source in ("crm", "billing", "erp"):
        assert metric(url, "trueup_control_records_total", source=source, kind="heartbeat") >= 1
    control = ("trueup_heartbeat", "debezium_signal", "__debezium-heartbeat")
    assert not [l for l in dead_letters(bootstrap) if any(c in l["topic"] for c in control)]
