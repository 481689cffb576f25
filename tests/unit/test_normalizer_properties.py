"""Property-based tests of the normalizer: exact money, stable idempotency keys, no input ever raises, and
finish() converging to the newest change whatever the arrival order."""

from __future__ import annotations

import copy
import json
import random
import re
from datetime import date, datetime
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.normalizer import Control, DeadLetter, Parsed, RawRecord, finish, parse
from tests.unit.envelopes import (
    KEY_COLUMN,
    TABLES,
    UNAVAILABLE,
    envelope,
    precise,
    record,
    row,
    sequence,
    shipped_mapping,
    topic,
    unwrapped,
    with_schema,
)

MAPPING = shipped_mapping()
OPP = ("crm", "opportunities")
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CONTROL_TOPICS = [t for s in ("crm", "billing", "erp") for t in (
    f"__debezium-heartbeat.{s}", f"{s}.public.trueup_heartbeat", f"{s}.public.debezium_signal", f"{s}.transaction")]
ALL_TOPICS = [topic(*t) for t in TABLES] + CONTROL_TOPICS + ["crm.public.leads", "trueup.dlq"]


# --- a. money round-trips exactly ------------------------------------------------------------------------


@st.composite
def cents(draw) -> Decimal:
    """Decimals with at most two places and |x| < 10^16 (numeric(18,2))."""
    places = draw(st.sampled_from([0, 1, 2]))
    bound = 10 ** (16 + places) - 1
    unscaled = draw(st.integers(-bound, bound) | st.integers(-1000, 1000))
    return Decimal(unscaled).scaleb(-places)


def _amount_of(value: dict, *, wrapped: bool) -> Decimal:
    doc = with_schema(value, *OPP, decimal_mode="precise") if wrapped else value
    out = parse(record(topic(*OPP), doc), MAPPING)
    assert isinstance(out, Parsed), out
    event, _, dropped = finish(out, None, 0)
    assert dropped is None
    money = event["after"]["amount"]
    assert money["currency"] == "EUR"
    return money["amount"]


@SETTINGS
@given(x=cents(), unwrapped_form=st.booleans())
def test_money_round_trips_exactly(x, unwrapped_form):
    expected = x.quantize(Decimal("0.01"))

    def doc(amount):
        data = row(*OPP, amount=amount)
        return unwrapped(data, op="c", lsn=36001656) if unwrapped_form else envelope(*OPP, "c", after=data)

    as_string = _amount_of(doc(str(x)), wrapped=False)
    as_bytes = _amount_of(doc(precise(x)), wrapped=True)
    for got in (as_string, as_bytes):
        assert type(got) is Decimal
        assert got == x
        assert str(got) == str(expected)
    encoded = precise(x)
    if not re.fullmatch(r"[+-]?\d+(\.\d+)?([eE][+-]?\d+)?", encoded):  # else ambiguous without a schema
        as_bytes_no_schema = _amount_of(doc(encoded), wrapped=False)
        assert as_bytes_no_schema == x and str(as_bytes_no_schema) == str(expected)


# --- b. idempotency keys are stable ------------------------------------------------------------------------

lsns = st.integers(min_value=1, max_value=2**40)


@st.composite
def positions(draw) -> dict:
    snapshot = draw(st.sampled_from(["false", "false", "true", "first", "last"]))
    return {"lsn": draw(lsns), "last_commit": draw(st.none() | lsns), "tx_id": draw(st.integers(1, 2**31)),
            "snapshot": snapshot}


def _value(table, op, form, pos):
    if form == "envelope":
        return envelope(*table, op, **pos)
    data = row(*table)
    seq = sequence(None if pos["snapshot"] != "false" else pos["last_commit"], pos["lsn"])
    return unwrapped(data, op=op, lsn=pos["lsn"], seq=seq, source_snapshot=pos["snapshot"],
                     source_txId=pos["tx_id"], source_ts_ms=1795814155780, deleted=(op == "d"))


@SETTINGS
@given(table=st.sampled_from(TABLES), op=st.sampled_from(["c", "u", "d"]), form=st.sampled_from(
    ["envelope", "unwrapped"]), p1=positions(), p2=positions(), o1=st.integers(0, 2**40), o2=st.integers(0, 2**40),
    partition=st.integers(0, 7))
