"""The entity writes the normalizer bundles for the join: the same messages the join made from the Avro events.

Since the join reads an entity's own bucket write from the links topic instead of decoding its canonical event,
the message built from the normalizer's dict must equal the one built from that dict's Avro round trip, or a
bucket written before and after the change would mix two forms of one value.
"""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer

from streams.encoding import Encoder
from streams.join_topology import entity_message
from streams.link_bundles import pack, unpack
from streams.normalize_agent import EVENT_SCHEMA, _for_avro
from streams.normalizer import Parsed, finish, parse
from streams.topics import join_input_topics, links_topic
from streams.values import timestamp_of_ms
from tests.unit.envelopes import TABLES, data_record, shipped_mapping


@pytest.fixture(scope="module")
def mapping():
    return shipped_mapping()


def canonical(mapping, system: str, table: str, op: str) -> dict:
    parsed = parse(data_record(system, table, op), mapping)
    assert isinstance(parsed, Parsed), parsed
    event, _, _ = finish(parsed, None, 1_795_814_156_000, ("raw", 0, 7))
    assert event is not None
    return event


@pytest.mark.parametrize("op", ["c", "u", "d"])
@pytest.mark.parametrize("table", TABLES, ids=lambda t: f"{t[0]}.{t[1]}")
def test_entity_write_equals_the_one_made_from_the_decoded_event(mapping, table, op):
    event = canonical(mapping, *table, op)
    encoder = Encoder()
    _, decoded = encoder.decode(encoder.encode(f"trueup.events.{event['entity_type']}", EVENT_SCHEMA,
                                               _for_avro(event)))
    ours, theirs = entity_message(event), entity_message(decoded)
    assert ours == theirs
    # equal is not enough where types differ but compare equal (an int and a float, 5 and Decimal 5)
    assert repr(ours) == repr(theirs)


def test_entity_writes_survive_a_bundle(mapping):
    writes = [entity_message(canonical(mapping, *table, "u")) for table in TABLES]
    bundles = list(pack(writes, lambda bucket: 0, max_links=500, max_bytes=1 << 20))
    assert [p for p, _ in bundles] == [0]
    back = unpack(bundles[0][1], ("links", 0, 41))
    assert [m for m, _ in back] == writes
    assert [source for _, source in back] == [("links", 0, 41, i) for i in range(len(writes))]


@pytest.mark.parametrize("ms", [0, 1, 1_795_814_155_780, 253_402_300_799_999, -86_400_001])
def test_timestamp_of_ms_is_what_avro_decodes(ms):
    schema = parse_schema({"type": "record", "name": "T", "fields": [
        {"name": "t", "type": {"type": "long", "logicalType": "timestamp-millis"}}]})
    out = io.BytesIO()
    schemaless_writer(out, schema, {"t": ms})
    out.seek(0)
    decoded = schemaless_reader(out, schema)["t"]
    assert timestamp_of_ms(ms) == decoded and repr(timestamp_of_ms(ms)) == repr(decoded)
    assert timestamp_of_ms(decoded) is decoded  # a datetime passes as it is
    assert timestamp_of_ms(None) is None


def settings(join_reads_events: bool):
    return SimpleNamespace(topics=SimpleNamespace(events_prefix="t.events"),
                           worker=SimpleNamespace(app_id="app", join_reads_events=join_reads_events))


def test_the_join_reads_the_links_topic_alone_unless_told_to_drain_the_events_topics():
    assert join_input_topics(settings(False)) == (links_topic("app"),)
    draining = join_input_topics(settings(True))
    assert draining[-1] == links_topic("app")
    assert set(draining[:-1]) == {f"t.events.{e}" for e in ("account", "opportunity", "billing_customer",
                                                            "subscription", "invoice", "payment", "erp_customer",
                                                            "sales_order", "ar_posting")}
