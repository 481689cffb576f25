"""`trueup simulate` against the running stack: rows land in all three sources and flow as canonical events."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psycopg
import pytest

from tests.canonical import events, wait_until

pytestmark = pytest.mark.integration


def test_simulate_writes_traffic_and_a_ground_truth(stack, stack_status, tmp_path):
    truth = tmp_path / "truth.json"
    env = dict(os.environ, TRUEUP_DATA_DIR=str(stack.data_dir))
    out = subprocess.run([sys.executable, "-m", "trueup.cli", "simulate", "--rate", "40", "--duration", "4",
                          "--seed", "4242", "--faults", "0.5", "--max-delay", "0.5", "--ground-truth", str(truth)],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["changes_total"] > 0 and all(summary["changes"][s] > 0 for s in ("crm", "billing", "erp"))
    ground = json.loads(truth.read_text())
    assert ground["seed"] == 4242 and ground["faults"]
    for fault in ground["faults"]:
        assert fault["alerts"] and all(set(a) >= {"rule_id", "entity_type", "entity_id"} for a in fault["alerts"])
    with psycopg.connect(stack_status["postgres"]["crm"]) as conn:
        accounts = [r[0] for r in conn.execute("SELECT id FROM accounts WHERE id LIKE 'ACC-S4242-%%'").fetchall()]
    assert accounts
    bootstrap = stack_status["kafka"]["bootstrap"]
    wait_until(lambda: {e["entity_id"] for e in events(bootstrap, "account")}, lambda ids: set(accounts) <= ids,
               what="simulated accounts as canonical events")