def test_idempotency_keys_are_stable(table, op, form, p1, p2, o1, o2, partition):
    value = json.dumps(_value(table, op, form, p1)).encode()
    key = json.dumps({KEY_COLUMN[table]: row(*table)[KEY_COLUMN[table]]}).encode()
    first = parse(RawRecord(topic(*table), 0, o1, key, value), MAPPING)
    again = parse(RawRecord(topic(*table), 0, o1, key, value), MAPPING)
    redelivered = parse(RawRecord(topic(*table), partition, o2, key, value, timestamp_ms=o2), MAPPING)
    assert isinstance(first, Parsed) and isinstance(again, Parsed) and isinstance(redelivered, Parsed)
    assert first.idempotency_key == again.idempotency_key == redelivered.idempotency_key
    assert first.position == redelivered.position
    event1, _, _ = finish(first, None, 1)
    event2, _, _ = finish(redelivered, None, 2)
    assert event1["idempotency_key"] == event2["idempotency_key"] == first.idempotency_key

    other = parse(RawRecord(topic(*table), 0, o1, key, json.dumps(_value(table, op, form, p2)).encode()), MAPPING)
    assert isinstance(other, Parsed)
    if other.position["order"] != first.position["order"] or other.position["kind"] != first.position["kind"]:
        assert other.idempotency_key != first.idempotency_key
    else:
        assert other.idempotency_key == first.idempotency_key


@SETTINGS
@given(table=st.sampled_from(TABLES), a=st.integers(0, 2**40), b=st.integers(0, 2**40))
def test_unpositioned_rows_key_by_offset(table, a, b):
    value = json.dumps(row(*table)).encode()
    ka = parse(RawRecord(topic(*table), 0, a, None, value), MAPPING).idempotency_key
    kb = parse(RawRecord(topic(*table), 0, b, None, value), MAPPING).idempotency_key
    assert (ka == kb) == (a == b)


