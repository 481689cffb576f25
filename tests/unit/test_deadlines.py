"""Deadlines come due by watermark, per source, each bucket once, without touching what is not due."""

from __future__ import annotations

from streams.deadlines import Deadlines


def test_due_buckets_come_out_once_and_others_stay():
    d = Deadlines()
    d.add("erp", 100, "INV|a")
    d.add("erp", 100, "INV|a")  # the same deadline twice is one entry
    d.add("erp", 300, "INV|b")
    d.add("billing", 50, "OPP|c")
    d.add("billing", 90, "INV|a")
    assert len(d) == 4
    assert d.due({"erp": 99, "billing": 10}) == []
    assert sorted(d.due({"erp": 150, "billing": 100})) == ["INV|a", "OPP|c"]
    assert d.waiting() == {"erp": {"buckets": 1, "next_ms": 300}}
    assert d.due({"erp": 150, "billing": 100}) == []
    assert d.due({"erp": 300}) == ["INV|b"] and len(d) == 0


def test_a_source_without_a_watermark_releases_nothing():
    d = Deadlines()
    d.add("crm", 0, "ACC|x")
    assert d.due({}) == [] and d.due({"crm": -1}) == [] and d.due({"crm": 0}) == ["ACC|x"]
    d.add("crm", 5, "ACC|y")
    d.clear()
    assert len(d) == 0 and d.waiting() == {}
