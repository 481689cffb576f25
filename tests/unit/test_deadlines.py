"""Deadlines come due by watermark, per source and hop count, each bucket once, without touching what is not due."""

from __future__ import annotations

from streams.deadlines import Deadlines


def flat(marks: dict[str, int]):
    """The same marks whatever the hop count."""
    return lambda hops: marks


def test_due_buckets_come_out_once_and_others_stay():
    d = Deadlines()
    d.add("erp", 100, "INV|a", 1)
    d.add("erp", 100, "INV|a", 1)  # the same deadline twice is one entry
    d.add("erp", 300, "INV|b", 1)
    d.add("billing", 50, "OPP|c", 3)
    d.add("billing", 90, "INV|a", 1)
    assert len(d) == 4
    assert d.due(flat({"erp": 99, "billing": 10})) == []
    assert sorted(d.due(flat({"erp": 150, "billing": 100}))) == ["INV|a", "OPP|c"]
    assert d.waiting() == {"erp": {"buckets": 1, "next_ms": 300}}
    assert d.due(flat({"erp": 150, "billing": 100})) == []
    assert d.due(flat({"erp": 300})) == ["INV|b"] and len(d) == 0


def test_a_deadline_comes_due_by_the_watermark_after_its_buckets_hops():
    d = Deadlines()
    d.add("billing", 100, "INV|a", 1)
    d.add("billing", 100, "OPP|c", 3)
    d.add("billing", 200, "OPP|d", 3)
    marks = {1: {"billing": 150}, 3: {"billing": 50}}  # one hop passed 150, three hops only 50
    assert d.due(marks.__getitem__) == ["INV|a"]
    assert d.waiting() == {"billing": {"buckets": 2, "next_ms": 100}}
    marks[3] = {"billing": 150}
    assert d.due(marks.__getitem__) == ["OPP|c"]


def test_a_source_without_a_watermark_releases_nothing():
    d = Deadlines()
    d.add("crm", 0, "ACC|x", 2)
    assert d.due(flat({})) == [] and d.due(flat({"crm": -1})) == [] and d.due(flat({"crm": 0})) == ["ACC|x"]
    d.add("crm", 5, "ACC|y", 2)
    d.clear()
    assert len(d) == 0 and d.waiting() == {}
