"""Benchmark input replicas: every identifier renamed consistently, nothing else touched."""

from __future__ import annotations

import json

import pytest

from trueup.bench.envelopes import Raw, replicate, rewrite


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
