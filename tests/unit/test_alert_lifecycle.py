"""Alert lifecycle as plain data: open, evidence changes, resolve, reopen with occurrence + 1."""

from __future__ import annotations

import pytest

from streams.alert_lifecycle import Evidence, Finding, alert_key, transition

KEY = ("ar_posting_mismatch", "invoice", "in_1")


def finding(value="1020.00", severity="high"):
    return Finding(
        rule_id=KEY[0], severity=severity, entity_type=KEY[1], entity_id=KEY[2],
        message=f"Invoice in_1 for 1,200.00 EUR was posted to ERP as {value} EUR",
        evidence=(Evidence("billing", "invoices", "in_1", "amount_due", "1200.00", "lsn:10"),
                  Evidence("erp", "ar_postings", "AR1", "amount", value, "lsn:20")),
        correlation_id="billing-tx-5",
    )


def test_key_shape():
    assert finding().key == alert_key(*KEY) == "ar_posting_mismatch|invoice|in_1"


def test_first_finding_opens_an_alert():
    alert = transition(None, finding(), *KEY, now_ms=1000)
    assert alert["status"] == "open" and alert["occurrence"] == 1
    assert alert["first_seen"] == alert["last_seen"] == 1000
    assert alert["evidence"][1] == {"system": "erp", "table": "ar_postings", "key": "AR1", "field": "amount",
                                    "value": "1020.00", "position": "lsn:20"}
    assert alert["correlation_id"] == "billing-tx-5" and alert["deadline"] is None


def test_unchanged_evidence_publishes_nothing_and_changed_evidence_a_new_value():
    opened = transition(None, finding(), *KEY, now_ms=1000)
    assert transition(opened, finding(), *KEY, now_ms=2000) is None
    changed = transition(opened, finding("1100.00"), *KEY, now_ms=3000)
    assert changed["status"] == "open" and changed["occurrence"] == 1
    assert changed["first_seen"] == 1000 and changed["last_seen"] == 3000
    assert "1100.00" in changed["message"]


def test_convergence_resolves_and_divergence_reopens_with_occurrence_plus_one():
    opened = transition(None, finding(), *KEY, now_ms=1000)
    resolved = transition(opened, None, *KEY, now_ms=2000)
    assert resolved["status"] == "resolved" and resolved["last_seen"] == 2000 and resolved["first_seen"] == 1000
    assert transition(resolved, None, *KEY, now_ms=2500) is None
    reopened = transition(resolved, finding(), *KEY, now_ms=3000)
    assert reopened["status"] == "open" and reopened["occurrence"] == 2
    assert reopened["first_seen"] == 1000 and reopened["last_seen"] == 3000


def test_no_finding_and_no_alert_is_silent():
    assert transition(None, None, *KEY, now_ms=1) is None


def test_unknown_severity_is_refused():
    with pytest.raises(ValueError, match="severity"):
        transition(None, finding(severity="urgent"), *KEY, now_ms=1)


def test_alert_records_fit_the_avro_contract():
    from streams import avro_codec

    schemas = avro_codec.SchemaSet.load()
    opened = transition(None, finding(), *KEY, now_ms=1_700_000_000_000)
    resolved = transition(opened, None, *KEY, now_ms=1_700_000_001_000)
    for record in (opened, resolved):
        name, back = avro_codec.decode(avro_codec.encode_single_object(schemas, "trueup.alerts.Alert", record),
                                       schemas)
        assert name == "trueup.alerts.Alert"
        assert back["status"] == record["status"] and back["evidence"] == record["evidence"]
        assert int(back["first_seen"].timestamp() * 1000) == record["first_seen"]
