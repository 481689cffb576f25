"""streams.topics: the catalog of every topic trueup creates."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.mapping import ENTITY_TYPES, load_mapping
from streams.topics import PROJECTIONS, catalog, raw_control_topics, raw_data_topics
from trueup.settings import TopicSettings

MAPPING = load_mapping(Path(__file__).resolve().parents[2] / "config" / "mapping.yaml")
ALL = ["crm", "billing", "erp"]


def _by_name(specs):
    return {s.name: s for s in specs}


@pytest.mark.parametrize("partitions", [1, 4, 7])
def test_catalog_contents(partitions):
    specs = catalog(MAPPING, ALL, TopicSettings(), partitions)
    names = [s.name for s in specs]
    assert len(names) == len(set(names)), "topic names must be unique"
    by = _by_name(specs)

    data = raw_data_topics(MAPPING, ALL)
    assert len(data) == 9
    for topic in data:
        assert by[topic].partitions == partitions
        assert not by[topic].compacted

    for source in ALL:
        assert by[f"{source}.public.trueup_heartbeat"].partitions == partitions
        assert by[f"{source}.public.debezium_signal"].partitions == partitions
        assert by[f"__debezium-heartbeat.{source}"].partitions == 1

    for entity in ENTITY_TYPES:
        spec = by[f"trueup.events.{entity}"]
        assert spec.partitions == partitions
        assert not spec.compacted

    assert set(PROJECTIONS) == {"account", "quote_to_cash", "invoice"}
    for projection in PROJECTIONS:
        spec = by[f"trueup.projections.{projection}"]
        assert spec.compacted
        assert spec.partitions == partitions

    assert by["trueup.alerts"].compacted
    assert by["trueup.alerts"].partitions == partitions
    assert not by["trueup.dlq"].compacted
    assert by["trueup.dlq"].partitions == partitions
    # Replays go back to the partition they came from, so the replay topic mirrors the raw topics.
    assert by["trueup.dlq.replay"].partitions == partitions

    assert by["trueup-links"].partitions == partitions and not by["trueup-links"].compacted
    assert by["trueup.poll.cursors"].compacted and by["trueup.poll.cursors"].partitions == 1

    # nothing unexpected: 9 data + 3x3 control + 9 events + 3 projections + alerts + dlq + replay + links + cursors
    assert len(specs) == 9 + 9 + 9 + 3 + 1 + 1 + 1 + 1 + 1


def test_control_topics_listed_for_each_source():
    assert raw_control_topics(MAPPING, ["crm"]) == [
        "crm.public.trueup_heartbeat", "crm.public.debezium_signal", "__debezium-heartbeat.crm",
    ]


def test_catalog_only_covers_the_given_sources():
    names = {s.name for s in catalog(MAPPING, ["billing"], TopicSettings(), 4)}
    assert "billing.public.invoices" in names
    assert "__debezium-heartbeat.billing" in names
    assert not any(n.startswith(("crm.", "erp.")) or n.endswith((".crm", ".erp")) for n in names)
    assert "trueup.alerts" in names


def test_catalog_uses_topic_settings():
    topics = TopicSettings(events_prefix="acme.ev", projections_prefix="acme.proj", alerts="acme.alerts",
                           dlq="acme.dead", dlq_replay="acme.dead.replay", poll_cursors="acme.cursors")
    names = {s.name for s in catalog(MAPPING, ALL, topics, 2, app_id="acme")}
    assert "acme.ev.invoice" in names
    assert "acme.proj.quote_to_cash" in names
    assert {"acme.alerts", "acme.dead", "acme.dead.replay"} <= names
    assert "acme-links" in names
    assert not any(n.startswith("trueup") for n in names)
