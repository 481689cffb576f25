"""One bucket's alerts after a change or a passed deadline: candidates, watermarks and last states in, records out.

Pure: no Kafka, no Faust. A candidate whose waits are met becomes (or updates) its alert; one still waiting
leaves an open alert as it is and names the (system, commit time) it waits for; an alert no candidate backs
any more resolves, because the systems converged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from streams.alert_lifecycle import transition
from streams.rules import Candidate


@dataclass
class Verdict:
    alerts: dict  # alert key -> last record published (the bucket keeps it)
    publish: list[tuple[str, dict]] = field(default_factory=list)  # (alert key, record) to send
    waiting: list[tuple[str, int, str]] = field(default_factory=list)  # (system, commit time ms, alert key)


def judge(previous: dict, candidates: list[Candidate], watermarks: dict[str, int], now_ms: int) -> Verdict:
    alerts = dict(previous)
    verdict = Verdict(alerts)
    due, pending = {}, set()
    for c in candidates:
        key = c.finding.key
        if c.due(watermarks):
            due[key] = c.finding
        else:
            pending.add(key)
            verdict.waiting += [(system, at, key) for system, at in c.waits_for if watermarks.get(system, -1) < at]
    for key in sorted(set(due) | (set(previous) - pending)):
        finding = due.get(key)
        last = previous.get(key)
        rule_id, entity_type, entity_id = key.split("|", 2)
        record = transition(last, finding, rule_id, entity_type, entity_id, now_ms)
        if record is not None:
            alerts[key] = record
            verdict.publish.append((key, record))
    return verdict
