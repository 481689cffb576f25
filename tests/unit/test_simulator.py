"""The simulator's plan as pure data: deterministic per seed, every fault kind in a 60 s run at 5 %, none at
0, ground-truth entries well formed, money exact, healthy traffic realistic and inside its delays."""

from __future__ import annotations

import json
import re
from collections import Counter
from decimal import Decimal

import pytest

from trueup.simulator import (
    ALERT_ENTITY_TYPES, ENTITY_TYPES, FAULT_KINDS, SOURCES, VARIANTS, Simulator, SimulatorError, build_plan,
)

ID_PATTERNS = {
    "account": r"^ACC-[A-Za-z0-9_-]+$",
    "opportunity": r"^OPP-[A-Za-z0-9_-]+$",
    "billing_customer": r"^cus_[A-Za-z0-9_-]+$",
    "subscription": r"^sub_[A-Za-z0-9_-]+$",
    "invoice": r"^in_[A-Za-z0-9_-]+$",
    "payment": r"^(py|pi|ch|re)_[A-Za-z0-9_-]+$",
    "erp_customer": r"^C-?[0-9][0-9-]*$",
    "sales_order": r"^SO-?[0-9][0-9-]*$",
    "ar_posting": r"^AR-?[0-9][0-9-]*$",
}
DSNS = {s: f"postgresql://nobody@127.0.0.1:1/{s}" for s in SOURCES}


def fingerprint(plan) -> list:
    return [(w.at, w.source, w.label, w.statements, w.journey) for w in plan.writes]


@pytest.fixture(scope="module")
def minute():
    """The spec's reference run: 60 s at ~50 changes/s with 5 % faults."""
    return build_plan(seed=42, rate=50, duration_s=60, faults=0.05)


def test_the_same_seed_plans_the_same_statements(minute):
    again = build_plan(seed=42, rate=50, duration_s=60, faults=0.05)
    assert fingerprint(again) == fingerprint(minute)
    assert [f.ground_truth() for f in again.faults] == [f.ground_truth() for f in minute.faults]
    other = build_plan(seed=43, rate=50, duration_s=60, faults=0.05)
    assert fingerprint(other) != fingerprint(minute)


@pytest.mark.parametrize("seed", [0, 1, 7, 42, 1234, 2**40 + 3])
def test_a_60s_run_at_5_percent_contains_every_fault_kind_early(seed):
    plan = build_plan(seed=seed, rate=50, duration_s=60, faults=0.05)
    first_at = {}
    for fault in plan.faults:
        first_at.setdefault(fault.kind, plan.journeys[fault.journey]["start"])
    assert set(first_at) == set(FAULT_KINDS)
    assert max(first_at.values()) <= 31  # each kind's journey starts within the first half


def test_faults_follow_the_rate_beyond_the_guaranteed_set():
    plan = build_plan(seed=3, rate=50, duration_s=1200, faults=0.05)
    share = len(plan.faults) / len(plan.journeys)
    assert 0.04 < share < 0.09
    # Variants rotate: a long run shows every way each kind can happen.
    seen = {(f.kind, f.variant) for f in plan.faults}
    assert seen == {(k, v) for k, vs in VARIANTS.items() for v in vs}


def test_no_fault_at_rate_zero():
    plan = build_plan(seed=42, rate=50, duration_s=60, faults=0)
    assert plan.faults == [] and set(plan.fault_counts().values()) == {0}
    assert {info["kind"] for info in plan.journeys.values()} == {"won", "lost"}
    assert not any(w.label.startswith(("payment.orphan", "payment.duplicate", "account.create_duplicate",
                                       "erp_customer.credit_hold")) for w in plan.writes)
    assert not any("credit_hold" in sql and True in params for w in plan.writes for sql, params in w.statements)


def test_ground_truth_entries_are_well_formed(minute):
    for fault in minute.faults:
        entry = json.loads(json.dumps(fault.ground_truth("2026-01-01T00:00:00.000+00:00")))
        assert entry["kind"] in FAULT_KINDS and entry["variant"] in VARIANTS[entry["kind"]]
        assert entry["at"] and entry["journey"] == fault.journey
        assert entry["alerts"], entry
        for alert in entry["alerts"]:
            assert set(alert) == {"rule_id", "entity_type", "entity_id"}
            assert alert["rule_id"] == entry["kind"]
            assert alert["entity_type"] in ENTITY_TYPES
            assert alert["entity_type"] in ALERT_ENTITY_TYPES[entry["kind"]]
            assert re.match(ID_PATTERNS[alert["entity_type"]], alert["entity_id"]), alert
        expected = 2 if entry["kind"] == "duplicate_account" else 1
        assert len({(a["entity_type"], a["entity_id"]) for a in entry["alerts"]}) == expected
        # The fault's defining write belongs to its journey and comes no later than the journey's end.
        write = minute.writes[fault.write]
        assert write.journey == fault.journey and write.at == fault.at
        assert fault.write <= minute.journeys[fault.journey]["last"]


