"""connectors.debezium_runner: phase tracking from envelopes, and the batch forwarder (fake producer)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest
from confluent_kafka import KafkaException
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.debezium_config import ConnectorConfig
from connectors.debezium_runner import KafkaForwarder, is_snapshot_record, mark_topic, observe
from connectors.status import ConnectorStatus

DATA_TOPIC = "crm.public.accounts"


def _envelope(snapshot=None, ts_ms=1_700_000_000_123, op="r", wrap=False) -> str:
    source = {"connector": "postgresql", "db": "crm", "table": "accounts", "ts_ms": ts_ms}
    if snapshot is not None:
        source["snapshot"] = snapshot
    payload = {"before": None, "after": {"id": "ACC-1"}, "source": source, "op": op, "ts_ms": 1_700_000_000_999}
    if wrap:
        return json.dumps({"schema": {"type": "struct", "optional": False}, "payload": payload})
    return json.dumps(payload)


# ---- observe ------------------------------------------------------------------------------------


def test_new_status_is_starting():
    status = ConnectorStatus(name="crm")
    assert status.phase == "starting"
    assert status.snapshot_records == 0
    assert status.last_event_time_ms is None


@pytest.mark.parametrize("marker", ["true", "first", "first_in_data_collection", "last_in_data_collection", True])
def test_snapshot_markers_move_to_snapshot(marker):
    status = ConnectorStatus(name="crm")
    observe(status, DATA_TOPIC, _envelope(snapshot=marker))
    assert status.phase == "snapshot"
    assert status.last_event_time_ms == 1_700_000_000_123


def test_last_snapshot_record_moves_to_streaming():
    status = ConnectorStatus(name="crm")
    observe(status, DATA_TOPIC, _envelope(snapshot="first"))
    observe(status, DATA_TOPIC, _envelope(snapshot="true"))
    assert status.phase == "snapshot"
    observe(status, DATA_TOPIC, _envelope(snapshot="last"))
    assert status.phase == "streaming"


@pytest.mark.parametrize(
    "marker,expected",
    [("true", True), ("first", True), ("last", True), ("last_in_data_collection", True),
     ("false", False), ("incremental", False)],
)
def test_is_snapshot_record_reads_the_marker_without_parsing(marker, expected):
    assert is_snapshot_record(_envelope(snapshot=marker)) is expected
    assert is_snapshot_record(None) is False


@pytest.mark.parametrize("marker", ["false", "incremental", False, None])
def test_streamed_changes_move_to_streaming(marker):
    status = ConnectorStatus(name="crm")
    observe(status, DATA_TOPIC, _envelope(snapshot=marker, op="u"))
    assert status.phase == "streaming"
    assert status.snapshot_records == 0


def test_streaming_after_snapshot():
    status = ConnectorStatus(name="crm")
    observe(status, DATA_TOPIC, _envelope(snapshot="true", ts_ms=100))
    assert status.phase == "snapshot"
    observe(status, DATA_TOPIC, _envelope(snapshot="false", ts_ms=200))
    assert status.phase == "streaming"
    assert status.last_event_time_ms == 200


def test_heartbeat_topic_moves_to_streaming_without_touching_event_time():
    status = ConnectorStatus(name="crm")
    observe(status, DATA_TOPIC, _envelope(snapshot="true", ts_ms=100))
    observe(status, "__debezium-heartbeat.crm", json.dumps({"ts_ms": 999_999}))
    assert status.phase == "streaming"
    assert status.last_event_time_ms == 100


def test_schema_wrapped_envelope_is_unwrapped():
    status = ConnectorStatus(name="crm")
    observe(status, DATA_TOPIC, _envelope(snapshot="first", ts_ms=42, wrap=True))
    assert status.phase == "snapshot"
    assert status.last_event_time_ms == 42


def test_schema_wrapped_heartbeat():
    status = ConnectorStatus(name="crm")
    observe(status, "__debezium-heartbeat.crm", json.dumps({"schema": {}, "payload": {"ts_ms": 1}}))
    assert status.phase == "streaming"


def test_non_integer_ts_ms_is_not_recorded():
    status = ConnectorStatus(name="crm")
    observe(status, DATA_TOPIC, _envelope(snapshot="false", ts_ms="yesterday"))
    assert status.last_event_time_ms is None
    assert status.phase == "streaming"


@pytest.mark.parametrize(
    "value",
    [None, "", "not json", "{", "[1, 2, 3]", "42", '"a string"', "null", "true",
     json.dumps({"schema": {}, "payload": None}), json.dumps({"schema": {}, "payload": [1]})],
)
def test_garbage_and_none_are_ignored(value):
    status = ConnectorStatus(name="crm")
    before = asdict(status)
    observe(status, DATA_TOPIC, value)
    assert asdict(status) == before


@pytest.mark.parametrize("source", ['"crm"', "[1, 2]", "7", "true"])
def test_envelope_whose_source_is_not_an_object_is_ignored(source):
    # BUG: observe() calls source.get() on whatever "source" holds; a non-object source raises AttributeError.
    status = ConnectorStatus(name="crm")
    before = asdict(status)
    observe(status, DATA_TOPIC, '{"op": "c", "source": %s}' % source)
    assert asdict(status) == before


def test_deeply_nested_garbage_is_ignored():
    # json.loads raises RecursionError (not a ValueError) on very deep nesting.
    status = ConnectorStatus(name="crm")
    observe(status, DATA_TOPIC, "[" * 100_000)
    assert status.phase == "starting"


@settings(max_examples=100, deadline=None)
@given(topic=st.text(max_size=30), value=st.one_of(st.none(), st.text(max_size=200)))
def test_observe_never_raises_on_arbitrary_text(topic, value):
    status = ConnectorStatus(name="x")
    observe(status, topic, value)
    assert status.phase in {"starting", "snapshot", "streaming"}


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)


@settings(max_examples=100, deadline=None)
@given(source=_JSON, wrap=st.booleans(), topic=st.sampled_from([DATA_TOPIC, "__debezium-heartbeat.crm", "x"]))
def test_observe_never_raises_on_arbitrary_json_envelopes(source, wrap, topic):
    payload = {"op": "c", "source": source}
    doc = {"schema": None, "payload": payload} if wrap else payload
    status = ConnectorStatus(name="x")
    observe(status, topic, json.dumps(doc))
    assert status.phase in {"starting", "snapshot", "streaming"}


# ---- KafkaForwarder -----------------------------------------------------------------------------


class FakeProducer:
    """Records produce/poll/flush calls; flush acknowledges (or fails) what is pending."""

    def __init__(self, remaining: int = 0, errors: dict[int, str] | None = None, buffer_full: int = 0):
        self.produced: list[tuple[str, bytes | None, bytes | None]] = []
        self.pending: list = []
        self.polls: list[float] = []
        self.flushes: list[float] = []
        self.remaining = remaining
        self.errors = errors or {}
        self.buffer_full = buffer_full

    def produce(self, topic, key=None, value=None, on_delivery=None):
        if self.buffer_full:
            self.buffer_full -= 1
            raise BufferError("queue full")
        self.produced.append((topic, key, value))
        self.pending.append((len(self.produced) - 1, on_delivery))

    def poll(self, timeout=0):
        self.polls.append(timeout)
        return 0

    def flush(self, timeout=None):
        self.flushes.append(timeout)
        for index, callback in self.pending:
            if callback is not None:
                callback(self.errors.get(index), object())
        self.pending.clear()
        return self.remaining


class Record:
    def __init__(self, destination, key, value):
        self._destination, self._key, self._value = destination, key, value

    def destination(self):
        return self._destination

    def key(self):
        return self._key

    def value(self):
        return self._value


class JavaLikeString:
    """Stands in for a JPype java.lang.String: only str() gives the text."""

    def __init__(self, text):
        self.text = text

    def __str__(self):
        return self.text


def test_batch_is_produced_with_bytes_and_counted():
    producer = FakeProducer()
    status = ConnectorStatus(name="crm")
    fwd = KafkaForwarder(producer, status, flush_timeout_s=12.5)
    records = [
        Record("crm.public.accounts", '{"id":"ACC-1"}', _envelope(snapshot="false", ts_ms=10)),
        Record("crm.public.accounts", '{"id":"ACC-2"}', None),
        Record(JavaLikeString("crm.public.opportunities"), JavaLikeString('{"id":"OPP-1"}'),
               JavaLikeString(_envelope(snapshot="false", ts_ms=20))),
    ]
    fwd.handleJsonBatch(records)
    assert producer.produced == [
        ("crm.public.accounts", b'{"id":"ACC-1"}', _envelope(snapshot="false", ts_ms=10).encode()),
        ("crm.public.accounts", b'{"id":"ACC-2"}', None),
        ("crm.public.opportunities", b'{"id":"OPP-1"}', _envelope(snapshot="false", ts_ms=20).encode()),
    ]
    assert all(isinstance(t, str) for t, _, _ in producer.produced)
    assert producer.flushes == [12.5]
    assert status.records == 3
    assert status.batches == 1
    assert status.last_batch_at is not None
    assert status.error is None
    assert status.phase == "streaming"
    assert status.last_event_time_ms == 20


def test_batches_accumulate():
    producer = FakeProducer()
    status = ConnectorStatus(name="crm")
    fwd = KafkaForwarder(producer, status)
    fwd.handleJsonBatch([Record(DATA_TOPIC, "k1", _envelope())])
    fwd.handleJsonBatch([Record(DATA_TOPIC, "k2", _envelope()), Record(DATA_TOPIC, "k3", _envelope())])
    assert status.records == 3
    assert status.batches == 2


def test_null_key_is_produced_as_none():
    producer = FakeProducer()
    fwd = KafkaForwarder(producer, ConnectorStatus(name="crm"))
    fwd.handleJsonBatch([Record("__debezium-heartbeat.crm", None, '{"ts_ms": 1}')])
    assert producer.produced == [("__debezium-heartbeat.crm", None, b'{"ts_ms": 1}')]


def test_non_ascii_text_is_utf8_encoded():
    producer = FakeProducer()
    fwd = KafkaForwarder(producer, ConnectorStatus(name="crm"))
    value = json.dumps({"after": {"name": "Müller GmbH"}, "source": {"snapshot": "false"}}, ensure_ascii=False)
    fwd.handleJsonBatch([Record(DATA_TOPIC, "ключ", value)])
    assert producer.produced == [(DATA_TOPIC, "ключ".encode(), value.encode("utf-8"))]


def test_tombstone_only_batch_counts_but_keeps_phase():
    producer = FakeProducer()
    status = ConnectorStatus(name="crm")
    KafkaForwarder(producer, status).handleJsonBatch([Record(DATA_TOPIC, "k", None)])
    assert producer.produced == [(DATA_TOPIC, b"k", None)]
    assert status.records == 1
    assert status.phase == "starting"


def test_unacknowledged_messages_raise_and_do_not_count():
    producer = FakeProducer(remaining=2)
    status = ConnectorStatus(name="crm")
    fwd = KafkaForwarder(producer, status)
    with pytest.raises(KafkaException):
        fwd.handleJsonBatch([Record(DATA_TOPIC, "a", _envelope()), Record(DATA_TOPIC, "b", _envelope())])
    assert status.error is not None
    assert "2 unacknowledged" in status.error
    assert status.records == 0
    assert status.batches == 0
    assert status.last_batch_at is None


def test_delivery_error_raises_and_names_it():
    producer = FakeProducer(errors={1: "Broker: Not enough in-sync replicas"})
    status = ConnectorStatus(name="crm")
    fwd = KafkaForwarder(producer, status)
    with pytest.raises(KafkaException) as exc:
        fwd.handleJsonBatch([Record(DATA_TOPIC, "a", _envelope()), Record(DATA_TOPIC, "b", _envelope()),
                             Record(DATA_TOPIC, "c", _envelope())])
    assert "Not enough in-sync replicas" in status.error
    assert "1 failed" in status.error
    assert "Not enough in-sync replicas" in str(exc.value)
    assert status.records == 0
    assert status.batches == 0


def test_full_local_queue_polls_and_retries():
    producer = FakeProducer(buffer_full=2)
    status = ConnectorStatus(name="crm")
    KafkaForwarder(producer, status).handleJsonBatch([Record(DATA_TOPIC, "a", _envelope())])
    assert len(producer.polls) == 2
    assert producer.produced == [(DATA_TOPIC, b"a", _envelope().encode())]
    assert status.records == 1


def test_heartbeat_in_batch_marks_streaming():
    producer = FakeProducer()
    status = ConnectorStatus(name="crm")
    KafkaForwarder(producer, status).handleJsonBatch(
        [Record("__debezium-heartbeat.crm", '{"serverName":"crm"}', '{"ts_ms": 5}')]
    )
    assert status.phase == "streaming"
    assert status.records == 1


def test_snapshot_batch_sets_phase_and_event_time():
    producer = FakeProducer()
    status = ConnectorStatus(name="crm")
    KafkaForwarder(producer, status).handleJsonBatch(
        [Record(DATA_TOPIC, f"k{i}", _envelope(snapshot=m, ts_ms=i)) for i, m in enumerate(["first", "true", "true"])]
    )
    assert status.phase == "snapshot"
    assert status.last_event_time_ms == 2
    assert status.records == 3


def test_snapshot_records_counts_every_snapshot_record_in_a_batch():
    # BUG: handleJsonBatch observes only the batch's last record, so snapshot_records counts batches, not records.
    producer = FakeProducer()
    status = ConnectorStatus(name="crm")
    fwd = KafkaForwarder(producer, status)
    fwd.handleJsonBatch([Record(DATA_TOPIC, f"k{i}", _envelope(snapshot=m)) for i, m in enumerate(["first", "true"])])
    fwd.handleJsonBatch([Record(DATA_TOPIC, f"k{i}", _envelope(snapshot=m)) for i, m in enumerate(["true", "last"])])
    assert status.phase == "streaming"
    assert status.snapshot_records == 4


# ---- acknowledged marks ---------------------------------------------------------------------------

MARKS = "__debezium-heartbeat.crm"
HEARTBEAT_ROWS = "crm.public.trueup_heartbeat"


class OrderedProducer(FakeProducer):
    """Also keeps produce calls and flushes in the order they happened."""

    def __init__(self):
        super().__init__()
        self.events: list = []

    def produce(self, topic, key=None, value=None, on_delivery=None):
        super().produce(topic, key, value, on_delivery)
        self.events.append(("produce", topic, value))

    def flush(self, timeout=None):
        self.events.append(("flush",))
        return super().flush(timeout)


def test_a_mark_follows_each_acknowledged_batch_and_heartbeat_rows_wait_for_the_records_before_them():
    producer = OrderedProducer()
    fwd = KafkaForwarder(producer, ConnectorStatus(name="crm"), mark_topic=MARKS)
    payment = _envelope(snapshot="false", ts_ms=1_000, op="c")
    invoice = _envelope(snapshot="false", ts_ms=1_000, op="u")
    beat = _envelope(snapshot="false", ts_ms=1_200, op="u")
    fwd.handleJsonBatch([Record("crm.public.payments", "p", payment), Record("crm.public.invoices", "i", invoice),
                         Record(HEARTBEAT_ROWS, '{"id":1}', beat), Record(MARKS, None, '{"ts_ms": 9}')])
    kinds = [(e[0], e[1] if len(e) > 1 else None) for e in producer.events]
    assert kinds == [("produce", "crm.public.payments"), ("produce", "crm.public.invoices"), ("flush", None),
                     ("produce", HEARTBEAT_ROWS), ("produce", MARKS), ("flush", None), ("produce", MARKS)]
    # The batch's newest commit time, read past Debezium's own heartbeat message at its end.
    assert json.loads(producer.events[-1][2])["source"]["ts_ms"] == 1_200


def test_no_mark_for_a_batch_of_snapshot_reads_or_without_a_mark_topic():
    producer = OrderedProducer()
    KafkaForwarder(producer, ConnectorStatus(name="crm"), mark_topic=MARKS).handleJsonBatch(
        [Record(DATA_TOPIC, "a", _envelope(snapshot="true", ts_ms=5)), Record(DATA_TOPIC, "b", None)])
    assert [e for e in producer.events if e[0] == "produce" and e[1] == MARKS] == []
    plain = OrderedProducer()
    KafkaForwarder(plain, ConnectorStatus(name="crm")).handleJsonBatch(
        [Record(HEARTBEAT_ROWS, "k", _envelope(snapshot="false", ts_ms=5))])
    assert plain.events == [("produce", HEARTBEAT_ROWS, _envelope(snapshot="false", ts_ms=5).encode()), ("flush",)]


def test_a_failed_flush_before_a_heartbeat_row_stops_the_batch_before_it_is_sent():
    producer = OrderedProducer()
    producer.errors = {0: "Broker: Request timed out"}
    fwd = KafkaForwarder(producer, ConnectorStatus(name="crm"), mark_topic=MARKS)
    with pytest.raises(KafkaException):
        fwd.handleJsonBatch([Record(DATA_TOPIC, "a", _envelope(snapshot="false")),
                             Record(HEARTBEAT_ROWS, "k", _envelope(snapshot="false"))])
    assert [e[1] for e in producer.events if e[0] == "produce"] == [DATA_TOPIC]


def test_marks_go_to_the_heartbeat_topic_the_workers_read():
    from tests.unit.envelopes import shipped_mapping
    cfg = ConnectorConfig("crm", Path("crm.json"), {"topic.prefix": "crm"})
    assert mark_topic(cfg) == "__debezium-heartbeat.crm"
    assert mark_topic(cfg) in shipped_mapping().sources["crm"].mark_topics


def test_the_next_batch_sends_the_mark_before_it_with_its_own_records():
    producer = OrderedProducer()
    fwd = KafkaForwarder(producer, ConnectorStatus(name="crm"), mark_topic=MARKS)
    fwd.handleJsonBatch([Record(DATA_TOPIC, "a", _envelope(snapshot="false", ts_ms=1_000))])
    fwd.handleJsonBatch([Record(DATA_TOPIC, "b", _envelope(snapshot="false", ts_ms=2_000))])
    marks = [json.loads(e[2])["source"]["ts_ms"] for e in producer.events if e[0] == "produce" and e[1] == MARKS]
    assert marks == [1_000, 2_000]
    # The first mark goes out with the second batch's flush; the second waits for the next.
    assert [e[0] for e in producer.events] == ["produce", "flush", "produce", "produce", "flush", "produce"]
