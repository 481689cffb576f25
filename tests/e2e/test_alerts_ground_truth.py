"""Alerts through the real stack against the simulator's ground truth (each test starts its own stack).

Faults yield exactly the ground truth's alerts and no other, and fixing a fault in its source resolves its
alerts; fault-free traffic yields none, also while one source is held back for more than three times the
largest SLA. "Caught up" is read from the workers' /health watermarks, never from a sleep.
"""

from __future__ import annotations

import json
import time

import psycopg

from tests import alert_support as support
from tests.canonical import wait_until
from tests.fault_support import SimulatorRun
from tests.stack_support import running_stack
from trueup.simulator import FAULT_KINDS, Simulator, fix

RATE, DURATION_S = 30.0, 30.0


def test_faults_raise_exactly_the_ground_truth_and_fixes_resolve_them(tmp_path):
    with running_stack("alerts") as stack:
        status = stack.status()
        bootstrap, dsns = status["kafka"]["bootstrap"], status["postgres"]
        truth_path = tmp_path / "truth.json"
        Simulator(dsns, rate=RATE, duration_s=DURATION_S, seed=20261127, faults=0.3,
                  ground_truth=truth_path).run()
        truth = json.loads(truth_path.read_text())
        expected = support.expected_alerts(truth)
        assert {f["kind"] for f in truth["faults"]} == set(FAULT_KINDS)
        support.assert_sources_hold(dsns, expected)
        support.wait_caught_up(stack, int(time.time() * 1000) + support.largest_sla_ms())
        latest = wait_until(lambda: support.latest(support.alert_records(bootstrap)),
                            lambda got: set(got) == expected, 60, "alerts equal to the ground truth")
        assert all(r["status"] == "open" and r["occurrence"] == 1 for r in latest.values())
        for (_, _, entity_id), record in latest.items():
            assert entity_id in record["message"] and record["evidence"], record

        # Fix the first fault of every kind in its source: exactly those alerts resolve, nothing new opens.
        fixed: set[tuple[str, str, str]] = set()
        firsts = {}
        for fault in truth["faults"]:
            firsts.setdefault(fault["kind"], fault)
        conns = {s: psycopg.connect(dsn) for s, dsn in dsns.items()}
        try:
            for fault in firsts.values():
                fix(conns, fault)
                fixed |= support.expected_alerts({"faults": [fault]})
        finally:
            for conn in conns.values():
                conn.close()
        support.wait_caught_up(stack, int(time.time() * 1000) + support.largest_sla_ms())

        def settled(got):
            return set(got) == expected and all(
                got[k]["status"] == ("resolved" if k in fixed else "open") for k in expected)

        latest = wait_until(lambda: support.latest(support.alert_records(bootstrap)), settled, 60, "fixed alerts resolved")
        for key in fixed:
            assert latest[key]["occurrence"] == 1 and latest[key]["last_seen"] >= latest[key]["first_seen"]


def test_no_faults_no_alerts_even_with_a_source_held_back(tmp_path):
    held_back, sla_ms = "billing", support.largest_sla_ms()
    with running_stack("no-alerts") as stack:
        status = stack.status()
        bootstrap, dsns = status["kafka"]["bootstrap"], status["postgres"]
        support.wait_caught_up(stack, int(time.time() * 1000))
        # A thread that keeps the simulator's error: its ground truth is written even when it fails.
        run = SimulatorRun(dsns, 20261127, tmp_path / "truth.json", rate=RATE, duration_s=DURATION_S, faults=0.0)
        run.start()
        time.sleep(3)
        stack.pause(held_back)
        paused_at = time.monotonic()
        # Held back for three times the largest SLA and more, while the others keep streaming.
        while time.monotonic() - paused_at < 3 * sla_ms / 1000 + 2:
            assert support.alert_records(bootstrap) == []
            time.sleep(2)
        held = support.health(stack)["sources"][held_back]
        assert held["lag_seconds"] >= 3 * sla_ms / 1000, held
        assert held["waiting_alerts"] > 0 and "wait until everything" in held["why"], held
        assert support.alert_records(bootstrap) == []
        stack.resume(held_back)
        run.finish(timeout_s=120)
        # Real traffic from every source, held back or not, and no fault among it.
        summary = run.summary
        assert summary["changes_total"] >= RATE * DURATION_S / 2, summary
        assert all(summary["changes"].get(system, 0) > 0 for system in ("crm", "billing", "erp")), summary
        assert json.loads((tmp_path / "truth.json").read_text())["faults"] == []
        support.wait_caught_up(stack, int(time.time() * 1000) + sla_ms)
        time.sleep(3)  # rechecks sent as the last deadlines passed are processed within a commit interval
        assert support.alert_records(bootstrap) == []
