"""`trueup stack status --json` is the contract tools rely on (DESIGN.md)."""

from __future__ import annotations

import json
import urllib.request

import psycopg
import pytest

pytestmark = pytest.mark.integration


def test_status_has_the_fixed_shape(stack_status):
    assert set(stack_status) >= {"kafka", "postgres", "api", "components"}
    host, _, port = stack_status["kafka"]["bootstrap"].rpartition(":")
    assert host == "127.0.0.1" and port.isdigit()
    assert set(stack_status["postgres"]) == {"crm", "billing", "erp"}
    assert stack_status["api"]["url"].startswith("http://127.0.0.1:")
    names = {c["name"] for c in stack_status["components"]}
    assert names == {"postgres", "broker", "connector-crm", "connector-billing", "connector-erp", "worker-0"}
    for comp in stack_status["components"]:
        assert comp["state"] == "up", comp


def test_dsns_are_usable_as_printed(stack_status):
    for source, dsn in stack_status["postgres"].items():
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT current_database()").fetchone()[0] == source
            assert conn.execute("SHOW wal_level").fetchone()[0] == "logical"


def test_connectors_report_phase_last_event_and_slot_lag(stack):
    status = stack.status()
    for comp in status["components"]:
        if comp["name"].startswith("connector-"):
            assert comp["phase"] == "streaming"
            assert comp["last_event_time"] is not None
            assert isinstance(comp["slot_lag_bytes"], int) and comp["slot_lag_bytes"] >= 0


def test_worker_serves_on_loopback_and_counts_raw_changes(stack, stack_status):
    url = stack_status["api"]["url"]
    with urllib.request.urlopen(url + "/counts", timeout=5) as resp:
        body = json.loads(resp.read())
    tables = {(row["source"], row["table"]): row["changes"] for row in body["tables"]}
    assert len(tables) == 9
    # The seeded snapshot rows were counted by the worker.
    assert tables[("crm", "accounts")] >= 1 and tables[("erp", "sales_orders")] >= 1


def test_every_server_binds_loopback_only(stack_status):
    import subprocess

    pids = {str(c["pid"]) for c in stack_status["components"] if c.get("pid")}
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
    ours = [line for line in out.splitlines() if any(f"pid={pid}," in line for pid in pids)]
    assert ours, "no listening sockets found for the stack's processes"
    for line in ours:
        local = line.split()[3]
        assert local.startswith("127.0.0.1:"), line
