"""A batch's counter increments reach prometheus once per label set, with their sum."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from streams.metric_tally import Tally


def test_increments_are_summed_per_label_set_and_added_on_flush():
    registry = CollectorRegistry()
    events = Counter("events", "events", ["source", "entity"], registry=registry)
    plain = Counter("plain", "plain", registry=registry)
    tally = Tally()
    for labels in [("crm", "account"), ("crm", "account"), ("billing", "invoice")]:
        tally.add(events, *labels)
    tally.add(plain)
    assert registry.get_sample_value("events_total", {"source": "crm", "entity": "account"}) is None
    tally.flush()
    tally.flush()  # nothing left to add twice
    assert registry.get_sample_value("events_total", {"source": "crm", "entity": "account"}) == 2
    assert registry.get_sample_value("events_total", {"source": "billing", "entity": "invoice"}) == 1
    assert registry.get_sample_value("plain_total") == 1
