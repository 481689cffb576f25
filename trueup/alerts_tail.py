"""`trueup alerts tail`: the alert topic as readable lines or JSON lines, from any Kafka, optionally following."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime

from state.topic_end import read_to_end
from streams.encoding import Encoder


def matches(alert: dict, rule: str | None, severity: str | None, status: str | None) -> bool:
    return ((rule is None or alert["rule_id"] == rule) and (severity is None or alert["severity"] == severity)
            and (status is None or alert["status"] == status))


def line(alert: dict) -> str:
    """One readable line: when, status, severity, rule, entity, occurrence and the sentence."""
    seen = alert["last_seen"]
    when = seen.strftime("%Y-%m-%d %H:%M:%S") if isinstance(seen, datetime) else str(seen)
    again = f" (#{alert['occurrence']})" if alert.get("occurrence", 1) > 1 else ""
    return (f"{when}  {alert['status'].upper():8} {alert['severity']:8} {alert['rule_id']}  "
            f"{alert['entity_type']}/{alert['entity_id']}{again}: {alert['message']}")


def as_json(alert: dict) -> str:
    return json.dumps(alert, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v))


def tail(bootstrap: str, topic: str, encoder: Encoder, follow: bool, idle_s: float = 1.0) -> Iterator[dict]:
    """Every alert record from the start; with follow, keep waiting for new ones."""
    for record in read_to_end(bootstrap, [topic], idle_s=idle_s, follow=follow):
        if record.value is not None:  # None: a compacted-away alert
            yield encoder.decode(record.value)[1]
