"""Alert lifecycle: a rule's finding (or its absence) against the alert's last state. Pure: no Kafka, no Faust.

One alert per (rule, entity), keyed "{rule_id}|{entity_type}|{entity_id}": a new value whenever the evidence
changes, `resolved` when the systems converge, `open` again with occurrence + 1 (first_seen kept) if they
diverge again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SEVERITIES = ("low", "medium", "high", "critical")


@dataclass(frozen=True)
class Evidence:
    system: str
    table: str
    key: str
    field: str
    value: str | None
    position: str | None = None

    def as_record(self) -> dict:
        return {"system": self.system, "table": self.table, "key": self.key, "field": self.field,
                "value": self.value, "position": self.position}


@dataclass(frozen=True)
class Finding:
    """A rule's verdict that systems disagree about one entity, with the evidence and a one-sentence message."""

    rule_id: str
    severity: str
    entity_type: str
    entity_id: str
    message: str
    evidence: tuple[Evidence, ...] = field(default_factory=tuple)
    deadline_ms: int | None = None
    correlation_id: str = ""

    @property
    def key(self) -> str:
        return alert_key(self.rule_id, self.entity_type, self.entity_id)


def alert_key(rule_id: str, entity_type: str, entity_id: str) -> str:
    return f"{rule_id}|{entity_type}|{entity_id}"


def transition(previous: dict | None, finding: Finding | None, rule_id: str, entity_type: str, entity_id: str,
               now_ms: int) -> dict | None:
    """The alert record to publish, or None when nothing changed.

    previous is the last record published for this key (None if never).
    """
    if finding is None:
        if previous is None or previous["status"] == "resolved":
            return None
        return {**previous, "status": "resolved", "last_seen": now_ms}
    if finding.severity not in SEVERITIES:
        raise ValueError(f"rule {finding.rule_id}: unknown severity {finding.severity!r}")
    evidence = [e.as_record() for e in finding.evidence]
    record = {
        "rule_id": finding.rule_id,
        "severity": finding.severity,
        "entity_type": finding.entity_type,
        "entity_id": finding.entity_id,
        "status": "open",
        "occurrence": 1,
        "message": finding.message,
        "evidence": evidence,
        "first_seen": now_ms,
        "last_seen": now_ms,
        "deadline": finding.deadline_ms,
        "correlation_id": finding.correlation_id,
    }
    if previous is None:
        return record
    if previous["status"] == "resolved":
        return {**record, "occurrence": previous["occurrence"] + 1, "first_seen": previous["first_seen"]}
    same = (previous["message"], previous["evidence"], previous["severity"], previous["deadline"]) == (
        record["message"], record["evidence"], record["severity"], record["deadline"])
    if same:
        return None
    return {**record, "occurrence": previous["occurrence"], "first_seen": previous["first_seen"]}
