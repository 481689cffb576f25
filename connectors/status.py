"""A connector's progress, written atomically to a JSON file that `trueup stack status` reads."""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class ConnectorStatus:
    name: str
    pid: int = field(default_factory=os.getpid)
    phase: str = "starting"  # starting | snapshot | streaming | failed | stopped
    records: int = 0
    batches: int = 0
    snapshot_records: int = 0
    offsets_restored: int = 0  # starts that put the kept copy back over a broken offsets file
    last_event_time_ms: int | None = None  # source commit time of the newest record seen
    last_batch_at: float | None = None
    error: str | None = None
    updated_at: float = 0.0
    # pollers only
    cursors: dict = field(default_factory=dict)  # stream -> readable cursor
    last_poll_at: float | None = None
    rows_per_poll: int | None = None
    errors: int = 0  # transient errors retried so far
    metrics_url: str | None = None  # where this process serves Prometheus /metrics

    def write(self, path: Path) -> None:
        self.updated_at = time.time()
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        os.replace(tmp, path)


def read_status(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


class StatusWriter(threading.Thread):
    """Flushes the status to disk once a second so readers never wait on the engine."""

    def __init__(self, status: ConnectorStatus, path: Path, interval: float = 1.0) -> None:
        super().__init__(name=f"status-{status.name}", daemon=True)
        self.status, self.path, self.interval = status, path, interval
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            self.status.write(self.path)

    def close(self) -> None:
        self._halt.set()
        self.status.write(self.path)
