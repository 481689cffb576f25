"""`trueup connect debezium` killed with SIGKILL mid-stream loses no change (own stack: it kills a part)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter

import psycopg
import pytest

from tests.raw_topics import envelopes
from tests.stack_support import running_stack
from trueup.stack.processes import alive

pytestmark = pytest.mark.integration


class Writer(threading.Thread):
    """Inserts accounts one small transaction at a time until stopped; remembers every committed key."""

    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self.dsn = dsn
        self.committed: list[str] = []
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                n = 0
                while not self.stop.is_set():
                    key = f"ACC-K{n:06d}"
                    conn.execute(
                        "INSERT INTO accounts (id, name, country, status) VALUES (%s, %s, 'DE', 'active')",
                        (key, f"Crash Test {n}"),
                    )
                    self.committed.append(key)
                    n += 1
                    time.sleep(0.002)
        except BaseException as exc:  # surfaced by the test
            self.error = exc


def test_sigkill_mid_stream_loses_nothing():
    with running_stack("crash", workers=0) as stack:
        status = stack.status()
        bootstrap = status["kafka"]["bootstrap"]
        writer = Writer(status["postgres"]["crm"])
        writer.start()
        time.sleep(3)
        pid = stack.state().connectors["crm"].pid
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(pid)
        killed_at = len(writer.committed)
        time.sleep(3)  # changes committed while the connector is down
        writer.stop.set()
        writer.join(10)
        assert writer.error is None, writer.error
        assert len(writer.committed) > killed_at > 0
        crashed = next(c for c in stack.status()["components"] if c["name"] == "connector-crm")
        assert crashed["state"] == "failed"  # a dead component is reported, not hidden

        stack.start_connector(stack.state(), "crm")
        stack.wait_connector_streaming(stack.state(), "crm")
        expected = set(writer.committed)
        deadline = time.monotonic() + 120
        seen: Counter[str] = Counter()
        while time.monotonic() < deadline:
            seen = Counter(
                r["key"]["id"] for r in envelopes(bootstrap, "crm.public.accounts")
                if r["value"] is not None and r["value"]["op"] in ("c", "r")
            )
            if expected <= set(seen):
                break
            time.sleep(1)
        missing = expected - set(seen)
        assert not missing, f"{len(missing)} of {len(expected)} committed keys never reached the topic"
        duplicates = sum(count - 1 for count in seen.values() if count > 1)
        print(f"\n{len(expected)} keys written, {duplicates} duplicates after the crash (at-least-once)")
