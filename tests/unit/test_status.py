"""connectors.status: the connector status file `trueup stack status` reads."""

from __future__ import annotations

import os
import time
from dataclasses import asdict

from connectors.status import ConnectorStatus, StatusWriter, read_status


def test_write_read_roundtrip(tmp_path):
    path = tmp_path / "status.json"
    status = ConnectorStatus(name="billing", phase="streaming", records=12, batches=3, snapshot_records=9,
                             last_event_time_ms=1_700_000_000_000, last_batch_at=123.5, error=None)
    before = time.time()
    status.write(path)
    data = read_status(path)
    assert data == asdict(status)
    assert data["name"] == "billing"
    assert data["pid"] == os.getpid()
    assert data["phase"] == "streaming"
    assert data["records"] == 12
    assert data["last_event_time_ms"] == 1_700_000_000_000
    assert data["updated_at"] >= before


def test_write_replaces_atomically_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "status.json"
    status = ConnectorStatus(name="crm")
    status.write(path)
    status.phase = "failed"
    status.error = "boom"
    status.write(path)
    assert read_status(path)["phase"] == "failed"
    assert read_status(path)["error"] == "boom"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["status.json"]


def test_read_status_missing_file(tmp_path):
    assert read_status(tmp_path / "absent.json") is None


def test_read_status_garbage(tmp_path):
    path = tmp_path / "status.json"
    for text in ["", "{not json", '{"name": "crm", "pha'] :
        path.write_text(text)
        assert read_status(path) is None, text


def test_read_status_of_a_directory(tmp_path):
    assert read_status(tmp_path) is None


def test_status_writer_writes_periodically_and_final_state_on_close(tmp_path):
    path = tmp_path / "status.json"
    status = ConnectorStatus(name="erp")
    writer = StatusWriter(status, path, interval=0.02)
    writer.start()
    try:
        deadline = time.monotonic() + 2
        while read_status(path) is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert read_status(path)["name"] == "erp"  # the periodic flush happened
        status.records = 5
        status.phase = "stopped"
    finally:
        writer.close()
    data = read_status(path)
    assert data["records"] == 5
    assert data["phase"] == "stopped"


def test_status_writer_thread_can_be_joined(tmp_path):
    # BUG: StatusWriter.__init__ sets self._stop = threading.Event(), shadowing threading.Thread._stop(),
    # which Thread.join()/is_alive() call once the thread has ended -> TypeError: 'Event' object is not callable.
    writer = StatusWriter(ConnectorStatus(name="erp"), tmp_path / "status.json", interval=0.02)
    writer.start()
    writer.close()
    writer.join(2)
    assert not writer.is_alive()
