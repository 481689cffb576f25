"""Helpers for tests that wait on alerts: the alert topic's latest records and the workers' watermarks."""

from __future__ import annotations

import json
import urllib.request

from state.topic_end import read_to_end
from streams.encoding import Encoder
from tests import rules_oracle
from tests.canonical import wait_until
from trueup.query import watermark_ms
from trueup.settings import load_settings


def largest_sla_ms() -> int:
    rules = load_settings().rules
    return int(1000 * max(rules.subscription_sla_s, rules.sales_order_sla_s, rules.posting_sla_s,
                          rules.orphan_payment_sla_s, rules.dangling_reference_sla_s, rules.sync_sla_s))


def alert_records(bootstrap: str) -> list[dict]:
    encoder = Encoder()
    return [encoder.decode(rec.value)[1] for rec in read_to_end(bootstrap, ["trueup.alerts"], idle_s=0.5)]


def latest(records: list[dict]) -> dict[tuple[str, str, str], dict]:
    """The alert topic as a compacted view: the last record per (rule, entity type, entity id)."""
    return {(r["rule_id"], r["entity_type"], r["entity_id"]): r for r in records}


def get_json(url: str, token: str | None = None) -> dict:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=15) as resp:
        return json.loads(resp.read())


def health(stack, token: str | None = None) -> dict:
    return get_json(stack.status()["api"]["url"] + "/health", token)


def wait_caught_up(stack, past_ms: int, token: str | None = None, timeout_s: float = 180.0) -> None:
    """Every source's watermark is past past_ms and no rule check waits on any of them."""
    def done(sources):
        return all(watermark_ms(s) >= past_ms and s["waiting_alerts"] == 0 for s in sources.values())

    try:
        wait_until(lambda: health(stack, token)["sources"], done, timeout_s, f"watermarks past {past_ms}, none waiting")
    except AssertionError as exc:  # the message is cut short: name what each stuck barrier still waits for
        stuck = {name: s["barriers"] for name, s in health(stack, token)["sources"].items() if not done({name: s})}
        raise AssertionError(f"{exc}\nbarriers short of their ends: {stuck}") from None


def expected_alerts(ground_truth: dict) -> set[tuple[str, str, str]]:
    return {(a["rule_id"], a["entity_type"], a["entity_id"]) for f in ground_truth["faults"] for a in f["alerts"]}


def assert_sources_hold(dsns: dict[str, str], expected: set[tuple[str, str, str]]) -> None:
    """The rules read from the sources' rows by independent SQL (tests.rules_oracle) call for exactly `expected`."""
    found = rules_oracle.oracle(rules_oracle.load(dsns))
    assert found == expected, {"in the sources, not expected": sorted(found - expected),
                               "expected, not in the sources": sorted(expected - found)}
