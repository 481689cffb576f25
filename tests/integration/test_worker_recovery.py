"""Workers killed or stopped mid-stream: state and projections end equal to an oracle from the sources (own stacks)."""

from __future__ import annotations

import os
import signal
import time
from decimal import Decimal

import pytest

from tests.canonical import projections
from tests.integration.workload import PaymentWriter, paid_oracle, payment_links_oracle, touch_invoices
from tests.stack_support import running_stack
from trueup.stack.processes import alive, stop

pytestmark = pytest.mark.integration


def _paid(projection: dict | None) -> Decimal | None:
    if projection is None:
        return None
    return next((m["amount"] for m in projection["totals"]["paid"] if m["currency"] == "EUR"), Decimal("0.00"))


def _converged(bootstrap: str, billing: str, prefix: str, timeout_s: float = 120.0) -> tuple[dict, dict]:
    """Wait until every invoice projection's paid total and payment links equal the sources'."""
    deadline = time.monotonic() + timeout_s
    oracle, got = {}, {}
    while time.monotonic() < deadline:
        paid, links = paid_oracle(billing, prefix), payment_links_oracle(billing, prefix)
        oracle = {inv: (paid[inv], links[inv]) for inv in paid}
        latest = projections(bootstrap, "invoice")
        got = {inv: (_paid(latest.get(inv)), (latest.get(inv) or {}).get("links", {}).get("payments"))
               for inv in oracle}
        if got == oracle:
            return oracle, got
        time.sleep(1)
    return oracle, got


def _diff(oracle: dict, got: dict) -> dict:
    return {k: (oracle[k], got.get(k)) for k in oracle if oracle[k] != got.get(k)}


def test_worker_sigkill_mid_stream_recovers_without_double_counting():
    with running_stack("wkill", workers=1) as stack:
        status = stack.status()
        bootstrap, billing = status["kafka"]["bootstrap"], status["postgres"]["billing"]
        writer = PaymentWriter(billing, "wk", invoices=15, seed=3)
        writer.start()
        time.sleep(6)
        state = stack.state()
        pid = state.workers[0].pid
        os.kill(pid, signal.SIGKILL)
        while alive(pid):
            time.sleep(0.1)
        time.sleep(3)  # changes keep coming while the worker is dead
        stack.start_worker(state, 0)
        stack._wait(lambda: stack.worker_ready(state.workers[0]), "worker 0", state.workers[0], 180)
        time.sleep(3)
        writer.stop.set()
        writer.join(10)
        assert writer.error is None, writer.error
        touch_invoices(billing, "wk")
        oracle, got = _converged(bootstrap, billing, "wk")
        assert len(oracle) == 15 and writer.writes > 100
        assert got == oracle, f"projections differ from the sources: {_diff(oracle, got)}"


def test_two_workers_one_stops_and_the_survivor_state_is_complete():
    env = {"TRUEUP_WORKER__STANDBY_REPLICAS": "1"}
    with running_stack("handover", workers=2, env=env) as stack:
        status = stack.status()
        bootstrap, billing = status["kafka"]["bootstrap"], status["postgres"]["billing"]
        writer = PaymentWriter(billing, "ho", invoices=30, seed=5)
        writer.start()
        time.sleep(6)
        state = stack.state()
        stop(state.workers[1].pid, timeout=20)
        survivor = state.workers[0]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            health = stack.worker_health(survivor) or {}
            ours = [p for p in health.get("partitions", []) if p.startswith("trueup-links:")]
            if len(ours) == 4 and health.get("recovery") == "done":
                break
            time.sleep(1)
        assert len(ours) == 4, f"survivor did not take over every partition: {health}"
        time.sleep(2)
        writer.stop.set()
        writer.join(10)
        assert writer.error is None, writer.error
        # Every invoice recomputed from the survivor's restored tables.
        touch_invoices(billing, "ho")
        oracle, got = _converged(bootstrap, billing, "ho")
        assert len(oracle) == 30
        assert got == oracle, f"survivor state incomplete: {_diff(oracle, got)}"
