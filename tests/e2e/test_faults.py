"""Fault injection through the real stack: each case starts its own stack, runs the seeded quote-to-cash
simulator (plus a billing churn that moves, refunds and deletes payments and deletes invoices) and, while that
traffic flows, breaks one part of the pipeline: a worker SIGKILLed and restarted, one of two workers stopped
for good, the billing Debezium process SIGKILLed and restarted (with its offsets file intact, emptied as a kill
mid-write leaves it, or gone so that it snapshots again), PostgreSQL restarted, the broker frozen for
30 s, poison records in every raw topic, every billing raw record delivered a second time. Once the workers'
watermarks are past the last SLA, the end state must be the one a fault-free run gives: (a) exactly the
simulator's ground-truth alerts, each open once; (b) every invoice projection equal to an oracle computed with
independent SQL from billing (corrected status, billing's status beside it, net paid per currency) and no
live value for any deleted invoice (a tombstone, or no record when its bucket saw it born and deleted in one batch); (c) every invoice and payment row's final state (updated_at included) as
its last canonical event and a delete as the last event of every deleted row, so nothing was lost and, with
(b)'s totals, nothing was counted twice. Poison lands on the dead-letter topic with a reason and nothing else
does; redelivered raw records change neither the state nor the alerts.
"""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error

import pytest

from connectors.debezium_runner import kafka_producer
from state.topic_end import read_to_end
from streams.mapping import load_mapping
from tests import alert_support
from tests import fault_support as fs
from tests.canonical import dead_letters, envelope, events, metric, projections, wait_until
from trueup.settings import load_settings
from trueup.verify import Verifier
from trueup.stack.processes import alive

pytestmark = pytest.mark.integration


def test_worker_sigkill_mid_run_then_restart(tmp_path):
    with fs.fault_stack("f-wkill", tmp_path / "logs") as stack:
        traffic = fs.Traffic(stack, 7101, tmp_path).start()
        traffic.sleep_until(fs.FAULT_AT_S)
        state = stack.state()
        killed = state.workers[0].pid
        fs.kill(killed, signal.SIGKILL)
        assert fs.components(stack)["worker-0"]["state"] == "failed"
        traffic.sleep_until(fs.FAULT_AT_S + 3)  # the sources keep changing while no worker runs
        stack.start_worker(state, 0)
        fs.wait_worker_ready(stack, 0)
        assert stack.state().workers[0].pid != killed
        truth = traffic.finish()
        fs.assert_end_state(stack, truth, traffic.churn.deleted)
        assert fs.not_up(stack) == {}


def test_two_workers_one_stopped_for_good_survivor_holds_the_full_state(tmp_path):
    with fs.fault_stack("f-survivor", tmp_path / "logs", workers=2) as stack:
        traffic = fs.Traffic(stack, 7102, tmp_path).start()
        traffic.sleep_until(fs.FAULT_AT_S)
        survivor, leaving = stack.state().workers
        held = {i: set(stack.worker_health(rec)["partitions"]) for i, rec in enumerate((survivor, leaving))}
        assert held[0] and held[1] and not held[0] >= held[1], held  # the group really split the work
        fs.kill(leaving.pid, signal.SIGTERM)
        wait_until(lambda: stack.worker_health(survivor) or {},
                   lambda h: h.get("recovery") == "done" and set(h.get("partitions", ())) >= held[0] | held[1],
                   120, "the survivor holding every partition, recovered")
        truth = traffic.finish()
        oracle = fs.assert_end_state(stack, truth, traffic.churn.deleted)

        # The survivor's own API answers every invoice from its tables.
        url = stack.worker_url(survivor)
        wrong = {}
        for inv, want in oracle.items():
            problems = fs.projection_problems(alert_support.get_json(f"{url}/projections/invoice/{inv}"), want)
            if problems:
                wrong[inv] = problems
        assert not wrong, f"survivor API differs from billing: {wrong}"
        for inv in traffic.churn.deleted["invoice"]:
            with pytest.raises(urllib.error.HTTPError) as gone:
                alert_support.get_json(f"{url}/projections/invoice/{inv}")
            assert gone.value.code == 404, inv
        assert not alive(leaving.pid)
        assert fs.not_up(stack, ignore=("worker-1",)) == {}


