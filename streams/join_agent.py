"""The join agents: canonical events and link messages in, link messages and projections out.

Thin edge over streams.joins: decode, apply to the bucket table, send. Link messages travel through the
`<app id>-links` repartition topic keyed by bucket, so every bucket lives on exactly one partition and a
join is a keyed lookup in the local table, never a scan.
"""

from __future__ import annotations

import pickle

import faust

from state.pickled_table import PickledTable
from streams import join_topology, projections
from streams.encoding import Encoder
from streams.joins import Message, apply
from streams.mapping import ENTITY_TYPES
from streams.topics import PROJECTIONS, links_topic
from trueup.settings import Settings

PROJECTION_SCHEMA = "trueup.projections.Projection"


def register(app: faust.App, settings: Settings, encoder: Encoder, metrics) -> None:
    events = app.topic(*[f"{settings.topics.events_prefix}.{e}" for e in ENTITY_TYPES],
                       key_serializer="raw", value_serializer="raw")
    links = app.topic(links_topic(settings.worker.app_id), key_serializer="raw", value_serializer="raw")
    outputs = {name: app.topic(f"{settings.topics.projections_prefix}.{name}", key_serializer="raw",
                               value_serializer="raw")
               for name in PROJECTIONS}
    buckets = PickledTable(app, "join_buckets", settings.kafka.partitions,
                           "Join buckets: members per root id, their routes and last emitted projections")

    async def process(message: Message, source: tuple) -> None:
        key = message.bucket.encode()
        state, out, accepted = apply(buckets.get(key), message, join_topology.emits, projections.projector,
                                     source=source)
        buckets.set(key, state)
        metrics.join_messages.labels("applied" if accepted else "redelivered").inc()
        for link in out.links:
            await links.send(key=link.bucket.encode(), value=pickle.dumps(link, protocol=4))
        for name, pid, record in out.projections:
            value = None if record is None else encoder.encode(outputs[name].get_topic_name(), PROJECTION_SCHEMA,
                                                               record)
            await outputs[name].send(key=pid.encode(), value=value,
                                     headers=[("correlation_id", (record or {}).get("correlation_id", "").encode())])
            metrics.projections_out.labels(name, "tombstone" if record is None else "update").inc()

    @app.agent(events, name="join_entities")
    async def join_entities(stream):
        async for event in stream.events():
            m = event.message
            _, canonical = encoder.decode(m.value)
            await process(join_topology.entity_message(canonical), (m.topic, m.partition, m.offset))

    @app.agent(links, name="join_links")
    async def join_links(stream):
        async for event in stream.events():
            m = event.message
            await process(pickle.loads(m.value), (m.topic, m.partition, m.offset))
