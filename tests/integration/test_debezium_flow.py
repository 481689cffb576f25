"""Changes in the three sources reach the raw topics as Debezium envelopes through the real stack."""

from __future__ import annotations

import uuid

import pytest

from tests.raw_topics import envelopes, for_key, wait_for
from tests.seed import SNAPSHOT_ROWS, execute

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("source,table,column,key", SNAPSHOT_ROWS)
def test_rows_present_before_start_arrive_through_the_snapshot(stack, stack_status, source, table, column, key):
    topic = f"{source}.public.{table}"
    records = for_key(envelopes(stack_status["kafka"]["bootstrap"], topic), column, key)
    assert records, f"{key} missing from {topic}"
    first = records[0]["value"]
    assert first["op"] == "r"
    assert first["after"][column] == key
    assert first["source"]["snapshot"] in ("true", "first", "last", "first_in_data_collection",
                                           "last_in_data_collection")


def _cases(suffix: str):
    """(source, table, key column, key, insert, update, delete, updated column, new value) per source."""
    acc, cus, cno = f"ACC-T{suffix}", f"cus_t{suffix}", f"C7{suffix}"
    return [
        ("crm", "accounts", "id", acc,
         ("INSERT INTO accounts (id, name, country, status) VALUES (%s, 'Flow AG', 'CH', 'prospect')", (acc,)),
         ("UPDATE accounts SET status = 'active' WHERE id = %s", (acc,)),
         ("DELETE FROM accounts WHERE id = %s", (acc,)),
         "status", "active"),
        ("billing", "customers", "id", cus,
         ("INSERT INTO customers (id, name, currency) VALUES (%s, 'Flow AG', 'CHF')", (cus,)),
         ("UPDATE customers SET delinquent = true WHERE id = %s", (cus,)),
         ("DELETE FROM customers WHERE id = %s", (cus,)),
         "delinquent", True),
        ("erp", "customers", "customer_no", cno,
         ("INSERT INTO customers (customer_no, name, country) VALUES (%s, 'Flow AG', 'CH')", (cno,)),
         ("UPDATE customers SET credit_hold = true WHERE customer_no = %s", (cno,)),
         ("DELETE FROM customers WHERE customer_no = %s", (cno,)),
         "credit_hold", True),
    ]


def test_insert_update_delete_arrive_with_before_after_and_tombstone(stack, stack_status):
    bootstrap = stack_status["kafka"]["bootstrap"]
    suffix = str(uuid.uuid4().int % 10**6).zfill(6)
    cases = _cases(suffix)
    for source, _table, _col, _key, insert, update, delete, *_ in cases:
        dsn = stack_status["postgres"][source]
        execute(dsn, *insert)
        execute(dsn, *update)
        execute(dsn, *delete)
    for source, table, column, key, _i, _u, _d, field, new_value in cases:
        topic = f"{source}.public.{table}"
        records = wait_for(bootstrap, topic, lambda rs: len(for_key(rs, column, key)) >= 4)
        row = for_key(records, column, key)
        ops = [r["value"]["op"] if r["value"] is not None else None for r in row]
        assert ops == ["c", "u", "d", None], f"{topic} {key}: {ops}"
        created, updated, deleted, tombstone = row
        assert created["value"]["before"] is None and created["value"]["after"][column] == key
        # REPLICA IDENTITY FULL: updates and deletes carry the whole before image.
        assert updated["value"]["before"][field] != new_value
        assert updated["value"]["after"][field] == new_value
        assert deleted["value"]["after"] is None
        assert deleted["value"]["before"]["name"] == "Flow AG"
        assert deleted["value"]["before"][field] == new_value
        assert tombstone["partition"] == deleted["partition"] and tombstone["offset"] > deleted["offset"]
        assert len({r["partition"] for r in row}) == 1, "one key, one partition"
        assert updated["value"]["source"]["db"] == source
        assert isinstance(updated["value"]["source"]["lsn"], int)


def test_money_arrives_as_exact_decimal_strings(stack, stack_status):
    bootstrap = stack_status["kafka"]["bootstrap"]
    key = f"in_money{uuid.uuid4().hex[:8]}"
    execute(stack_status["postgres"]["billing"],
            "INSERT INTO invoices (id, customer_id, amount_due, currency, status) "
            "VALUES (%s, 'cus_snap01', 1234567890123456.78, 'EUR', 'open')", (key,))
    records = wait_for(bootstrap, "billing.public.invoices", lambda rs: bool(for_key(rs, "id", key)))
    after = for_key(records, "id", key)[0]["value"]["after"]
    assert after["amount_due"] == "1234567890123456.78"
    assert after["amount_paid"] == "0.00"


def test_heartbeats_write_the_heartbeat_table_with_commit_times(stack, stack_status):
    bootstrap = stack_status["kafka"]["bootstrap"]
    for source in ("crm", "billing", "erp"):
        records = wait_for(bootstrap, f"{source}.public.trueup_heartbeat", lambda rs: len(rs) >= 2, timeout_s=30)
        times = [r["value"]["source"]["ts_ms"] for r in records if r["value"] is not None]
        assert times == sorted(times) and times[-1] > times[0]
