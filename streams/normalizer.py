"""Raw change record -> canonical event, control record or dead letter. Pure: no Kafka, no Faust.

Two steps, so the agent can look state up in between: `parse` needs only the record and the mapping;
`finish` takes the entity's previous state (last order and fields) and drops duplicates and stale changes,
and fills TOAST placeholders from the last known values.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Union

from streams.debezium_envelope import Change, EnvelopeProblem, decode_json, parse_change
from streams.mapping import HEARTBEAT_TABLE, SIGNAL_TABLE, Mapping, TableMapping
from streams.positions import debezium_position, idempotency_key, is_newer, is_snapshot_read, snapshot_landing
from streams.values import UNAVAILABLE, ValueProblem, decimal_from, json_text, money, scalar_from
from streams.watermarks import is_acked_mark

CONNECT_DECIMAL = "org.apache.kafka.connect.data.Decimal"
OPS = {"r": "snapshot", "c": "create", "u": "update", "d": "delete"}


@dataclass(frozen=True)
class RawRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()
    timestamp_ms: int = 0

    def header(self, name: str) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


@dataclass(frozen=True)
class Control:
    """Heartbeats, signals, transaction markers and tombstones: recognised, never data, never dead letters."""

    kind: str  # heartbeat | mark | signal | transaction | tombstone
    source: str
    ts_ms: int | None = None


@dataclass(frozen=True)
class DeadLetter:
    reason: str
    stage: str = "normalize"


@dataclass
class Parsed:
    """A data change, converted, waiting for the entity's previous state."""

    source: str
    system: str
    table: str
    entity_type: str
    entity_id: str
    op: str
    position: dict
    source_ts_ms: int
    after: dict | None
    before: dict | None
    unavailable: set[str] = field(default_factory=set)
    extra: dict[str, str] = field(default_factory=dict)
    correlation_id: str = ""
    repair: bool = False

    @property
    def state_key(self) -> str:
        return f"{self.entity_type}|{self.entity_id}"

    @property
    def idempotency_key(self) -> str:
        return idempotency_key(self.system, self.table, self.entity_id, self.position)


Outcome = Union[Parsed, Control, DeadLetter]


@dataclass(frozen=True)
class Dropped:
    reason: str  # duplicate | stale


def _control_for(topic: str, mapping: Mapping, value: bytes | None) -> Control | None:
    kind, name = mapping.control_kinds.get(topic, (None, None))
    if kind is None:
        return None
    if kind == "heartbeat_topic":
        ts = None
        if value is not None:
            doc = decode_json(value, "heartbeat")
            if isinstance(doc, dict) and "payload" in doc and "schema" in doc:
                doc = doc["payload"]
            if is_acked_mark(doc):
                source = doc.get("source")
                ts = source.get("ts_ms") if isinstance(source, dict) else None
                return Control("mark", name, ts if isinstance(ts, int) else None)
            if isinstance(doc, dict) and isinstance(doc.get("ts_ms"), int):
                ts = doc["ts_ms"]
        return Control("heartbeat", name, ts)
    if kind == "heartbeat_table":
        if value is None:
            return Control("tombstone", name)
        change = parse_change(value)
        ts = change.source.get("ts_ms")
        return Control("heartbeat", name, ts if isinstance(ts, int) else None)
    return Control(kind, name)  # signal | transaction


def _convert_row(row: dict, spec: TableMapping, change: Change, strict: bool) -> tuple[dict, set[str], dict]:
    """Mapped columns -> canonical fields; returns (fields, unavailable fields, extra columns as JSON text)."""
    fields: dict = {}
    unavailable: set[str] = set()
    for column, kind in spec.scalar_columns.items():
        if column not in row:
            if strict:
                raise ValueProblem(f"schema drift: mapped column {column} missing from the source row")
            continue
        raw = row[column]
        target = spec.field_of(column)
        if raw == UNAVAILABLE:
            unavailable.add(target)
            continue
        if raw is None:
            fields[target] = None
            continue
        schema_name = (change.column_schemas.get(column) or {}).get("name")
        fields[target] = scalar_from(raw, column, kind, schema_name)
    for target, (amount_col, currency_col) in spec.money.items():
        if amount_col not in row or currency_col not in row:
            if strict:
                missing = amount_col if amount_col not in row else currency_col
                raise ValueProblem(f"schema drift: mapped column {missing} missing from the source row")
            continue
        raw_amount, currency = row[amount_col], row[currency_col]
        if UNAVAILABLE in (raw_amount, currency):
            unavailable.add(target)
            continue
        if raw_amount is None:
            fields[target] = None
            continue
        column_schema = change.column_schemas.get(amount_col) or {}
        params = column_schema.get("parameters")
        scale = params.get("scale") if isinstance(params, dict) else None
        scale = int(scale) if isinstance(scale, (int, str)) and str(scale).isdigit() else spec.scale_of(amount_col)
        as_bytes = column_schema.get("type") == "bytes" or column_schema.get("name") == CONNECT_DECIMAL
        fields[target] = money(decimal_from(raw_amount, amount_col, scale, as_bytes), currency, target)
    extra = {
        column: json_text(value)
        for column, value in row.items()
        if column not in spec.columns and value != UNAVAILABLE
    }
    return fields, unavailable, extra