def _kill_billing_connector_then_restart(tmp_path, name: str, seed: int, offsets=None, settle=None,
                                         snapshots: bool = False) -> dict:
    """SIGKILL the billing connector mid-run, let offsets(path of its offsets file) do to the file what the case
    needs, restart it, let settle(stack) act once the traffic ended (returning the alerts it raised and resolved),
    and check the end state; returns the restarted connector's status. snapshots: the restart snapshots again,
    so rows born and deleted while the connector was down may never show."""
    with fs.fault_stack(name, tmp_path / "logs") as stack:
        traffic = fs.Traffic(stack, seed, tmp_path).start()
        traffic.sleep_until(fs.FAULT_AT_S)
        state = stack.state()
        killed = state.connectors["billing"].pid
        fs.kill(killed, signal.SIGKILL)
        assert fs.components(stack)["connector-billing"]["state"] == "failed"
        if offsets is not None:
            offsets(stack.connector_dir("billing") / "offsets.dat")
        traffic.sleep_until(fs.FAULT_AT_S + 3)  # billing keeps committing while nobody reads its slot
        stack.start_connector(state, "billing")
        stack.wait_connector_streaming(state, "billing", 120)
        unseen = frozenset()
        if snapshots:  # what the first connector never sent, up to what the snapshot may have missed
            sent = traffic.churn.streamed_before_resnapshot(stack.status()["kafka"]["bootstrap"])
            unseen = traffic.churn.ids_between(sent, traffic.churn.made)
            print(f"\nchurn ids {sent + 1} to {traffic.churn.made} were made while nobody streamed")
        assert state.connectors["billing"].pid != killed
        truth = traffic.finish()
        resolved = settle(stack) if settle is not None else frozenset()
        fs.assert_end_state(stack, truth, traffic.churn.deleted, resolved=resolved, unseen=unseen)
        assert fs.not_up(stack) == {}
        return json.loads((stack.connector_dir("billing") / "status.json").read_text())


def test_billing_connector_sigkill_mid_run_then_restart(tmp_path):
    restarted = _kill_billing_connector_then_restart(tmp_path, "f-ckill", 7103)
    assert restarted["snapshot_records"] == 0  # it resumed from its offsets


