"""A bucket's alerts: due candidates open, waiting ones hold, unbacked ones resolve, reopenings count."""

from __future__ import annotations

from streams.alert_lifecycle import Evidence, Finding
from streams.alerting import judge
from streams.rules import Candidate


def cand(value: str = "90.00", waits=(("erp", 1_000),), entity="in_1") -> Candidate:
    finding = Finding("posting_mismatch", "critical", "invoice", entity,
                      f"Invoice {entity} for 100.00 EUR was posted to ERP as {value} EUR",
                      (Evidence("erp", "ar_postings", "AR1", "amount", value, "lsn:1"),), None, "cid")
    return Candidate(finding, waits)


KEY = "posting_mismatch|invoice|in_1"


def test_a_candidate_waits_for_its_watermark_then_opens():
    v = judge({}, [cand()], {"erp": 999}, now_ms=5)
    assert v.publish == [] and v.alerts == {} and v.waiting == [("erp", 1_000, KEY)]
    v = judge({}, [cand()], {"erp": 1_000}, now_ms=6)
    [(key, record)] = v.publish
    assert key == KEY and record["status"] == "open" and record["first_seen"] == 6 and v.waiting == []


def test_changed_evidence_updates_an_open_alert_and_same_evidence_sends_nothing():
    opened = judge({}, [cand()], {"erp": 2_000}, 1).alerts
    assert judge(opened, [cand()], {"erp": 2_000}, 2).publish == []
    [(_, record)] = judge(opened, [cand("80.00")], {"erp": 2_000}, 3).publish
    assert record["message"].endswith("80.00 EUR") and record["first_seen"] == 1 and record["last_seen"] == 3


def test_an_open_alert_whose_candidate_waits_again_is_left_as_it_is():
    opened = judge({}, [cand()], {"erp": 2_000}, 1).alerts
    v = judge(opened, [cand("80.00", waits=(("erp", 5_000),))], {"erp": 2_000}, 2)
    assert v.publish == [] and v.alerts == opened and v.waiting == [("erp", 5_000, KEY)]


def test_convergence_resolves_and_divergence_reopens_with_the_next_occurrence():
    opened = judge({}, [cand()], {"erp": 2_000}, 1).alerts
    resolved = judge(opened, [], {"erp": 2_000}, 2)
    [(_, record)] = resolved.publish
    assert record["status"] == "resolved" and record["last_seen"] == 2
    assert judge(resolved.alerts, [], {"erp": 2_000}, 3).publish == []  # resolved once, not again
    [(_, again)] = judge(resolved.alerts, [cand()], {"erp": 2_000}, 4).publish
    assert again["status"] == "open" and again["occurrence"] == 2 and again["first_seen"] == 1


def test_alerts_of_other_entities_in_the_bucket_are_judged_independently():
    both = judge({}, [cand(entity="in_1"), cand(entity="in_2")], {"erp": 2_000}, 1).alerts
    v = judge(both, [cand(entity="in_2")], {"erp": 2_000}, 2)
    assert [(k, r["status"]) for k, r in v.publish] == [(KEY, "resolved")]
    assert v.alerts["posting_mismatch|invoice|in_2"]["status"] == "open"