# --- c. nothing raises out of the normalizer -------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=12)
    | st.sampled_from([UNAVAILABLE, "1200.00", "EUR", "2026-11-27T21:15:55Z", "AP8=", "true", "r", "d"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def _paths(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, prefix + (i,))


def _mutate(doc, data):
    for _ in range(data.draw(st.integers(0, 3), label="mutations")):
        paths = [p for p in _paths(doc) if p]
        # mostly hit the row itself, where the interesting conversions are
        row_paths = [p for p in paths if len(p) >= 2 and p[-2] in ("after", "before", "payload")
                     or len(p) == 3 and p[:2] in (("payload", "after"), ("payload", "before"))]
        if row_paths and data.draw(st.integers(0, 3), label="row first") > 0:
            paths = row_paths
        if not paths:
            return data.draw(json_values, label="replacement doc")
        path = data.draw(st.sampled_from(paths), label="path")
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        leaf = path[-1]
        kind = data.draw(st.sampled_from(["drop", "json", "text", "unavailable", "null", "swap"]), label="kind")
        if kind == "drop":
            del parent[leaf]
        elif kind == "json":
            parent[leaf] = data.draw(json_values, label="json")
        elif kind == "text":
            parent[leaf] = data.draw(st.text(max_size=30), label="text")
        elif kind == "unavailable":
            parent[leaf] = UNAVAILABLE
        elif kind == "null":
            parent[leaf] = None
        else:  # swap types: numbers <-> strings, containers -> scalars
            value = parent[leaf]
            parent[leaf] = (str(value) if isinstance(value, (int, float)) else
                            (int(value) if isinstance(value, str) and value.isdigit() else
                             [value] if not isinstance(value, list) else {"v": value}))
    return doc


def _check_outcome(out, rec: RawRecord):
    assert isinstance(out, (Parsed, Control, DeadLetter)), out
    if isinstance(out, DeadLetter):
        assert isinstance(out.reason, str) and out.reason
        return
    if isinstance(out, Control):
        assert out.kind in ("heartbeat", "mark", "signal", "transaction", "tombstone")
        return
    assert isinstance(out.entity_id, str) and out.state_key.startswith(out.entity_type + "|")
    for image in (out.after, out.before):
        for name, value in (image or {}).items():
            assert value != UNAVAILABLE, name
            assert not isinstance(value, float), name
            if isinstance(value, dict):
                assert set(value) == {"amount", "currency"} and type(value["amount"]) is Decimal
                assert value["amount"].as_tuple().exponent == -2
            else:
                assert value is None or isinstance(value, (str, int, bool, date, datetime))
    assert all(isinstance(v, str) for v in out.extra.values())
    for state in (None, {"order": [0, 0, 0], "fields": {}}, {"order": [1, 2**62, 2**62], "fields": {}},
                  {"order": list(out.position["order"]), "fields": dict(out.after or {})},
                  {"order": [0], "fields": {name: "old" for name in out.unavailable}}):
        event, new_state, dropped = finish(out, state, 0)
        assert (event is None) == (new_state is None) == (dropped is not None)
        if event is not None:
            assert all(v != UNAVAILABLE for v in (event["after"] or {}).values())
            assert set(event["unavailable"]) <= out.unavailable


@SETTINGS
@given(value=st.binary(max_size=300), key=st.none() | st.binary(max_size=40), t=st.sampled_from(ALL_TOPICS))
def test_arbitrary_bytes_never_raise(value, key, t):
    rec = RawRecord(t, 0, 0, key, value)
    _check_outcome(parse(rec, MAPPING), rec)


@SETTINGS
@given(value=json_values, key=st.none() | json_values, t=st.sampled_from(ALL_TOPICS))
def test_arbitrary_json_never_raises(value, key, t):
    rec = RawRecord(t, 0, 0, None if key is None else json.dumps(key).encode(), json.dumps(value).encode())
    _check_outcome(parse(rec, MAPPING), rec)


@SETTINGS
@given(data=st.data(), table=st.sampled_from(TABLES), op=st.sampled_from(["c", "u", "d", "r"]),
       form=st.sampled_from(["envelope", "unwrapped", "bare"]), wrapped=st.booleans(),
       other_topic=st.sampled_from([None] * 8 + ALL_TOPICS), corrupt_bytes=st.integers(0, 7).map(lambda n: n == 0))
def test_mutated_envelopes_never_raise(data, table, op, form, wrapped, other_topic, corrupt_bytes):
    if form == "envelope":
        doc = envelope(*table, op)
    elif form == "unwrapped":
        doc = unwrapped(row(*table), op=op, lsn=36001656, seq=sequence(36001240, 36001656), deleted=(op == "d"))
    else:
        doc = row(*table)
    if wrapped:
        doc = with_schema(doc, *table, decimal_mode=data.draw(st.sampled_from(["string", "precise"])))
    doc = _mutate(copy.deepcopy(doc), data)
    value = json.dumps(doc).encode()
    if corrupt_bytes and value:
        i = data.draw(st.integers(0, len(value) - 1), label="corrupt at")
        value = value[:i] + data.draw(st.binary(max_size=3), label="junk") + value[i + 1:]
    key = json.dumps({KEY_COLUMN[table]: "K-1"}).encode()
    rec = RawRecord(other_topic or topic(*table), 0, 3, key, value)
    out = parse(rec, MAPPING)
    _check_outcome(out, rec)
    assert parse(rec, MAPPING) == out  # and deterministic


# --- d. finish converges to the newest change whatever the arrival order -----------------------------------


@st.composite
def row_histories(draw):
    """Distinct changes of one row: maybe a snapshot read, then streamed changes with distinct positions.

    The snapshot starts at or below every streamed change, as an initial snapshot does; a snapshot taken after
    streaming is judged by its place in the topic (see test_a_log_with_a_snapshot_after_streaming_converges...).
    """
    n = draw(st.integers(2, 8))
    stream_positions = draw(st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 10**6)), min_size=n,
                                     max_size=n, unique=True))
    changes = []
    if draw(st.booleans()):
        first_lsn = min(lsn for _, lsn in stream_positions)
        changes.append({"op": "r", "lsn": draw(st.integers(1, first_lsn)), "snapshot": "true"})
    for last_commit, lsn in stream_positions:
        changes.append({"op": draw(st.sampled_from(["u", "u", "c", "d"])), "lsn": lsn,
                        "seq": sequence(last_commit, lsn)})
    return changes


