"""Polling connectors through a real stack (its own): billing polled by SQL, a billing API polled by events.

CRM and ERP stream through Debezium; billing's database is polled by `trueup connect poll-sql` under the
billing_poll prefix, and a local events API (tests/fake_events_api.py) by `trueup connect poll-api` under
billing_api. Oracles: the rows written by SQL here, the API's own event list, and the shared Debezium stack's
canonical events for the same rows.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections import Counter
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
import yaml

from tests import fault_support
from tests.canonical import events, wait_until
from tests.fake_events_api import FakeEventsApi
from tests.stack_support import running_stack
from trueup.stack.processes import alive

pytestmark = pytest.mark.integration

API_TOKEN = "fake-api-token-42"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def polled(tmp_path_factory):
    api = FakeEventsApi(API_TOKEN, slow_s=4.0).start()
    config = yaml.safe_load((ROOT / "config" / "pollers" / "billing_api.yaml").read_text())
    config.update(base_url=api.url, timeout_s=2, max_backoff_s=1)
    config_path = tmp_path_factory.mktemp("poll") / "billing_api.yaml"
    config_path.write_text(yaml.safe_dump(config))
    env = {
        "TRUEUP_SOURCES__BILLING__ENABLED": "false",
        "TRUEUP_SOURCES__BILLING_POLL__KIND": "poll-sql",
        "TRUEUP_SOURCES__BILLING_POLL__DATABASE": "billing",
        "TRUEUP_SOURCES__BILLING_API__KIND": "poll-api",
        "TRUEUP_SOURCES__BILLING_API__CONNECTOR": str(config_path),
        "TRUEUP_SOURCES__BILLING_API__API_TOKEN": API_TOKEN,
    }
    try:
        with running_stack("poll", env=env) as stack:
            yield stack, api
    finally:
        api.close()


def _billing_rows(tag: str) -> list[tuple[str, tuple]]:
    """The same statements for both stacks: fixed values, fixed change times."""
    at = "2026-11-20 10:00:00.123456+00"
    return [
        ("INSERT INTO customers (id, crm_account_id, name, email, currency, delinquent, updated_at) "
         "VALUES (%s, %s, 'Same Rows AG', 'ap@same.example', 'CHF', false, %s)", (f"cus_{tag}", f"ACC-{tag}", at)),
        ("INSERT INTO subscriptions (id, customer_id, crm_opportunity_id, quantity, unit_amount, currency, status, "
         "updated_at) VALUES (%s, %s, %s, 3, 49.90, 'CHF', 'active', %s)", (f"sub_{tag}", f"cus_{tag}",
                                                                            f"OPP-{tag}", at)),
        ("INSERT INTO invoices (id, customer_id, subscription_id, amount_due, amount_paid, currency, status, "
         "issued_at, due_date, updated_at) VALUES (%s, %s, %s, 149.70, 0, 'CHF', 'open', %s, '2026-12-20', %s)",
         (f"in_{tag}", f"cus_{tag}", f"sub_{tag}", at, at)),
        ("INSERT INTO payments (id, invoice_id, customer_id, amount, currency, kind, status, updated_at) "
         "VALUES (%s, %s, %s, 149.70, 'CHF', 'charge', 'succeeded', %s)", (f"py_{tag}", f"in_{tag}", f"cus_{tag}",
                                                                            at)),
    ]


def _write(dsn: str, statements) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        with conn.transaction():
            for sql, params in statements:
                conn.execute(sql, params)


def _latest(bootstrap: str, entity: str, ids: set[str]) -> dict[str, dict]:
    out = {}
    for event in events(bootstrap, entity):
        if event["entity_id"] in ids:
            out[event["entity_id"]] = event
    return out


def test_polled_rows_reach_canonical_events_with_the_same_fields_as_via_debezium(polled, stack_status):
    poll_stack, _ = polled
    tag = uuid.uuid4().hex[:8]
    poll_status = poll_stack.status()
    _write(stack_status["postgres"]["billing"], _billing_rows(tag))
    _write(poll_status["postgres"]["billing_poll"], _billing_rows(tag))
    for entity, prefix in (("billing_customer", "cus"), ("subscription", "sub"), ("invoice", "in"),
                           ("payment", "py")):
        key = f"{prefix}_{tag}"
        via_debezium = wait_until(lambda: _latest(stack_status["kafka"]["bootstrap"], entity, {key}),
                                  lambda got: key in got, 60, f"{key} via Debezium")[key]
        via_poll = wait_until(lambda: _latest(poll_status["kafka"]["bootstrap"], entity, {key}),
                              lambda got: key in got, 60, f"{key} via the SQL poller")[key]
        assert via_poll["position"]["kind"] == "poll" and via_debezium["position"]["kind"] == "stream"
        for field in ("entity_type", "entity_id", "system", "source_table", "after"):
            assert via_poll[field] == via_debezium[field], (entity, field)
        assert set(via_poll["extra"]) == set(via_debezium["extra"])
        if entity in ("invoice", "payment"):  # and both equal the row itself, read back by SQL
            want = fault_support.source_row(poll_status["postgres"]["billing_poll"], entity, key)
            assert want is not None and {column: via_poll["after"].get(column) for column in want} == want, want
    # A vanished key (no soft-delete column) becomes a delete through the key-set comparison.
    with psycopg.connect(poll_status["postgres"]["billing_poll"], autocommit=True) as conn:
        conn.execute("DELETE FROM payments WHERE id = %s", (f"py_{tag}",))
    deleted = wait_until(lambda: _latest(poll_status["kafka"]["bootstrap"], "payment", {f"py_{tag}"}),
                         lambda got: got[f"py_{tag}"]["op"] == "delete", 60, "the delete")
    assert deleted[f"py_{tag}"]["after"] is None


def _poller(stack, source: str) -> dict:
    return next(c for c in stack.status()["components"] if c["name"] == f"connector-{source}")


def test_kill_9_during_a_poll_then_restart_loses_and_duplicates_nothing(polled):
    stack, _ = polled
    status = stack.status()
    dsn, bootstrap = status["postgres"]["billing_poll"], status["kafka"]["bootstrap"]
    tag = uuid.uuid4().hex[:6]
    expected: dict[str, Decimal] = {}
    stop = threading.Event()

    def write() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("INSERT INTO customers (id, name, currency) VALUES (%s, 'Kill Nine', 'EUR') "
                         "ON CONFLICT DO NOTHING", (f"cus_k{tag}",))
            n = 0
            while not stop.is_set() and n < 1500:
                pid = f"py_k{tag}_{n:05d}"
                amount = Decimal(n % 500 + 1).quantize(Decimal("0.01"))
                conn.execute("INSERT INTO payments (id, customer_id, amount, currency, kind, status) "
                             "VALUES (%s, %s, %s, 'EUR', 'charge', 'pending')", (pid, f"cus_k{tag}", amount))
                expected[pid] = amount
                if n % 7 == 0:  # some rows change again, so there is more than one version to keep in order
                    conn.execute("UPDATE payments SET status = 'succeeded' WHERE id = %s", (pid,))
                n += 1
                time.sleep(0.003)

    writer = threading.Thread(target=write)
    writer.start()
    kills = 0
    try:
        for _ in range(2):
            wait_until(lambda: _poller(stack, "billing_poll"), lambda c: (c.get("rows_per_poll") or 0) > 0, 30,
                       "the poller mid-stream")
            rec = stack.state().connectors["billing_poll"]
            os.kill(rec.pid, signal.SIGKILL)
            kills += 1
            wait_until(lambda: alive(rec.pid), lambda up: not up, 10, "the poller to die")
            time.sleep(0.5)
            state = stack.state()
            stack.start_connector(state, "billing_poll")
            stack.wait_connector_streaming(state, "billing_poll", 60)
    finally:
        stop.set()
        writer.join(timeout=60)
    assert kills == 2 and len(expected) > 100
    with psycopg.connect(dsn) as conn:
        truth = {i: (a, s) for i, a, s in conn.execute(
            "SELECT id, amount, status FROM payments WHERE customer_id = %s", (f"cus_k{tag}",))}
    assert set(truth) == set(expected)

    def canonical():
        return [e for e in events(bootstrap, "payment") if e["entity_id"].startswith(f"py_k{tag}_")]

    def converged(evs):
        last = {}
        for e in evs:
            last[e["entity_id"]] = e
        return set(last) == set(truth) and all(
            last[i]["after"]["amount"]["amount"] == truth[i][0] and last[i]["after"]["status"] == truth[i][1]
            for i in truth)

    got = wait_until(canonical, converged, 120, "every payment's final state downstream")
    twice = [k for k, n in Counter(e["idempotency_key"] for e in got).items() if n > 1]
    assert twice == [], f"{len(twice)} changes reached the canonical topic twice"


def test_api_faults_lose_nothing_and_status_shows_the_cursor_and_errors(polled):
    stack, api = polled
    bootstrap = stack.status()["kafka"]["bootstrap"]
    tag = uuid.uuid4().hex[:6]
    finals: dict[str, dict] = {}

    def invoice(n: int, status: str, paid: str, minute: int) -> dict:
        obj = {"id": f"in_api{tag}_{n:03d}", "customer_id": f"cus_api{tag}", "subscription_id": None,
               "erp_order_no": None, "amount_due": "250.00", "amount_paid": paid, "currency": "EUR",
               "status": status, "issued_at": "2026-11-20T09:00:00Z",
               "updated_at": f"2026-11-20T10:{minute:02d}:00Z"}
        finals[obj["id"]] = obj
        return obj

    api.fail("500", "429", "crash", "slow", "duplicate", "500", "reversed", "crash", "duplicate")
    for n in range(120):
        api.add("invoice.created", invoice(n, "open", "0.00", 0))
    for n in range(0, 120, 3):
        api.add("invoice.updated", invoice(n, "paid", "250.00", 5))
    deleted = {f"in_api{tag}_{n:03d}" for n in range(1, 120, 10)}
    for invoice_id in sorted(deleted):
        api.add("invoice.deleted", {**finals[invoice_id], "updated_at": "2026-11-20T10:09:00Z"})

    def canonical():
        return [e for e in events(bootstrap, "invoice") if e["entity_id"].startswith(f"in_api{tag}_")]

    def converged(evs):
        last = {}
        for e in evs:
            last[e["entity_id"]] = e
        if set(last) != set(finals):
            return False
        for invoice_id, obj in finals.items():
            if invoice_id in deleted:
                if last[invoice_id]["op"] != "delete":
                    return False
            elif last[invoice_id]["after"]["status"] != obj["status"]:
                return False
        return True

    got = wait_until(canonical, converged, 180, "every API object's final state downstream")
    twice = [k for k, n in Counter(e["idempotency_key"] for e in got).items() if n > 1]
    assert twice == []
    assert not api.faults, f"faults not yet served: {list(api.faults)}"
    # The status file is rewritten once a second, and a reordered last page may take one more poll to settle.
    component = wait_until(lambda: _poller(stack, "billing_api"),
                           lambda c: c["cursors"].get("events") == api.events[-1]["id"], 30,
                           "the status to show the feed's last event as the cursor")
    assert component["state"] == "up" and component["errors"] >= 6, component
    assert component["last_poll"] and component["rows_per_poll"] is not None
    paid = [e for e in got if e["after"] and e["after"]["status"] == "paid"]
    assert {e["after"]["amount_paid"]["amount"] for e in paid} == {Decimal("250.00")}