def _entity_id(row: dict, spec: TableMapping, key: bytes | None) -> str:
    parts = []
    for column in spec.key:
        value = row.get(column)
        if value is None and key is not None:
            doc = decode_json(key, "key")
            if isinstance(doc, dict) and "payload" in doc and "schema" in doc:
                doc = doc["payload"]
            value = doc.get(column) if isinstance(doc, dict) else None
        if value is None or value == UNAVAILABLE:
            raise ValueProblem(f"no key: key column {column} missing from the change")
        parts.append(str(value))
    return "|".join(parts)


def parse(record: RawRecord, mapping: Mapping, topic: str | None = None) -> Outcome:
    """Classify and convert one raw record. Never raises: anything unreadable becomes a DeadLetter."""
    try:
        return _parse(record, mapping, topic or record.topic)
    except (EnvelopeProblem, ValueProblem) as exc:
        return DeadLetter(str(exc))
    except Exception as exc:  # a bug must not stop the worker or lose the record
        return DeadLetter(f"unexpected {type(exc).__name__}: {exc}")


def _parse(record: RawRecord, mapping: Mapping, topic: str) -> Outcome:
    control = _control_for(topic, mapping, record.value)
    if control is not None:
        return control
    where = mapping.source_of_topic(topic)
    if where is None:
        return DeadLetter(f"unknown table: topic {topic} is not in the mapping")
    source_name, table = where
    if record.value is None:
        return Control("tombstone", source_name)
    source = mapping.sources[source_name]
    change = parse_change(record.value)
    # Routing SMTs can merge tables into one topic: the envelope's own table name is the authority.
    named = change.source.get("table")
    if isinstance(named, str) and named and named != table:
        if named == HEARTBEAT_TABLE:
            ts = change.source.get("ts_ms")
            return Control("heartbeat", source_name, ts if isinstance(ts, int) else None)
        if named == SIGNAL_TABLE:
            return Control("signal", source_name)
        if named not in source.tables:
            return DeadLetter(f"unknown table: {source.topic_prefix}.{source.schema_}.{named} is not in the mapping")
        table = named
    spec = source.tables[table]
    after = before = None
    unavailable: set[str] = set()
    extra: dict[str, str] = {}
    if change.after is not None:
        after, unavailable, extra = _convert_row(change.after, spec, change, strict=True)
    if change.before is not None:
        before, _, _ = _convert_row(change.before, spec, change, strict=False)
    row = change.after if change.after is not None else change.before
    entity_id = _entity_id(row, spec, record.key)
    position = debezium_position(change.source, record.offset)
    ts = change.source.get("ts_ms")
    source_ts = ts if isinstance(ts, int) and not isinstance(ts, bool) else record.timestamp_ms
    correlation = None
    if spec.correlation is not None and row.get(spec.correlation) not in (None, UNAVAILABLE):
        correlation = str(row[spec.correlation])
    elif position["tx_id"] is not None:
        correlation = f"{source.system}-tx-{position['tx_id']}"
    else:
        correlation = f"{source.system}-{table}-{entity_id}-{'.'.join(map(str, position['order']))}"
    return Parsed(
        source=source_name,
        system=spec.owner or source.system,
        table=table,
        entity_type=spec.entity,
        entity_id=entity_id,
        op=OPS[change.op],
        position=position,
        source_ts_ms=source_ts,
        after=after,
        before=before,
        unavailable=unavailable,
        extra=extra,
        correlation_id=correlation,
        repair=position["kind"] == "repair",
    )


