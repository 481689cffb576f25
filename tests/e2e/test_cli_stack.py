"""The CLI end to end: `trueup stack up`, `status --json`, a change counted by the worker, `stack down`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psycopg
import pytest

from trueup.stack.postgres import cluster_home
from trueup.stack.processes import alive


def _trueup(env, *args, timeout=400):
    return subprocess.run([sys.executable, "-m", "trueup.cli", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmd:
            found.append(f"{proc.name}: {cmd}")
    return found


@pytest.fixture
def data_dir():
    path = Path(tempfile.mkdtemp(prefix="trueup-e2e-"))
    yield path
    shutil.rmtree(cluster_home(path), ignore_errors=True)
    shutil.rmtree(path, ignore_errors=True)


def test_stack_up_status_flow_and_down_leaves_nothing(data_dir):
    env = dict(os.environ, TRUEUP_DATA_DIR=str(data_dir))
    up = _trueup(env, "stack", "up", "--workers", "1")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        status = json.loads(_trueup(env, "stack", "status", "--json").stdout)
        assert all(c["state"] == "up" for c in status["components"]), status
        pids = [c["pid"] for c in status["components"] if c.get("pid")]
        pg = next(c for c in status["components"] if c["name"] == "postgres")
        assert pg["state"] == "up"

        with psycopg.connect(status["postgres"]["erp"], autocommit=True) as conn:
            conn.execute("INSERT INTO customers (customer_no, name, country) VALUES ('C555001', 'E2E SA', 'FR')")
        deadline = time.monotonic() + 60
        counted = 0
        while time.monotonic() < deadline and not counted:
            with urllib.request.urlopen(status["api"]["url"] + "/counts", timeout=5) as resp:
                rows = json.loads(resp.read())["tables"]
            counted = next(r["changes"] for r in rows if (r["source"], r["table"]) == ("erp", "customers"))
            time.sleep(0.5)
        assert counted >= 1, "the worker never counted the ERP change"
        shown = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not shown:
            out = _trueup(env, "events", "erp_customer", "--id", "C555001", timeout=120)
            assert out.returncode == 0, out.stderr
            shown = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
            time.sleep(0.5)
        assert shown and shown[0]["op"] == "create" and shown[0]["after"]["name"] == "E2E SA"
    finally:
        down = _trueup(env, "stack", "down")
    assert down.returncode == 0, down.stderr
    time.sleep(0.5)
    assert [pid for pid in pids if alive(pid)] == []
    assert _processes_mentioning(str(data_dir)) == []
    after = json.loads(_trueup(env, "stack", "status", "--json").stdout)
    assert all(c["state"] == "down" for c in after["components"]), after


def test_bad_setting_fails_at_start_naming_the_variable(data_dir):
    env = dict(os.environ, TRUEUP_DATA_DIR=str(data_dir), TRUEUP_KAFKA__PARTITIONS="four")
    result = _trueup(env, "stack", "up")
    assert result.returncode != 0
    assert "TRUEUP_KAFKA__PARTITIONS" in result.stderr


def test_bad_connector_config_fails_naming_file_and_field(data_dir, tmp_path):
    bad = tmp_path / "crm.json"
    bad.write_text(json.dumps({"connector.class": "io.debezium.connector.postgresql.PostgresConnector",
                               "plugin.name": "pgoutput", "database.dbname": "crm", "topic.prefix": "crm",
                               "slot.name": "s", "publication.name": "p", "tasks.max": 1}))
    env = dict(os.environ, TRUEUP_DATA_DIR=str(data_dir), TRUEUP_KAFKA__BOOTSTRAP="127.0.0.1:1")
    result = _trueup(env, "connect", "debezium", "--config", str(bad))
    assert result.returncode != 0
    assert str(bad) in result.stderr and "tasks.max" in result.stderr
