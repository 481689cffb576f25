"""Verification's pure parts: canonical fields back to source columns, hashes, buckets and drift classes."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

from streams.mapping import load_mapping
from streams.verify_core import (
    NULL,
    bucket_of,
    classify,
    differing,
    merge_sums,
    row_text,
    source_values,
    split,
    state_row_hash,
    text_hash,
)
from trueup.settings import PROJECT_ROOT

MAPPING = load_mapping(PROJECT_ROOT / "config" / "mapping.yaml")
INVOICES = MAPPING.sources["billing"].tables["invoices"]
CUSTOMERS = MAPPING.sources["billing"].tables["customers"]
OPPORTUNITIES = MAPPING.sources["crm"].tables["opportunities"]
AT = datetime(2026, 11, 20, 10, 0, 0, 123456, tzinfo=timezone.utc)


def test_money_fields_split_back_into_their_source_columns():
    fields = {"id": "in_1", "customer_id": "cus_1", "subscription_id": None, "erp_order_no": None,
              "amount_due": {"amount": Decimal("149.70"), "currency": "CHF"},
              "amount_paid": {"amount": Decimal("0.00"), "currency": "CHF"}, "status": "open", "issued_at": AT,
              "updated_at": AT}
    values = source_values(fields, INVOICES)
    assert values["amount_due"] == Decimal("149.70") and values["currency"] == "CHF"
    assert set(values) == set(INVOICES.columns)
    text = row_text(values, INVOICES)
    parts = dict(zip(sorted(INVOICES.columns), text.split("\x1f")))
    assert parts["amount_due"] == "149.70" and parts["amount_paid"] == "0.00"
    assert parts["issued_at"] == "1795168800123456" and parts["subscription_id"] == NULL


def test_the_renderings_pin_every_column_type():
    customer = {"id": "cus_1", "crm_account_id": None, "name": "A", "email": None, "currency": "EUR",
                "delinquent": False, "updated_at": AT}
    parts = dict(zip(sorted(CUSTOMERS.columns), row_text(source_values(customer, CUSTOMERS), CUSTOMERS).split("\x1f")))
    assert parts["delinquent"] == "false" and parts["currency"] == "EUR" and parts["crm_account_id"] == NULL
    opp = {"id": "O", "account_id": "A", "stage": "won", "amount": {"amount": Decimal("5"), "currency": "EUR"},
           "close_date": date(1970, 1, 11), "updated_at": AT}
    parts = dict(zip(sorted(OPPORTUNITIES.columns), row_text(source_values(opp, OPPORTUNITIES),
                                                             OPPORTUNITIES).split("\x1f")))
    assert parts["close_date"] == "10" and parts["amount"] == "5.00"


def test_hashes_and_buckets_are_md5_based_and_stable():
    # md5('abc') is the RFC 1321 test vector 900150983cd24fb0d6963f7d28e17f72: its first 64 bits, signed.
    assert text_hash("abc") == int("900150983cd24fb0", 16) - 2**64
    assert bucket_of("abc", 1 << 32) == int("90015098", 16) and bucket_of("abc", 256) == 0x98
    fields = {"id": "x", "crm_account_id": None, "name": "n", "email": None, "currency": None, "delinquent": True,
              "updated_at": AT}
    assert state_row_hash(fields, CUSTOMERS) != state_row_hash({**fields, "name": "m"}, CUSTOMERS)


def test_drift_classes_and_rows_newer_than_the_snapshot():
    source = {"a": 1, "b": 2, "c": 3}
    trueup = {"a": (1, 100), "b": (9, 100), "d": (4, 100), "c": (7, 999), "e": (5, 999)}
    assert classify(source, trueup, snapshot_ms=500) == {"b": "field_differs", "d": "extra_in_trueup"}
    assert classify({"x": 1}, {}, 0) == {"x": "missing_in_trueup"}


def test_worker_sums_add_up():
    assert merge_sums([{1: (2, 10)}, {1: (1, -3), 2: (1, 5)}]) == {1: (3, 7), 2: (1, 5)}


def test_a_delete_after_the_snapshot_is_no_drift_and_an_older_one_is():
    assert classify({"a": 1, "b": 2}, {"a": (None, 900), "b": (None, 100)}, snapshot_ms=500) == {
        "b": "missing_in_trueup"}
    assert classify({}, {"gone": (None, 100)}, snapshot_ms=500) == {}


def test_differing_buckets_and_their_split():
    assert differing({1: (2, 10), 2: (1, 5)}, {1: (2, 10), 3: (1, 1)}) == {2, 3}
    assert differing({4: (0, 0)}, {}) == set()
    assert split({3}, 4, 16) == {3, 7, 11, 15}
    # every key of a split bucket falls into one of its parts
    keys = [f"k{i}" for i in range(2000)]
    parts = split({5}, 16, 256)
    assert {k for k in keys if bucket_of(k, 16) == 5} == {k for k in keys if bucket_of(k, 256) in parts}