def finish(parsed: Parsed, state: dict | None, captured_ms: int, source: tuple | None = None,
           in_order: bool = True) -> tuple[dict | None, dict | None, Dropped | None]:
    """(event, new state, None) for a change newer than the state holds; (None, None, Dropped) otherwise.

    state is {"order": [...], "fields": {...}, "source": ..., "repaired": ..., "snapshot_lsn": ...} as this
    function last returned it, or None; repaired is the raw record (topic, partition, offset) of the newest repair
    applied, snapshot_lsn the start LSN of the newest snapshot read applied (a snapshot lands by
    positions.snapshot_landing).
    source identifies the raw record (topic, partition, offset). When the very record that last wrote the
    state comes again (a replay after a crash or rebalance, whose send may have been lost), the event is
    rebuilt and returned with Dropped("replay") so it is sent again but the state stays; any other copy of
    an already applied change is a duplicate and yields nothing.
    in_order is False for a record out of its row's topic order (replayed from the dead-letter topic): a
    snapshot read then lands only on a row without state, since where it lands depends on what came before it.
    """
    last_order = state.get("order") if state else None
    repaired = state.get("repaired") if state else None  # the raw record of the newest repair applied
    if parsed.repair:
        # A repair lands over whatever the state holds: its order extends it (see positions.repair_position).
        seq = parsed.position["order"][-1]
        # This very repair delivered again takes the order it landed with, so it is judged below as any
        # change is: re-sent if it is the record that wrote the state, else a duplicate.
        landed = bool(last_order) and last_order[-1:] == [seq]
        if not landed and _applied_before(source, repaired):
            # Applied before and since overtaken by a source change or a newer repair: delivered again (a
            # replay from an offset below it), it must not bring back the values it read.
            return None, None, Dropped("stale")
        order = list(last_order) if landed else [*(last_order or [1, 0, 0]), seq]
        parsed = replace(parsed, position={**parsed.position, "order": order})
        if source is not None:
            repaired = list(source)
    snapshot_lsn = state.get("snapshot_lsn") if state else None  # start of the newest snapshot applied
    if parsed.position["kind"] == "snapshot" and is_snapshot_read(parsed.position["order"]):
        taken_at = parsed.position["order"][1]
        if last_order is not None:
            landing = snapshot_landing(taken_at, last_order, snapshot_lsn) if in_order else None
            if landing is None:
                return None, None, Dropped("stale")
            parsed = replace(parsed, position={**parsed.position, "order": landing})
        snapshot_lsn = max(taken_at, snapshot_lsn or 0)
    if not is_newer(parsed.position["order"], last_order):
        if list(parsed.position["order"]) != list(last_order):
            return None, None, Dropped("stale")
        if source is not None and state.get("source") == source:
            event, _ = _event(parsed, state.get("fields") or {}, captured_ms)
            return event, None, Dropped("replay")
        return None, None, Dropped("duplicate")
    event, kept = _event(parsed, (state or {}).get("fields") or {}, captured_ms)
    new_state = {"order": list(parsed.position["order"]), "fields": kept}
    if source is not None:
        new_state["source"] = source
    if repaired is not None:
        new_state["repaired"] = repaired
    if snapshot_lsn is not None:
        new_state["snapshot_lsn"] = snapshot_lsn
    return event, new_state, None


def _applied_before(source: tuple | None, repaired: list | None) -> bool:
    """Whether a repair read from `source` sits at or below the newest repair applied, in the same partition.

    Repairs go to the row's own raw partition, so offsets order them whichever host's clock timed them.
    """
    if source is None or repaired is None:
        return False
    return tuple(source[:2]) == tuple(repaired[:2]) and source[2] <= repaired[2]


def _event(parsed: Parsed, known: dict, captured_ms: int) -> tuple[dict, dict]:
    """The canonical event, TOAST placeholders filled from the last known values; and the fields to keep."""
    after = dict(parsed.after) if parsed.after is not None else None
    still_unavailable = []
    for name in sorted(parsed.unavailable):
        if after is not None and name in known:
            after[name] = known[name]
        else:
            still_unavailable.append(name)
            if after is not None:
                after[name] = None
    event = {
        "idempotency_key": parsed.idempotency_key,
        "correlation_id": parsed.correlation_id,
        "entity_type": parsed.entity_type,
        "entity_id": parsed.entity_id,
        "system": parsed.system,
        "source_table": parsed.table,
        "op": parsed.op,
        "position": dict(parsed.position),
        "source_ts": parsed.source_ts_ms,
        "captured_ts": captured_ms,
        "before": parsed.before,
        "after": after,
        "extra": parsed.extra,
        "unavailable": still_unavailable,
        "repair": parsed.repair,
    }
    # A field still unknown must stay unknown for the next change, not become a real null.
    kept = {k: v for k, v in (after or {}).items() if k not in still_unavailable}
    return event, kept
