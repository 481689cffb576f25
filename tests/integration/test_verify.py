"""`trueup verify` against a real stack (its own): a clean run finds nothing and fetches no row; damage done
while the worker is stopped (keys deleted and a value altered in its RocksDB, the group's offset moved past
events, one change dead-lettered) is found exactly, alerted, and repaired until state, projections and alerts
equal an oracle read from the source with plain SQL.
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import signal
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka import TopicPartition as AioTP
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from rocksdict import Options, Rdict

from state.topic_end import read_to_end
from streams.mapping import load_mapping
from tests import alert_support as support
from tests.canonical import dead_letters, wait_until
from tests.stack_support import running_stack
from trueup.settings import load_settings
from trueup.stack.processes import alive
from trueup.verify import Verifier

pytestmark = pytest.mark.integration


def _verifier(stack, buckets: int = 64) -> Verifier:
    status = stack.status()
    settings = load_settings()
    return Verifier(settings, load_mapping(settings.mapping), status["api"]["url"], status["postgres"],
                    status["kafka"]["bootstrap"], buckets=buckets)


def _invoices(dsn: str, tag: str) -> dict[str, tuple[Decimal, str]]:
    with psycopg.connect(dsn) as conn:
        return {i: (a, s) for i, a, s in conn.execute(
            "SELECT id, amount_due, status FROM invoices WHERE id LIKE %s", (f"in_v{tag}%",))}


def _stop_worker(stack) -> None:
    rec = stack.state().workers[0]
    os.kill(rec.pid, signal.SIGTERM)
    wait_until(lambda: alive(rec.pid), lambda up: not up, 60, "the worker to stop")


def _start_worker(stack) -> None:
    state = stack.state()
    stack.start_worker(state, 0)
    stack._wait(lambda: stack.worker_ready(state.workers[0]), "worker 0", state.workers[0], 180)


def _tamper(stack, delete_id: str, alter_id: str) -> None:
    """With the worker stopped: delete one entity's state, change another's amount, straight in RocksDB."""
    done = set()
    for path in sorted(Path(stack.data_dir, "worker-0").rglob("join_buckets-*.db")):
        db = Rdict(str(path), options=Options(raw_mode=True))
        try:
            if db.get(f"invoice|{delete_id}".encode()) is not None:
                db.delete(f"invoice|{delete_id}".encode())
                done.add("delete")
            raw = db.get(f"invoice|{alter_id}".encode())
            if raw is not None:
                state = pickle.loads(raw)
                member = state["members"][("self", alter_id)]
                member["data"]["fields"]["amount_due"] = {"amount": Decimal("1.00"), "currency": "EUR"}
                db.put(f"invoice|{alter_id}".encode(), pickle.dumps(state, protocol=4))
                done.add("alter")
        finally:
            db.close()
    assert done == {"delete", "alter"}, done


def _skip_past(bootstrap: str, app_id: str, topic: str, ids: set[str]) -> None:
    """Commit the worker group's offset past the raw records of these rows (the worker is stopped)."""
    def ends_of_rows() -> tuple[dict[int, int], set[str]]:
        ends: dict[int, int] = {}
        seen: set[str] = set()
        for rec in read_to_end(bootstrap, [topic], idle_s=0.5):
            value = json.loads(rec.value) if rec.value else {}
            row = (value.get("payload", value).get("after") or {})
            if row.get("id") in ids:
                seen.add(row["id"])
                ends[rec.partition] = max(ends.get(rec.partition, 0), rec.offset + 1)
        return ends, seen

    ends, _ = wait_until(ends_of_rows, lambda found: found[1] == ids, 60, "the skipped rows in the raw topic")
    asyncio.run(_commit_as_member(bootstrap, app_id, {(topic, p): o for p, o in ends.items()}))


class _FaustNamedAssignor(RoundRobinPartitionAssignor):
    """Round robin under the protocol name Faust's group registered; the local broker refuses any other."""

    name = "faust"


async def _commit_as_member(bootstrap: str, group: str, offsets: dict[tuple[str, int], int]) -> None:
    """The local broker takes commits from group members only: join the idle group, commit, leave."""
    topics = sorted({t for t, _ in offsets})
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                                session_timeout_ms=6000, heartbeat_interval_ms=1000,
                                partition_assignment_strategy=(_FaustNamedAssignor,))
    await consumer.start()
    try:
        deadline = time.monotonic() + 60
        while not consumer.assignment() and time.monotonic() < deadline:
            await consumer.getmany(timeout_ms=500)
        assert consumer.assignment(), "could not join the worker group"
        await consumer.commit({AioTP(t, p): o for (t, p), o in offsets.items()})
    finally:
        await consumer.stop()


