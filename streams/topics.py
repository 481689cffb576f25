"""Every topic trueup uses, named from settings and the mapping, so all processes agree on them."""

from __future__ import annotations

from dataclasses import dataclass

from streams.mapping import ENTITY_TYPES, Mapping, heartbeat_topic_of

PROJECTIONS = ("account", "quote_to_cash", "invoice")


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    compacted: bool = False


def raw_data_topics(mapping: Mapping, sources: list[str]) -> list[str]:
    return [topic for name in sources for topic in mapping.sources[name].data_topics]


def raw_control_topics(mapping: Mapping, sources: list[str]) -> list[str]:
    return [topic for name in sources for topic in mapping.sources[name].control_topics]


def links_topic(app_id: str) -> str:
    """The join engine's repartition topic: entity writes and link messages, placed by the bucket they write."""
    return f"{app_id}-links"


def events_topics(topics) -> list[str]:
    """The canonical events topics, one per entity type, named from the topics settings."""
    return [f"{topics.events_prefix}.{e}" for e in ENTITY_TYPES]


def join_input_topics(settings) -> tuple[str, ...]:
    """What the join agent reads: the links topic, and the canonical events topics while told to drain them."""
    events = events_topics(settings.topics) if settings.worker.join_reads_events else ()
    return (*events, links_topic(settings.worker.app_id))


def catalog(mapping: Mapping, sources: list[str], topics, partitions: int, app_id: str = "trueup") -> list[TopicSpec]:
    """Raw, event, projection, alert and dead-letter topics; trueup creates them explicitly."""
    specs = [TopicSpec(t, partitions) for t in raw_data_topics(mapping, sources)]
    for name in sources:
        prefix = mapping.sources[name].topic_prefix
        for t in mapping.sources[name].control_topics:
            specs.append(TopicSpec(t, 1 if t == heartbeat_topic_of(prefix) else partitions))
    specs += [TopicSpec(t, partitions) for t in events_topics(topics)]
    specs += [TopicSpec(f"{topics.projections_prefix}.{p}", partitions, compacted=True) for p in PROJECTIONS]
    specs.append(TopicSpec(topics.alerts, partitions, compacted=True))
    specs.append(TopicSpec(topics.dlq, partitions))
    # Replays land in the partition their record came from, so the replay topic mirrors the raw ones.
    specs.append(TopicSpec(topics.dlq_replay, partitions))
    specs.append(TopicSpec(links_topic(app_id), partitions))
    # Poller cursors: one key per poller and stream, the latest value wins.
    specs.append(TopicSpec(topics.poll_cursors, 1, compacted=True))
    return specs
