"""Pollers' pure parts: envelopes Debezium would write, poll positions, API events, config errors, backoff."""

from __future__ import annotations

import json
import random
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from connectors.api_poller import event_envelope, page_cursor, parse_time
from connectors.poll_config import ApiPollConfig, PollConfigError, load_poll_config
from connectors.poll_envelopes import debezium_value, encode, envelope, record_key
from connectors.poller_base import backoff_s
from streams.debezium_envelope import EnvelopeProblem
from streams.mapping import load_mapping
from streams.normalizer import Parsed, RawRecord, finish, parse
from streams.positions import debezium_position, poll_position
from trueup.settings import PROJECT_ROOT

MAPPING = load_mapping(PROJECT_ROOT / "config" / "mapping.yaml")
AT = datetime(2026, 11, 20, 10, 0, 0, 123456, tzinfo=timezone.utc)


def test_values_take_debeziums_json_forms():
    assert debezium_value(Decimal("149.70")) == "149.70"
    assert debezium_value(AT) == "2026-11-20T10:00:00.123456Z"
    assert debezium_value(date(1970, 1, 11)) == 10
    assert debezium_value({"a": 1}) == '{"a": 1}' and debezium_value(None) is None and debezium_value(True) is True
    assert record_key(["id"], {"id": "in_1", "x": 2}) == b'{"id":"in_1"}'


def test_a_polled_row_normalizes_like_a_streamed_one_and_a_reread_is_a_duplicate():
    row = {"id": "in_1", "customer_id": "cus_1", "subscription_id": None, "erp_order_no": None,
           "amount_due": Decimal("149.70"), "amount_paid": Decimal("0"), "currency": "CHF", "status": "open",
           "issued_at": AT, "updated_at": AT, "number": "N-1"}
    value = encode(envelope("billing_poll", "billing", "public", "invoices", "r", None, row, AT, 0, 1))
    record = RawRecord("billing_poll.public.invoices", 0, 7, b'{"id":"in_1"}', value, (), 1)
    parsed = parse(record, MAPPING)
    assert isinstance(parsed, Parsed)
    assert parsed.source == "billing_poll" and parsed.system == "billing" and parsed.entity_id == "in_1"
    assert parsed.after["amount_due"] == {"amount": Decimal("149.70"), "currency": "CHF"}
    assert parsed.position["kind"] == "poll" and parsed.position["order"] == [2, 1795168800123456, 0]
    assert parsed.extra == {"number": '"N-1"'}
    event, state, dropped = finish(parsed, None, 5, ("t", 0, 7))
    assert event is not None and dropped is None
    again = parse(RawRecord("billing_poll.public.invoices", 0, 9, b'{"id":"in_1"}', value, (), 1), MAPPING)
    event2, _, dropped2 = finish(again, state, 6, ("t", 0, 9))
    assert event2 is None and dropped2.reason == "duplicate"


def test_poll_positions_need_their_order_and_debezium_positions_are_unchanged():
    assert poll_position({"poll_order": [5, 1], "cursor": "c"})["order"] == [2, 5, 1]
    with pytest.raises(EnvelopeProblem):
        poll_position({"poll_order": "5"})
    assert debezium_position({"connector": "postgresql", "lsn": 10, "sequence": '["8","10"]'}, 0)["order"] == [1, 8, 10]


def _api_config() -> ApiPollConfig:
    return ApiPollConfig(source="billing_api", base_url="http://127.0.0.1:1",
                         objects={"invoice": "invoices", "payment": "payments"})


def test_api_events_map_to_envelopes_and_deletes_order_after_their_last_version():
    obj = {"id": "in_9", "customer_id": "cus_9", "amount_due": "10.00", "amount_paid": "0.00", "currency": "EUR",
           "status": "open", "updated_at": "2026-11-20T10:00:00Z", "livemode": False}
    table, key, value = event_envelope({"id": "evt_1", "type": "invoice.created", "data": {"object": obj}},
                                       _api_config(), MAPPING, 1)
    assert table == "invoices" and key == b'{"id":"in_9"}'
    assert value["op"] == "c" and value["after"]["livemode"] is False and value["after"]["subscription_id"] is None
    assert value["source"]["event_id"] == "evt_1"
    _, _, gone = event_envelope({"id": "evt_2", "type": "invoice.deleted", "data": {"object": obj}}, _api_config(),
                                MAPPING, 2)
    assert gone["op"] == "d" and gone["after"] is None
    assert gone["source"]["poll_order"] > value["source"]["poll_order"]
    for bad in ({"id": "e", "type": "coupon.created", "data": {"object": obj}}, {"id": "e", "type": "invoice.created"}):
        with pytest.raises(ValueError):
            event_envelope(bad, _api_config(), MAPPING, 1)
    assert parse_time(0) == datetime(1970, 1, 1, tzinfo=timezone.utc)


