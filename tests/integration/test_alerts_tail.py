"""`trueup alerts tail` reads the alert topic of the real broker, filters, and prints lines or JSON lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from confluent_kafka import Producer

from streams.alert_lifecycle import Evidence, Finding, transition
from streams.encoding import Encoder

pytestmark = pytest.mark.integration


def _alert(rule, entity_id, severity, resolve=False):
    finding = Finding(rule, severity, "invoice", entity_id, f"Invoice {entity_id} for 1,200.00 EUR was posted "
                      "to ERP as 1,020.00 EUR", (Evidence("erp", "ar_postings", "AR1", "amount", "1020.00"),),
                      correlation_id="billing-tx-1")
    opened = transition(None, finding, rule, "invoice", entity_id, 1_700_000_000_000)
    return transition(opened, None, rule, "invoice", entity_id, 1_700_000_060_000) if resolve else opened


def _tail(stack, *args):
    env = dict(os.environ, TRUEUP_DATA_DIR=str(stack.data_dir))
    out = subprocess.run([sys.executable, "-m", "trueup.cli", "alerts", "tail", *args], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [line for line in out.stdout.splitlines() if line.strip()]


def test_alerts_tail_prints_filters_and_emits_json(stack, stack_status):
    encoder = Encoder()
    producer = Producer({"bootstrap.servers": stack_status["kafka"]["bootstrap"]})
    records = [_alert("posting_mismatch", "in_t1", "critical"), _alert("posting_mismatch", "in_t2", "critical",
                                                                        resolve=True),
               _alert("invoice_status_mismatch", "in_t3", "medium")]
    for record in records:
        key = f"{record['rule_id']}|invoice|{record['entity_id']}".encode()
        producer.produce("trueup.alerts", key=key, value=encoder.encode("trueup.alerts", "trueup.alerts.Alert",
                                                                       record))
    assert producer.flush(10) == 0

    lines = _tail(stack)
    assert any("OPEN" in l and "critical" in l and "invoice/in_t1" in l and "posted to ERP" in l for l in lines)
    assert any("RESOLVED" in l and "invoice/in_t2" in l for l in lines)
    only = _tail(stack, "--rule", "posting_mismatch", "--status", "open", "--json")
    parsed = [json.loads(l) for l in only]
    assert [a["entity_id"] for a in parsed if a["entity_id"].startswith("in_t")] == ["in_t1"]
    assert parsed[0]["evidence"][0]["value"] == "1020.00"
    medium = [json.loads(l) for l in _tail(stack, "--severity", "medium", "--json")]
    assert "in_t3" in {a["entity_id"] for a in medium} and all(a["severity"] == "medium" for a in medium), medium