def test_alerts_never_overlap_between_faults(minute):
    alerts = Counter(a for f in minute.faults for a in f.alerts)
    assert max(alerts.values()) == 1


def test_money_is_decimal_to_the_cent_and_never_float(minute):
    for w in minute.writes:
        for sql, params in w.statements:
            assert sql.count("%s") == len(params)
            for value in params:
                assert not isinstance(value, float), (w.label, sql)
                if isinstance(value, Decimal):
                    assert value == value.quantize(Decimal("0.01")) and value >= 0


def test_rate_is_business_changes_per_second(minute):
    rows = sum(minute.rows_by_source().values())
    assert 0.8 * 50 * 60 < rows < 1.2 * 50 * 60
    assert all(n > 0 for n in minute.rows_by_source().values())


def test_healthy_traffic_is_a_realistic_mix(minute):
    labels = Counter(w.label for w in minute.writes)
    for label in ("opportunity.closed_won", "opportunity.closed_lost", "billing.provision", "erp.book",
                  "invoice.issue", "invoice.installments", "ar_posting.post", "payment.charge", "payment.partial",
                  "payment.failed", "payment.pending", "payment.settle", "payment.refund", "subscription.amend",
                  "sales_order.amend", "subscription.cancel", "sales_order.close"):
        assert labels[label] > 0, label
    lost = sum(1 for info in minute.journeys.values() if info["kind"] == "lost")
    assert 0.1 < lost / len(minute.journeys) < 0.3


def test_writes_are_in_time_order_and_journeys_pause_at_most_max_delay():
    plan = build_plan(seed=9, rate=40, duration_s=30, faults=0.1, max_delay_s=0.7)
    assert [w.at for w in plan.writes] == sorted(w.at for w in plan.writes)
    last_at: dict[int, float] = {}
    for w in plan.writes:
        if w.journey in last_at:
            assert 0 < w.at - last_at[w.journey] <= 0.7 + 1e-6
        last_at[w.journey] = w.at
    assert all(info["start"] < 30 for info in plan.journeys.values())


def test_ids_are_unique_per_seed_and_never_shared_between_seeds():
    def inserted_ids(plan) -> list[str]:
        return [params[0] for w in plan.writes for sql, params in w.statements if sql.startswith("INSERT")]

    a, b = inserted_ids(build_plan(1, 50, 30, 0.1)), inserted_ids(build_plan(2, 50, 30, 0.1))
    assert len(a) == len(set(a)) and not set(a) & set(b)


def test_fault_free_domains_and_tax_ids_are_unique(minute):
    domains, tax_ids = Counter(), Counter()
    for w in minute.writes:
        for sql, params in w.statements:
            if sql.startswith("INSERT INTO accounts"):
                columns = sql[sql.index("(") + 1:sql.index(")")].split(", ")
                row = dict(zip(columns, params))
                domains[row["domain"].lower().removeprefix("www.")] += 1
                tax_ids[row["tax_id"]] += 1
    shared = [d for d, n in domains.items() if n > 1] + [t for t, n in tax_ids.items() if n > 1]
    duplicates = [f for f in minute.faults if f.kind == "duplicate_account"]
    assert len(shared) == len(duplicates)


def test_simulator_plans_without_a_database_and_rejects_bad_arguments(tmp_path):
    sim = Simulator(DSNS, rate=50, duration_s=60, seed=42, faults=0.05, ground_truth=tmp_path / "gt.json")
    assert fingerprint(sim.plan) == fingerprint(build_plan(42, 50, 60, 0.05, 2.0))
    truth = sim.ground_truth()
    assert truth["faults"] == [] and set(truth) >= {"seed", "rate", "duration_s", "faults", "counts"}
    with pytest.raises(SimulatorError):
        Simulator({"crm": "x", "billing": "y"}, rate=1, duration_s=1, seed=1, faults=0)
    for bad in ({"rate": 0}, {"faults": 1.5}, {"duration_s": -1}):
        args = {"rate": 10, "duration_s": 1, "faults": 0.1} | bad
        with pytest.raises(SimulatorError):
            build_plan(seed=1, **args)
