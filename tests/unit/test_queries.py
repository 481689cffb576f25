"""Query parameters, stable paging across workers' pages, and the JSON views of entities and projections."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from streams.join_driver import JoinDriver
from streams.queries import (
    BadParameter,
    alert_view,
    check_id,
    decode_cursor,
    encode_cursor,
    entity_view,
    page,
    parse_alert_query,
    projection_view,
)


def alert(n: int, rule="posting_mismatch", status="open", severity="critical", first_seen=None) -> dict:
    return {"rule_id": rule, "severity": severity, "entity_type": "invoice", "entity_id": f"in_{n:03d}",
            "status": status, "occurrence": 1, "message": f"Invoice in_{n:03d} ...", "evidence": [],
            "first_seen": 1_000 + (n // 3 if first_seen is None else first_seen), "last_seen": 5_000,
            "deadline": None, "correlation_id": "c"}


@pytest.mark.parametrize(("params", "name"), [
    ({"status": "closed"}, "status"), ({"severity": "urgent"}, "severity"), ({"rule": "nope"}, "rule"),
    ({"entity_type": "lead"}, "entity_type"), ({"limit": "0"}, "limit"), ({"limit": "1001"}, "limit"),
    ({"limit": "ten"}, "limit"), ({"limit": "9" * 40}, "limit"), ({"cursor": "!!"}, "cursor"),
    ({"cursor": encode_cursor((1, "k"))[:-3] + "x"}, "cursor"), ({"colour": "red"}, "colour"),
    ({"scope": "everywhere"}, "scope"),
])
def test_bad_parameters_are_named(params, name):
    with pytest.raises(BadParameter) as caught:
        parse_alert_query(params)
    assert caught.value.name == name and name in str(caught.value)


def test_ids_must_be_short_printable_text():
    assert check_id("id", "in_1") == "in_1"
    for bad in ("", "x" * 257, "a\x00b", "a\nb"):
        with pytest.raises(BadParameter):
            check_id("id", bad)


def test_cursor_round_trips():
    assert decode_cursor(encode_cursor((1_700_000_000_123, "rule|invoice|in_1"))) == (
        1_700_000_000_123, "rule|invoice|in_1")


def test_paging_merged_worker_pages_returns_every_alert_once_in_order():
    records = [alert(n) for n in range(50)]
    workers = [records[0::2], records[1::2]]  # two workers own half each
    seen, cursor = [], None
    while True:
        query = parse_alert_query({"limit": "7", **({"cursor": cursor} if cursor else {})})
        # Each worker answers its own page; the gathering worker pages their union with the same query.
        merged = [r for w in workers for r in page(w, query)[0]]
        items, cursor = page(merged, query)
        seen += [alert_view(r)["key"] for r in items]
        if cursor is None:
            break
    assert len(seen) == 50 and len(set(seen)) == 50
    assert seen == [alert_view(r)["key"] for r in sorted(records, key=lambda r: (r["first_seen"], alert_view(r)["key"]))]


def test_filters_and_views_of_already_viewed_records():
    records = [alert(1), alert(2, status="resolved"), alert(3, rule="orphan_payment", severity="high")]
    items, cursor = page(records, parse_alert_query({"status": "open", "severity": "critical"}))
    assert [r["entity_id"] for r in items] == ["in_001"] and cursor is None
    view = alert_view(records[0])
    assert view["first_seen"] == "1970-01-01T00:00:01.000Z" and view["key"] == "posting_mismatch|invoice|in_001"
    assert alert_view(view) == view  # gathered pages come back as views: paging them again changes nothing
    items, _ = page([view], parse_alert_query({}))
    assert items == [view]


def test_entity_and_projection_views_are_json_with_exact_money():
    driver = JoinDriver()
    driver.feed({"entity_type": "invoice", "entity_id": "in_1", "op": "create", "system": "billing",
                 "source_table": "invoices", "position": {"order": [1, 5, 5], "lsn": 5, "tx_id": 9},
                 "source_ts": datetime(2026, 1, 1, tzinfo=timezone.utc), "correlation_id": "c1",
                 "after": {"id": "in_1", "customer_id": "cus_1", "amount_due": {"amount": Decimal("10.10"),
                                                                                  "currency": "EUR"},
                           "status": "open"}})
    entity = entity_view("invoice", "in_1", driver.states["invoice|in_1"])
    assert entity["fields"]["amount_due"] == {"amount": "10.10", "currency": "EUR"}
    assert entity["source_ts"] == "2026-01-01T00:00:00Z" and entity["position"] == "lsn:5 tx:9"
    assert entity_view("invoice", "in_2", None) is None
    projection = projection_view("invoice", "in_1", driver.states["INV|in_1"])
    assert projection["id"] == "in_1" and projection["fields"]["amount_due"]["value"] == {
        "amount": "10.10", "currency": "EUR"}
    assert projection_view("invoice", "in_1", None) is None
