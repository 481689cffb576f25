"""`trueup stack status --json` is the contract tools rely on (DESIGN.md)."""

from __future__ import annotations

import json
import urllib.request

import psycopg
import pytest

from tests.canonical import wait_until

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
    connectors = [c for c in stack.status()["components"] if c["name"].startswith("connector-")]
    assert len(connectors) == 3, connectors
    for comp in connectors:
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


def test_workers_and_connectors_serve_complete_metrics(stack, stack_status):
    """Every family an operator graphs (compose/grafana) is served, with samples from the seeded traffic."""
    families = ("trueup_events_in_total", "trueup_events_out_total", "trueup_records_in_total",
                "trueup_records_out_total", "trueup_processing_latency_seconds_bucket", "trueup_consumer_lag",
                "trueup_source_watermark_age_seconds", "trueup_join_messages_total",
                "trueup_watermark_stage_seconds_bucket")

    def scrape() -> str:
        with urllib.request.urlopen(stack_status["api"]["url"] + "/metrics", timeout=5) as resp:
            return resp.read().decode()

    # Lag and watermark age are set by the worker's watermark tick, a second or so after it is up.
    body = wait_until(scrape, lambda text: all(f"\n{f}{{" in text for f in families), 60, "every metric family")
    normalized = [line for line in body.splitlines()
                  if line.startswith('trueup_processing_latency_seconds_count{stage="normalized"}')]
    assert normalized and float(normalized[0].split()[-1]) >= 1
    # The join's stream passed over no links record: every offset there is a record.
    watched = [line for line in body.splitlines() if line.startswith(
        ("trueup_records_skipped_total{", "trueup_records_lost_total{", "trueup_records_missing{"))]
    assert len(watched) == 3 and all(line.endswith(" 0.0") for line in watched), watched
    connectors = [c for c in stack.status()["components"] if c["name"].startswith("connector-")]
    assert len(connectors) == 3, connectors
    for comp in connectors:
        assert comp["metrics_url"].startswith("http://127.0.0.1:"), comp
        with urllib.request.urlopen(comp["metrics_url"], timeout=5) as resp:
            text = resp.read().decode()
        assert f'trueup_connector_phase{{connector="{comp["source"]}",phase="streaming"}} 1.0' in text


def test_worker_log_lines_are_json_and_an_alert_line_carries_its_correlation_id(stack, stack_status):
    """A posting that disagrees with its invoice raises an alert; its log line names the change behind it."""
    import time
    import uuid

    n = uuid.uuid4().hex[:8]
    invoice = f"in_lg{n}"
    with psycopg.connect(stack_status["postgres"]["billing"], autocommit=True) as conn:
        conn.execute("INSERT INTO invoices (id, customer_id, amount_due, amount_paid, currency, status) VALUES "
                     "(%s, 'cus_snap01', 100.00, 0.00, 'EUR', 'open')", (invoice,))
    with psycopg.connect(stack_status["postgres"]["erp"], autocommit=True) as conn:
        conn.execute("INSERT INTO ar_postings (id, invoice_ref, customer_no, amount, currency) VALUES "
                     "(%s, %s, 'C900001', 90.00, 'EUR')", (f"AR8{int(n, 16) % 10**7}", invoice))
    log_path = stack.data_dir / "logs" / "worker-0.log"
    deadline = time.monotonic() + 90
    while True:
        lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
        ours = [line for line in lines if invoice in line["message"] and line["message"].startswith("alert ")]
        if ours or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert lines and all({"ts", "level", "logger", "message"} <= set(line) for line in lines)
    assert ours, f"no alert line for {invoice} in {log_path}"
    assert ours[0]["correlation_id"] and ours[0]["logger"] == "streams.join_agent"
