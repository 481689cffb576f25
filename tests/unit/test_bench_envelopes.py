"""Benchmark input replicas: every identifier renamed consistently, nothing else touched."""

from __future__ import annotations

import json

import pytest

from trueup.bench.envelopes import Raw, commit_ms, in_commit_order, load, replicate, rewrite, save


def envelope(after: dict, op: str = "c") -> bytes:
    return json.dumps({"before": None, "after": after, "op": op,
                       "source": {"lsn": 42, "ts_ms": 1795000000000, "table": "invoices"}}).encode()


INVOICE = Raw("billing.public.invoices", json.dumps({"id": "in_1"}).encode(),
              envelope({"id": "in_1", "customer_id": "cus_1", "erp_order_no": "SO1", "amount_due": "10.00",
                        "currency": "EUR"}))
ACCOUNT = Raw("crm.public.accounts", json.dumps({"payload": {"id": "ACC-1"}}).encode(),
              json.dumps({"payload": {"before": None, "after": {"id": "ACC-1", "domain": "acme.example",
                                                               "tax_id": "DE1", "name": "Acme"}, "op": "r"}}).encode())


def test_a_replica_renames_every_identifier_the_same_way_and_keeps_the_rest():
    out = rewrite(INVOICE, 3)
    after = json.loads(out.value)["after"]
    assert after == {"id": "in_1R3", "customer_id": "cus_1R3", "erp_order_no": "SO1R3", "amount_due": "10.00",
                     "currency": "EUR"}
    assert json.loads(out.key) == {"id": "in_1R3"}
    assert json.loads(out.value)["source"] == json.loads(INVOICE.value)["source"]


def test_schema_wrapped_records_domains_and_tax_ids_are_renamed_too():
    out = rewrite(ACCOUNT, 2)
    after = json.loads(out.value)["payload"]["after"]
    assert after["domain"] == "r2.acme.example" and after["tax_id"] == "DE1R2" and after["name"] == "Acme"
    assert json.loads(out.key) == {"payload": {"id": "ACC-1R2"}}


def test_replicate_streams_exactly_count_records_replica_by_replica():
    out = list(replicate([INVOICE, ACCOUNT], 5))
    assert len(out) == 5 and out[0] == INVOICE and out[1] == ACCOUNT
    ids = [json.loads(r.key).get("id") or json.loads(r.key)["payload"]["id"] for r in out]
    assert ids == ["in_1", "ACC-1", "in_1R1", "ACC-1R1", "in_1R2"]
    with pytest.raises(ValueError):
        next(replicate([], 1))


def change(topic: str, key: str, ts_ms: int, n: int) -> Raw:
    return Raw(topic, json.dumps({"id": key}).encode(),
               json.dumps({"payload": {"after": {"id": key, "n": n}, "source": {"ts_ms": ts_ms}}}).encode())


def test_captured_clumps_are_merged_by_commit_time_so_a_prefix_holds_every_table():
    accounts = [change("crm.public.accounts", f"A{i}", 1000 + 10 * i, i) for i in range(3)]
    invoices = [change("billing.public.invoices", f"I{i}", 1005 + 10 * i, i) for i in range(3)]
    merged = in_commit_order(accounts + invoices)
    assert [commit_ms(r) for r in merged] == [1000, 1005, 1010, 1015, 1020, 1025]
    assert {r.topic for r in merged[:2]} == {"crm.public.accounts", "billing.public.invoices"}


def test_one_keys_changes_keep_their_captured_order_even_when_their_times_do_not():
    # A clock step back between two commits of one row must not swap them: the row's order is its log's order.
    first, second = change("crm.public.accounts", "A1", 2000, 1), change("crm.public.accounts", "A1", 1990, 2)
    other = change("crm.public.accounts", "A2", 1995, 1)
    merged = in_commit_order([first, second, other])
    ns = [json.loads(r.value)["payload"]["after"]["n"] for r in merged if b"A1" in r.key]
    assert ns == [1, 2]
    assert len(merged) == 3


def test_saved_input_loads_in_commit_order(tmp_path):
    accounts = [change("crm.public.accounts", f"A{i}", 1000 + 10 * i, i) for i in range(2)]
    invoices = [change("billing.public.invoices", f"I{i}", 1005 + 10 * i, i) for i in range(2)]
    save(accounts + invoices, tmp_path / "in.jsonl")
    assert [commit_ms(r) for r in load(tmp_path / "in.jsonl")] == [1000, 1005, 1010, 1015]


def test_a_record_without_a_commit_time_counts_as_zero():
    assert commit_ms(Raw("t", None, b"not json")) == 0
    assert commit_ms(Raw("t", None, json.dumps({"op": "r"}).encode())) == 0