def test_verify_finds_exactly_the_damage_alerts_it_and_repair_restores_the_oracle():
    with running_stack("verify") as stack:
        status = stack.status()
        dsn, bootstrap = status["postgres"]["billing"], status["kafka"]["bootstrap"]
        tag = uuid.uuid4().hex[:6]
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("INSERT INTO customers (id, name, currency) VALUES (%s, 'Verify AG', 'EUR')", (f"cus_v{tag}",))
            for n in range(300):
                conn.execute("INSERT INTO invoices (id, customer_id, amount_due, currency, status) "
                             "VALUES (%s, %s, %s, 'EUR', 'open')", (f"in_v{tag}_{n:03d}", f"cus_v{tag}", 100 + n))
        support.wait_caught_up(stack, int(time.time() * 1000))

        clean = _verifier(stack).run(entities={"invoice", "billing_customer"})
        assert clean.drift == [] and clean.rows_fetched_row_level == 0 and clean.buckets_differing == 0
        with psycopg.connect(dsn) as conn:
            invoices, customers = conn.execute("SELECT (SELECT count(*) FROM invoices), (SELECT count(*) FROM customers)"
                                               ).fetchone()
        assert clean.rows_checked == invoices + customers
        sums = support.get_json(f"{status['api']['url']}/verify/sums?entity_type=invoice&bucket_count=64")
        assert sums["from"] == "live" and sums["rows"] == invoices  # the sums kept on every write, no scan

        deleted, altered, dead = f"in_v{tag}_001", f"in_v{tag}_002", f"in_v{tag}_003"
        skipped = {f"in_v{tag}_s{n}" for n in range(3)}
        _stop_worker(stack)
        _tamper(stack, deleted, altered)
        with psycopg.connect(dsn, autocommit=True) as conn:
            for invoice_id in sorted(skipped):
                conn.execute("INSERT INTO invoices (id, customer_id, amount_due, currency, status) "
                             "VALUES (%s, %s, 42.00, 'EUR', 'open')", (invoice_id, f"cus_v{tag}"))
        _skip_past(bootstrap, load_settings().worker.app_id, "billing.public.invoices", skipped)
        _start_worker(stack)
        # One change dead-lettered: made while a mapped column is renamed (schema drift), then renamed back.
        letters_before = len(dead_letters(bootstrap))
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("ALTER TABLE invoices RENAME COLUMN status TO state")
            conn.execute("UPDATE invoices SET amount_due = 777.00 WHERE id = %s", (dead,))
            conn.execute("ALTER TABLE invoices RENAME COLUMN state TO status")
        wait_until(lambda: dead_letters(bootstrap), lambda ls: len(ls) > letters_before, 60, "the dead letter")
        support.wait_caught_up(stack, int(time.time() * 1000))

        found = _verifier(stack).run(entities={"invoice"})
        got = {(d["entity_id"], d["kind"]) for d in found.drift}
        assert got == {(deleted, "missing_in_trueup"), (altered, "field_differs"), (dead, "field_differs"),
                       *((s, "missing_in_trueup") for s in skipped)}
        assert found.rows_fetched_row_level < 300  # only the differing buckets' rows
        # One top-level bucket holds every row, so it differs: bisection narrows it before any row is read.
        bisected = _verifier(stack, buckets=1).run(entities={"invoice"})
        assert {(d["entity_id"], d["kind"]) for d in bisected.drift} == got
        assert bisected.bisections >= 1 and bisected.rows_fetched_row_level < 256
        expected_alerts = {("state_drift", "invoice", i) for i, _ in got}
        wait_until(lambda: support.latest(support.alert_records(bootstrap)),
                   lambda a: {k for k, r in a.items() if k[0] == "state_drift" and r["status"] == "open"}
                   == expected_alerts, 60, "state_drift alerts for exactly the damage")

        env = dict(os.environ, TRUEUP_DATA_DIR=str(stack.data_dir))
        out = subprocess.run([sys.executable, "-m", "trueup.cli", "verify", "--entity", "invoice", "--repair"],
                             env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        assert "repaired 6" in out.stdout and "rows/s" in out.stdout
        audit = [json.loads(line) for line in (stack.data_dir / "verify" / "repairs.jsonl").read_text().splitlines()]
        assert {(a["entity_id"], a["why"]) for a in audit} == got
        assert all(a["at"] and "after" in a and "before" in a for a in audit)
        support.wait_caught_up(stack, int(time.time() * 1000))

        again = _verifier(stack).run(entities={"invoice"})
        assert again.drift == [] and again.resolved == len(expected_alerts), json.dumps(again.drift, default=str)[:3000]
        wait_until(lambda: support.latest(support.alert_records(bootstrap)),
                   lambda a: all(a[k]["status"] == "resolved" for k in expected_alerts), 60, "drift alerts resolved")
        oracle = _invoices(dsn, tag)
        api = status["api"]["url"]
        for invoice_id, (amount, state) in oracle.items():
            projection = support.get_json(f"{api}/projections/invoice/{invoice_id}")
            assert projection["fields"]["amount_due"]["value"]["amount"] == str(amount), invoice_id
            assert projection["status"] == state
        repeat = _verifier(stack).run(entities={"invoice"}, repair=True)
        assert repeat.drift == [] and repeat.repaired == 0


def test_the_leader_verifies_on_a_schedule_and_reports_in_health():
    with running_stack("verify-scheduled", env={"TRUEUP_VERIFY__INTERVAL_S": "3"}) as stack:
        status = stack.status()
        with psycopg.connect(status["postgres"]["crm"], autocommit=True) as conn:
            for n in range(20):
                conn.execute("INSERT INTO accounts (id, name, status) VALUES (%s, 'Scheduled', 'prospect')",
                             (f"ACC-SCHED{n:02d}",))
        support.wait_caught_up(stack, int(time.time() * 1000))
        started = time.time()

        def verified():
            state = support.get_json(status["api"]["url"] + "/health?scope=local")["verify"]
            return state if state["last"] and state.get("started_at", 0) > started else None

        state = wait_until(verified, bool, 90, "a scheduled verify run after the rows arrived")
        assert state["last_error"] is None and state["scheduled_every_s"] == 3
        assert state["last"]["drift"] == 0 and state["last"]["rows_fetched_row_level"] == 0
        with psycopg.connect(status["postgres"]["crm"]) as conn:
            accounts = conn.execute("SELECT count(*) FROM accounts").fetchone()[0]
        assert state["last"]["rows_checked"] >= accounts >= 20
