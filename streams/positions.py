"""Source positions: a comparable order per change, and the idempotency key derived from it."""

from __future__ import annotations

import hashlib
import json

from streams.debezium_envelope import EnvelopeProblem

SNAPSHOT_MARKERS = {"true", "first", "last", "first_in_data_collection", "last_in_data_collection"}


def _as_int(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


POLL_CONNECTOR = "trueup-poll"
REPAIR_CONNECTOR = "trueup-repair"


def repair_position(source: dict) -> dict:
    """A repair re-read from the source by `trueup verify --repair`; its order is fixed against the state it lands on.

    repair_seq (the repair's time in microseconds) is appended to the entity's current order, so a repair wins
    over what trueup holds, and every later change from the source still wins over the repair.
    """
    seq = _as_int(source.get("repair_seq"))
    if seq is None:
        raise EnvelopeProblem("malformed envelope: a repair needs source.repair_seq, an integer")
    return {"kind": "repair", "lsn": None, "tx_id": None, "sequence": None,
            "cursor": str(source.get("reason") or ""), "order": [seq]}


def poll_position(source: dict) -> dict:
    """Position of a polled change: the row's own change time (then a tie-break), as the poller put it.

    A row re-read by a later poll carries the same order, so it is a duplicate downstream, never a new change.
    """
    order = source.get("poll_order")
    if not (isinstance(order, list) and order and all(_as_int(v) is not None for v in order)):
        raise EnvelopeProblem("malformed envelope: a polled change needs source.poll_order, a list of integers")
    return {"kind": "poll", "lsn": None, "tx_id": None, "sequence": None,
            "cursor": str(source.get("cursor") or ""), "order": [2, *(_as_int(v) for v in order)]}


def debezium_position(source: dict, kafka_offset: int) -> dict:
    """Position of a Debezium change, with `order` comparable across every change of one row.

    Streamed changes order by (last commit LSN before the transaction, change LSN): pgoutput streams in
    commit order and the first part grows with every transaction. Snapshot rows sort before every streamed
    change, so a change that overlaps the snapshot is applied over it, never dropped; a snapshot over a row
    that already has state lands by `snapshot_landing`.
    """
    if source.get("connector") == POLL_CONNECTOR:
        return poll_position(source)
    if source.get("connector") == REPAIR_CONNECTOR:
        return repair_position(source)
    marker = str(source.get("snapshot", "false")).lower()
    lsn = _as_int(source.get("lsn"))
    tx_id = _as_int(source.get("txId"))
    sequence = source.get("sequence")
    last_commit = None
    if isinstance(sequence, str):
        try:
            parts = json.loads(sequence)
            if isinstance(parts, list) and parts:
                last_commit = _as_int(parts[0])
        except ValueError:
            pass
    if marker in SNAPSHOT_MARKERS:
        kind, order = "snapshot", [0, lsn or 0, 0]
    elif lsn is None:
        # Unwrapped records without position fields: the raw partition offset is the only order there is.
        kind, order = "stream", [1, 0, 0, kafka_offset]
    else:
        kind = "snapshot" if marker == "incremental" else "stream"
        # Without the last commit (the first transaction streamed after a snapshot, a broken sequence) the
        # change's own LSN stands in: for one row it is above every earlier transaction's commit and below the
        # next one's, which is what the first part orders by.
        order = [1, lsn if last_commit is None else last_commit, lsn]
    return {
        "kind": kind,
        "lsn": lsn,
        "tx_id": tx_id,
        "sequence": sequence if isinstance(sequence, str) else None,
        "cursor": None,
        "order": order,
    }


SNAPSHOT_MARK = -1  # never an LSN, offset or time: [..., -1, S] says "a snapshot taken at S landed here"


def is_snapshot_read(order: list[int]) -> bool:
    """A row read by a blocking snapshot (initial, re-snapshot, ad-hoc): order [0, S, 0], S its start LSN."""
    return len(order) == 3 and order[0] == 0


def _snapshot_in(order: list[int]) -> int:
    """The newest snapshot start an order shows (states written before snapshot_lsn was kept carry only this)."""
    found = order[1] if len(order) >= 3 and order[0] == 0 else 0
    for i in range(3, len(order) - 1):
        if order[i] == SNAPSHOT_MARK:
            found = max(found, order[i + 1])
    return found


def snapshot_landing(snapshot_lsn: int, last_order: list[int], last_snapshot_lsn: int | None) -> list[int] | None:
    """The order a snapshot read taken at snapshot_lsn lands with over a row's state, or None if it is stale.

    A snapshot that comes after streaming (offsets lost, a blocking snapshot asked for) holds every change
    committed before its start, and it is the only record of the changes committed while nobody streamed.
    So it lands over a state written by a change at a lower LSN, just above that change: a streamed change
    committed after the snapshot changed the row after the state's change, so its order is greater still.
    A row whose state holds a change at or past the snapshot's start, or a snapshot as new, keeps it.
    Sorting every snapshot read before all streaming would drop those changes for good.
    """
    last_snapshot_lsn = max(last_snapshot_lsn or 0, _snapshot_in(last_order)) or None
    if last_snapshot_lsn is not None and snapshot_lsn <= last_snapshot_lsn:
        # The snapshot that wrote the state, delivered again, lands where it landed; an older one is stale.
        wrote_it = list(last_order) == [0, snapshot_lsn, 0] or list(last_order[-2:]) == [SNAPSHOT_MARK, snapshot_lsn]
        return list(last_order) if snapshot_lsn == last_snapshot_lsn and wrote_it else None
    if snapshot_lsn <= 0 or len(last_order) < 3 or last_order[0] not in (0, 1):
        return None  # no LSN to compare with (unwrapped records, a polled row): streaming keeps the row
    if last_order[0] == 1 and not 0 < last_order[2] < snapshot_lsn:
        return None  # a change at or past the snapshot's start, or one without an LSN
    return [*last_order, SNAPSHOT_MARK, snapshot_lsn]


def idempotency_key(system: str, table: str, entity_id: str, position: dict) -> str:
    """Stable key of one change: the same source change always gets the same key, however often delivered."""
    text = f"{system}|{table}|{entity_id}|{position['kind']}|{'.'.join(map(str, position['order']))}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def is_newer(order: list[int], than: list[int] | None) -> bool:
    return than is None or list(order) > list(than)