def test_billing_connector_killed_while_writing_its_offsets_resumes_from_the_kept_copy(tmp_path):
    """Kafka's file offset store truncates the file before each write; a kill in between leaves it empty (read as
    "no offsets": a new snapshot) or cut short (the engine fails at start). The runner puts its kept copy back
    instead. Cut short here, so Kafka's own reader judges it (the empty case never needs the reader)."""
    def cut_short(path):
        assert path.with_name(path.name + ".kept").stat().st_size > 0  # Kafka's reader accepted a copy
        whole = path.read_bytes()  # empty if the kill itself hit a write: then it stays empty
        path.write_bytes(whole[: len(whole) // 2])

    restarted = _kill_billing_connector_then_restart(tmp_path, "f-ckill-offsets", 7106, cut_short)
    assert restarted["snapshot_records"] == 0 and restarted["offsets_restored"] == 1
    log = (tmp_path / "logs" / "connect-billing.log").read_text()
    assert "(the connector was stopped while writing it): restored the copy" in log


def test_billing_connector_without_its_offsets_snapshots_again_and_verify_closes_the_deletes(tmp_path):
    """Offsets gone for good (a new volume, a reset): Debezium snapshots every table again at the current LSN.
    Each snapshot row lands over the older streamed state it finds, so the rows changed while nobody streamed end
    as billing has them, and changes streamed after the snapshot still win over it. A row deleted meanwhile is in
    no snapshot: `trueup verify --repair` finds exactly those rows (gone from billing, live in trueup) and closes
    them; a second run finds nothing and resolves its drift alerts."""
    def removed(path):
        path.unlink()
        path.with_name(path.name + ".kept").unlink()

    def verify_repairs_the_deletes(stack) -> frozenset:
        alert_support.wait_caught_up(stack, int(time.time() * 1000))
        status, settings = stack.status(), load_settings()
        verifier = Verifier(settings, load_mapping(settings.mapping), status["api"]["url"], status["postgres"],
                            status["kafka"]["bootstrap"], buckets=64)
        # The oracle, from Debezium's raw records and billing's SQL: live in the last record, gone from billing.
        gone = fs.live_in_raw_but_gone(status["kafka"]["bootstrap"], status["postgres"]["billing"])
        found = verifier.run(systems={"billing"}, repair=True, audit_path=stack.data_dir / "verify" / "repairs.jsonl")
        drifted = {(d["entity_type"], d["entity_id"]) for d in found.drift}
        assert drifted == gone, found.drift
        assert found.repaired == len(found.drift)
        for d in found.drift:
            assert d["kind"] == "extra_in_trueup", d
            assert fs.billing_rows(status["postgres"]["billing"], fs.BILLING_TABLES[d["entity_type"]],
                                   d["entity_id"]) == 0, d
        alert_support.wait_caught_up(stack, int(time.time() * 1000))
        # The second run resolves what the API shows open: the first run's findings must have arrived there.
        api = status["api"]["url"]
        wait_until(lambda: {(a["entity_type"], a["entity_id"]) for a in alert_support.get_json(
                       f"{api}/alerts?rule=state_drift&status=open&limit=1000")["items"]},
                   lambda open_: drifted <= open_, 60, "the first run's drift alerts open in the API")
        again = verifier.run(systems={"billing"})
        assert again.drift == [] and again.resolved == len(found.drift), again.drift
        # Snapshot rows really landed over streamed state: every row that lived through the restart got one.
        bootstrap = status["kafka"]["bootstrap"]
        landed = [e for entity in ("invoice", "payment") for e in events(bootstrap, entity)
                  if e["op"] == "snapshot" and e["position"]["order"][-2:-1] == [-1]]
        assert landed, "no snapshot row landed over a streamed state"
        # the worker counts them (and warns once that deletes need this very repair)
        rows = {(e["entity_type"], e["entity_id"]) for e in landed}
        assert metric(status["api"]["url"], "trueup_snapshot_rows_landed_total", source="billing") >= len(rows)
        print(f"\nafter the snapshot: {len(landed)} rows landed over streamed state; verify repaired "
              f"{len(found.drift)} rows deleted while nobody streamed")
        return frozenset(("state_drift", d["entity_type"], d["entity_id"]) for d in found.drift)

    restarted = _kill_billing_connector_then_restart(tmp_path, "f-ckill-resnap", 7107, removed,
                                                     verify_repairs_the_deletes, snapshots=True)
    assert restarted["snapshot_records"] > 0


def test_postgres_restart_mid_run_connectors_recover_on_their_own(tmp_path):
    with fs.fault_stack("f-pgrestart", tmp_path / "logs") as stack:
        gate = fs.Gate()
        traffic = fs.Traffic(stack, 7104, tmp_path, gate=gate).start()
        traffic.sleep_until(fs.FAULT_AT_S)
        before = fs.pids(stack)
        down_s = fs.restart_postgres(stack, gate)
        print(f"\npostgres down for {down_s:.1f}s")
        truth = traffic.finish()
        # The simulator really lived through the restart (its connections were reopened), ...
        assert [c.reconnects for c in traffic.simulator.connections] == [1, 1, 1]
        # ... and nothing but PostgreSQL was restarted: the connectors reconnected by themselves.
        fs.assert_end_state(stack, truth, traffic.churn.deleted)
        after = fs.pids(stack)
        assert {k: v for k, v in after.items() if k != "postgres"} == {
            k: v for k, v in before.items() if k != "postgres"}
        assert fs.not_up(stack) == {}


def test_broker_frozen_for_30s_nothing_exits_and_nothing_is_lost(tmp_path):
    with fs.fault_stack("f-freeze", tmp_path / "logs") as stack:
        traffic = fs.Traffic(stack, 7105, tmp_path).start()
        traffic.sleep_until(3)
        before = fs.pids(stack)
        os.kill(before["broker"], signal.SIGSTOP)  # a memory broker: restarting it would lose every topic
        try:
            time.sleep(30)  # the fault itself, not a synchronisation
            assert {k: alive(pid) for k, pid in before.items()} == dict.fromkeys(before, True)
        finally:
            os.kill(before["broker"], signal.SIGCONT)
        truth = traffic.finish()
        fs.assert_end_state(stack, truth, traffic.churn.deleted)
        assert fs.pids(stack) == before
        assert fs.not_up(stack) == {}


def test_poison_records_in_every_raw_topic_are_dead_lettered(tmp_path):
    with fs.fault_stack("f-poison", tmp_path / "logs") as stack:
        bootstrap = stack.status()["kafka"]["bootstrap"]
        settings = load_settings()
        mapping = load_mapping(settings.mapping)
        topics = [t for source in settings.enabled_sources for t in mapping.sources[source].data_topics]
        assert len(topics) >= 9, topics
        traffic = fs.Traffic(stack, 7106, tmp_path).start()
        traffic.sleep_until(fs.FAULT_AT_S)
        producer = kafka_producer(bootstrap, 5)
        poison: dict[tuple[str, bytes], tuple[str, bytes]] = {}  # (topic, value) -> (kind, key)
        for topic in topics:
            db, _, table = topic.split(".")
            full = envelope(table, db, "c", {"id": f"poison-{topic}"})
            for kind, value in (("garbage", b"\x00\xff\xfe\x80 not json at all " + topic.encode()),
                                ("truncated", full[: len(full) // 2]),
                                ("not an envelope", json.dumps({"poison": topic, "n": 1}).encode())):
                key = json.dumps({"id": f"poison-{kind}-{topic}"}).encode()
                producer.produce(topic, key=key, value=value)
                poison[(topic, value)] = (kind, key)
        assert producer.flush(30) == 0
        producer = None  # gone before the stack goes down (no reconnect noise)
        truth = traffic.finish()
        fs.assert_end_state(stack, truth, traffic.churn.deleted)

        letters = wait_until(lambda: dead_letters(bootstrap),
                             lambda ls: set(poison) <= {(l["topic"], l["value"]) for l in ls}, 60,
                             "every poison record dead-lettered")
        by_record = {(l["topic"], l["value"]): l for l in letters}
        for (topic, value), (kind, key) in poison.items():
            letter = by_record[(topic, value)]
            assert letter["key"] == key and letter["stage"] == "normalize", letter
            assert letter["error"].strip(), letter
            if kind in ("garbage", "truncated"):
                assert "malformed" in letter["error"], letter["error"]
        # Only the poison: no real change was dead-lettered, none twice.
        assert sorted((l["topic"], l["value"]) for l in letters) == sorted(poison)
        assert fs.not_up(stack) == {}


def test_billing_raw_records_delivered_twice_change_nothing(tmp_path):
    with fs.fault_stack("f-redeliver", tmp_path / "logs") as stack:
        status = stack.status()
        bootstrap, url = status["kafka"]["bootstrap"], status["api"]["url"]
        traffic = fs.Traffic(stack, 7107, tmp_path).start()
        truth = traffic.finish()
        oracle = fs.assert_end_state(stack, truth, traffic.churn.deleted)

        entities = ("billing_customer", "subscription", "invoice", "payment")
        alerts_before = alert_support.alert_records(bootstrap)
        projections_before = projections(bootstrap, "invoice")
        events_before = {e: len(events(bootstrap, e)) for e in entities}
        dropped_before = metric(url, "trueup_duplicates_dropped_total", source="billing")

        spec = load_mapping(load_settings().mapping).sources["billing"]
        records = list(read_to_end(bootstrap, [*spec.data_topics, *spec.control_topics], idle_s=0.5))
        changes = sum(1 for r in records if r.topic in spec.data_topics and r.value is not None)
        assert changes > 100, changes
        producer = kafka_producer(bootstrap, 5)
        for rec in records:
            producer.produce(rec.topic, key=rec.key, value=rec.value, partition=rec.partition,
                             headers=list(rec.headers) or None)
        assert producer.flush(30) == 0

        producer = None  # gone before the stack goes down (no reconnect noise)
        resent_at_ms = int(time.time() * 1000)

        # Every redelivered change is recognised (stale or duplicate) and dropped. The barrier past the resend
        # time covers every redelivered record in every stage; dropped records change no state, so they can
        # set no new SLA deadline to wait for.
        wait_until(lambda: metric(url, "trueup_duplicates_dropped_total", source="billing") - dropped_before,
                   lambda n: n >= changes, 90, f"{changes} redelivered changes dropped")
        alert_support.wait_caught_up(stack, resent_at_ms)
        assert metric(url, "trueup_duplicates_dropped_total", source="billing") - dropped_before == changes

        alerts_after = alert_support.alert_records(bootstrap)
        assert alert_support.latest(alerts_after) == alert_support.latest(alerts_before)
        canonical = {json.dumps(r, sort_keys=True, default=str) for r in alerts_before}
        resent = [r for r in alerts_after if json.dumps(r, sort_keys=True, default=str) not in canonical]
        assert not resent, f"new alert records after the redelivery: {resent}"
        assert projections(bootstrap, "invoice") == projections_before
        assert not fs.invoice_projection_diff(bootstrap, oracle, traffic.churn.deleted["invoice"])
        assert {e: len(events(bootstrap, e)) for e in entities} == events_before
        assert fs.not_up(stack) == {}
