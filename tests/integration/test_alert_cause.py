"""An alert names the change that raised it: for a duplicate account, the newer of the pair, on both alerts."""

from __future__ import annotations

import time
import uuid

import psycopg
import pytest

from tests import alert_support as support
from tests.canonical import wait_until

pytestmark = pytest.mark.integration


def _insert_account(dsn: str, account_id: str, domain: str) -> str:
    """Insert one account in its own transaction; the correlation id Debezium's source block gives it (tx id)."""
    with psycopg.connect(dsn) as conn:
        # Debezium reports PostgreSQL's 32-bit transaction id; a fresh cluster's txid_current() equals it.
        txid = conn.execute("SELECT txid_current() % 4294967296").fetchone()[0]
        conn.execute("INSERT INTO accounts (id, name, domain, status) VALUES (%s, %s, %s, 'active')",
                     (account_id, f"Twin {account_id}", domain))
    return f"crm-tx-{txid}"


def test_both_duplicate_alerts_name_the_newer_account_change(stack_status):
    n = uuid.uuid4().hex[:8]
    older, newer, domain = f"ACC-dupa{n}", f"ACC-dupb{n}", f"twins-{n}.example"
    crm = stack_status["postgres"]["crm"]
    _insert_account(crm, older, domain)
    time.sleep(0.05)  # commits in distinct milliseconds, so "newer" is decided by time, not the id tie-break
    cause = _insert_account(crm, newer, f"https://www.{domain}/")
    keys = {("duplicate_account", "account", older), ("duplicate_account", "account", newer)}

    def ours():
        return {k: r for k, r in support.latest(support.alert_records(stack_status["kafka"]["bootstrap"])).items()
                if k in keys}

    alerts = wait_until(ours, lambda found: set(found) == keys, 120, f"duplicate alerts for {older} and {newer}")
    assert {k: (r["status"], r["correlation_id"]) for k, r in alerts.items()} == {k: ("open", cause) for k in keys}
