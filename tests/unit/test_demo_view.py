"""The demo view from plain data: rates per source, watermark lag, alerts by rule and their sentences, API URL."""

from __future__ import annotations

from rich.console import Console

from trueup.demo_view import Snapshot, render


def snap(at: float, crm: int, alerts: list[dict]) -> Snapshot:
    by_rule: dict[str, int] = {}
    for a in alerts:
        by_rule[a["rule_id"]] = by_rule.get(a["rule_id"], 0) + 1
    return Snapshot(
        at=at, api_url="http://127.0.0.1:6100", bootstrap="127.0.0.1:9092",
        components=[{"name": "worker-0", "state": "up", "url": "http://127.0.0.1:6100"},
                    {"name": "connector-crm", "state": "up", "phase": "streaming", "records": 40,
                     "slot_lag_bytes": 0}],
        changes={"crm": crm, "billing": 7},
        sources={"crm": {"lag_seconds": 4.2, "waiting_alerts": 3}, "billing": {"lag_seconds": None}},
        open_by_rule=by_rule, newest=alerts, simulated={"changes": 120, "faults": 2})


def text_of(renderable) -> str:
    console = Console(record=True, width=200)
    console.print(renderable)
    return console.export_text()


def test_the_view_shows_rates_lag_alerts_and_where_to_query():
    alerts = [{"rule_id": "posting_amount_mismatch", "severity": "high", "last_seen": "2026-11-28T03:01:02Z",
               "message": "Invoice in_1 for 100.00 EUR was posted to ERP as 90.00 EUR"},
              {"rule_id": "posting_amount_mismatch", "severity": "high", "last_seen": "2026-11-28T03:00:02Z",
               "message": "Invoice in_2 for 5.00 EUR was posted to ERP as 4.00 EUR"}]
    out = text_of(render(snap(12.0, 150, alerts), snap(10.0, 100, [])))
    assert "http://127.0.0.1:6100" in out
    crm = next(line for line in out.splitlines() if "│ crm" in line)
    assert "150" in crm and "25.0" in crm and "4.2 s" in crm and "3" in crm
    assert "open alerts: 2" in out
    assert "Invoice in_1 for 100.00 EUR was posted to ERP as 90.00 EUR" in out
    assert "120 source row changes, 2 faults injected" in out


def test_the_first_frame_has_no_rates_and_a_source_without_watermark_shows_a_dash():
    out = text_of(render(snap(1.0, 10, []), None))
    billing = next(line for line in out.splitlines() if "│ billing" in line)
    assert "0.0" in billing and "-" in billing
    assert "open alerts: 0" in out