def test_config_errors_name_the_file_and_field(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("kind: poll-sql\nsource: billing_poll\npage_size: 0\ntables: {invoices: {updated_column: u}}\n")
    with pytest.raises(PollConfigError, match=r"p\.yaml: field page_size"):
        load_poll_config(path)
    path.write_text("kind: poll-ftp\n")
    with pytest.raises(PollConfigError, match="field kind"):
        load_poll_config(path)
    path.write_text("kind: poll-api\nsource: s\nbase_url: ftp://x\nobjects: {a: b}\n")
    with pytest.raises(PollConfigError, match="field base_url"):
        load_poll_config(path)
    for shipped in ("billing_poll", "billing_api"):
        assert load_poll_config(PROJECT_ROOT / "config" / "pollers" / f"{shipped}.yaml").source == shipped


def test_backoff_is_jittered_and_capped():
    rng = random.Random(7)
    waits = [backoff_s(n, 5.0, rng) for n in range(1, 30)]
    assert all(0 <= w <= 5.0 for w in waits) and len(set(waits)) == len(waits)
    assert max(backoff_s(1, 5.0, rng) for _ in range(200)) <= 0.4


def test_envelopes_are_json_debezium_shaped():
    doc = json.loads(encode(envelope("p", "db", "public", "t", "u", None, {"id": 1}, AT, 3, 9)))
    assert set(doc) == {"before", "after", "source", "op", "ts_ms"}
    assert doc["source"]["connector"] == "trueup-poll" and doc["source"]["ts_ms"] == 1795168800123


def test_page_cursor_is_the_last_event_of_an_ordered_page():
    page = [{"id": "evt_b", "created": 10}, {"id": "evt_a", "created": 10}, {"id": "evt_c", "created": 11}]
    assert page_cursor(page) == "evt_c"
    assert page_cursor(page[:2]) == "evt_a"  # feed order, not id order, when nothing says the page was reordered


def test_page_cursor_of_a_reordered_page_is_its_newest_event():
    page = [{"id": "evt_3", "created": 12}, {"id": "evt_2", "created": 11}, {"id": "evt_1", "created": 11}]
    assert page_cursor(page) == "evt_3"


# ---- a stop mid-cycle writes no heartbeat --------------------------------------------------------


class _Conn:
    """Answers the cycle's `SELECT now()`; the table reads are the poller's own methods, replaced below."""

    info = type("Info", (), {"dbname": "billing"})()

    def execute(self, _query, _params=None):
        return self

    def fetchone(self):
        return {"now": datetime(2026, 12, 7, tzinfo=timezone.utc)}

    def commit(self):
        pass


def test_a_sql_poll_cycle_stopped_before_its_tables_are_read_writes_no_heartbeat(tmp_path):
    from connectors.sql_poller import SqlPoller

    class Stopped(SqlPoller):
        beats: list = []

        def poll_table(self, conn, table):
            self.stop.set()  # as a SIGTERM would, while a table still has pages to read
            return 3

        def emit_heartbeat(self, db, seen_up_to):
            self.beats.append(seen_up_to)

    config = load_poll_config(PROJECT_ROOT / "config" / "pollers" / "billing_poll.yaml")
    poller = Stopped(config, MAPPING, "postgresql://unused", "127.0.0.1:1", "cursors", tmp_path)
    poller._last_keyset = float("inf")  # no keyset pass in this cycle
    assert poller.cycle(_Conn()) == 3 * len(config.tables) and poller.beats == []
    assert poller.status.last_poll_at is None  # nor does it claim a poll read to its start

    class Whole(Stopped):
        beats: list = []

        def poll_table(self, conn, table):
            return 1

    whole = Whole(config, MAPPING, "postgresql://unused", "127.0.0.1:1", "cursors", tmp_path)
    whole._last_keyset = float("inf")
    whole.cycle(_Conn())
    assert whole.beats == [datetime(2026, 12, 7, tzinfo=timezone.utc) - timedelta(seconds=config.lookback_s)]


def test_an_api_poll_stopped_mid_feed_writes_no_heartbeat(tmp_path):
    from connectors.api_poller import ApiPoller

    class Stopped(ApiPoller):
        beats: list = []

        def fetch_page(self):
            self.stop.set()
            return True  # more pages were there

        def emit_heartbeat(self, db, seen_up_to):
            self.beats.append(seen_up_to)

    poller = Stopped(_api_config(), MAPPING, None, "127.0.0.1:1", "cursors", tmp_path)
    poller.cursors = type("NoCursors", (), {"load": lambda self: {}})()
    assert poller.run() == 0 and poller.beats == []
