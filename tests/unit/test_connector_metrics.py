"""A connector's /metrics: families read from its live status at scrape time."""

from __future__ import annotations

import time
import urllib.request

from connectors.metrics_server import serve_metrics
from connectors.status import ConnectorStatus


def test_metrics_follow_the_status_and_are_served_on_loopback():
    status = ConnectorStatus(name="crm", phase="streaming", records=12, batches=3, errors=1, offsets_restored=1,
                             last_event_time_ms=int(time.time() * 1000) - 2000)
    url = serve_metrics(status, "127.0.0.1", 0)
    assert url.startswith("http://127.0.0.1:") and status.metrics_url == url
    body = urllib.request.urlopen(url, timeout=5).read().decode()
    assert 'trueup_connector_records_total{connector="crm"} 12.0' in body
    assert 'trueup_connector_offsets_restored_total{connector="crm"} 1.0' in body
    assert 'trueup_connector_phase{connector="crm",phase="streaming"} 1.0' in body
    assert 'trueup_connector_phase{connector="crm",phase="snapshot"} 0.0' in body
    status.records = 20
    body = urllib.request.urlopen(url, timeout=5).read().decode()
    assert 'trueup_connector_records_total{connector="crm"} 20.0' in body
    age = [line for line in body.splitlines() if line.startswith("trueup_connector_last_event_age_seconds")]
    assert age and 1.5 < float(age[0].split()[-1]) < 60