@SETTINGS
@given(history=row_histories(), seed=st.integers(0, 2**32), redeliver=st.integers(0, 3))
def test_finish_converges_to_the_newest_change(history, seed, redeliver):
    parsed = []
    for i, spec in enumerate(history):
        spec = dict(spec)
        op = spec.pop("op")
        after = row(*OPP, stage="proposal", amount=f"{i}.00") if op != "d" else None
        before = row(*OPP, amount=f"{i}.00") if op in ("u", "d") else None
        value = envelope(*OPP, op, after=after, before=before, **spec)
        out = parse(record(topic(*OPP), value, key={"id": "OPP-0001"}, offset=1000 + i), MAPPING)
        assert isinstance(out, Parsed), out
        parsed.append(out)
    newest = max(parsed, key=lambda p: p.position["order"])

    arrivals = parsed + [parsed[j % len(parsed)] for j in range(redeliver)]  # redeliveries too
    random.Random(seed).shuffle(arrivals)
    state = None
    applied = 0
    for p in arrivals:
        event, new_state, dropped = finish(p, state, 0)
        if dropped is None:
            applied += 1
            assert state is None or new_state["order"] > state["order"]
            state = new_state
        else:
            assert dropped.reason in ("duplicate", "stale")
    assert state["order"] == newest.position["order"]
    assert state["fields"] == (newest.after or {})
    assert 1 <= applied <= len(parsed)


@st.composite
def logs_with_a_snapshot_after_streaming(draw):
    """One row's raw partition in topic order: changes streamed in commit order, the connector snapshotting again
    at S above them all (offsets lost), then changes streamed from S on, some written before S but committed
    after it (in flight at S); and where a consumer restarts from an earlier offset, replaying the tail."""
    lsns = sorted(draw(st.lists(st.integers(1, 10**6), min_size=2, max_size=10, unique=True)))
    before_n = draw(st.integers(1, len(lsns)))  # all of them: the snapshot is the last record
    snapshot_lsn = draw(st.integers(lsns[before_n - 1] + 1, lsns[-1] + 10))
    log = [{"op": "u", "lsn": lsn, "seq": sequence(lsn - 1, lsn)} for lsn in lsns[:before_n]]
    log.append({"op": "r", "lsn": snapshot_lsn, "snapshot": "true"})
    log += [{"op": "u", "lsn": lsn, "seq": sequence(lsn - 1, lsn)} for lsn in lsns[before_n:]]
    if before_n < len(lsns) and draw(st.booleans()):  # Debezium's first transaction after a snapshot: no last commit
        log[before_n + 1]["seq"] = f'[null,"{lsns[before_n]}"]'
    rewinds = draw(st.lists(st.tuples(st.integers(0, len(log)), st.integers(0, len(log) - 1)), max_size=3))
    return log, rewinds


@SETTINGS
@given(drawn=logs_with_a_snapshot_after_streaming())
def test_a_log_with_a_snapshot_after_streaming_converges_to_its_last_change(drawn):
    """The row ends as the last record of its partition says, however often a tail is replayed: the snapshot
    wins over everything streamed before it, every change after it in the topic wins over the snapshot."""
    log, rewinds = drawn
    parsed = []
    for i, spec in enumerate(log):
        spec = dict(spec)
        op = spec.pop("op")
        after = row(*OPP, stage="proposal", amount=f"{i}.00")
        value = envelope(*OPP, op, after=after, before=row(*OPP) if op == "u" else None, **spec)
        out = parse(record(topic(*OPP), value, key={"id": "OPP-0001"}, offset=1000 + i), MAPPING)
        assert isinstance(out, Parsed), out
        parsed.append(out)
    arrivals = list(range(len(log)))
    for at, back_to in sorted(rewinds, reverse=True):  # a restart after record `at` re-reads from `back_to`
        if back_to < at:
            arrivals[at:at] = list(range(back_to, at))
    state = None
    for i in arrivals:
        _, new_state, dropped = finish(parsed[i], state, 0, (topic(*OPP), 0, 1000 + i))
        if dropped is None:
            state = new_state
        else:
            assert dropped.reason in ("duplicate", "stale", "replay")
    assert state["fields"] == parsed[-1].after
