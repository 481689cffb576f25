"""streams.raw_counts: per-table change and tombstone counters over the shipped mapping."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.mapping import load_mapping
from streams.raw_counts import RawCounts

MAPPING = Path(__file__).resolve().parents[2] / "config" / "mapping.yaml"


@pytest.fixture()
def counts():
    return RawCounts(load_mapping(MAPPING), ["crm", "billing", "erp"])


def _row(rows, source, table):
    [row] = [r for r in rows if r["source"] == source and r["table"] == table]
    return row


def test_fresh_counts_list_every_table_with_zeros(counts):
    rows = counts.as_rows()
    assert [(r["source"], r["table"]) for r in rows] == [
        ("crm", "accounts"), ("crm", "opportunities"),
        ("billing", "customers"), ("billing", "subscriptions"), ("billing", "invoices"), ("billing", "payments"),
        ("erp", "customers"), ("erp", "sales_orders"), ("erp", "ar_postings"),
    ]
    assert all(r["changes"] == 0 and r["tombstones"] == 0 for r in rows)


def test_changes_and_tombstones_are_counted_separately(counts):
    for _ in range(3):
        counts.observe("crm.public.accounts", b'{"op":"c"}')
    counts.observe("crm.public.accounts", None)
    counts.observe("billing.public.customers", b"{}")
    counts.observe("erp.public.customers", None)
    counts.observe("erp.public.customers", None)
    rows = counts.as_rows()
    assert _row(rows, "crm", "accounts") == {"source": "crm", "table": "accounts", "changes": 3, "tombstones": 1}
    assert _row(rows, "billing", "customers")["changes"] == 1
    assert _row(rows, "billing", "customers")["tombstones"] == 0
    assert _row(rows, "erp", "customers")["changes"] == 0
    assert _row(rows, "erp", "customers")["tombstones"] == 2
    assert sum(r["changes"] for r in rows) == 4
    assert sum(r["tombstones"] for r in rows) == 3


@pytest.mark.parametrize(
    "topic",
    ["crm.public.trueup_heartbeat", "billing.public.debezium_signal", "__debezium-heartbeat.erp",
     "crm.public.nope", "trueup.events.account", "trueup.dlq"],
)
def test_unknown_and_control_topics_are_ignored(counts, topic):
    counts.observe(topic, b"{}")
    counts.observe(topic, None)
    assert all(r["changes"] == 0 and r["tombstones"] == 0 for r in counts.as_rows())
    assert len(counts.as_rows()) == 9


def test_summary(counts):
    counts.observe("crm.public.accounts", b"{}")
    counts.observe("crm.public.accounts", b"{}")
    counts.observe("erp.public.ar_postings", b"{}")
    counts.observe("erp.public.ar_postings", None)
    assert counts.summary() == (
        "crm.accounts=2, crm.opportunities=0, billing.customers=0, billing.subscriptions=0, "
        "billing.invoices=0, billing.payments=0, erp.customers=0, erp.sales_orders=0, erp.ar_postings=1"
    )
