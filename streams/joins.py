"""The join engine: buckets of members keyed by a root id, linked by messages. Pure: no Kafka, no Faust.

Every joined view is a *bucket* (bucket type + id) holding *members* (member type + id), each with the
order it was last written at. An entity's own event lands in its entity bucket; each bucket derives, from
its members alone, the members it contributes to other buckets (a payment to its invoice's bucket, an
invoice summary to its subscription's, ...). When those targets change, the engine retracts the member
from the old bucket and upserts it into the new one. Members are last-writer-wins by order and deletes
leave tombstones, so any arrival order of the same changes ends in the same buckets.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from streams import pickling

# emits(bucket_type, bucket_id, live_members) -> {target bucket key: (member key, data)}
Emits = Callable[[str, str, dict], dict]
# projector(bucket_type, bucket_id, live_members) -> [(projection name, projection id, record or None)]
Projector = Callable[[str, str, dict], list]


def bucket_key(bucket_type: str, bucket_id: str) -> str:
    return f"{bucket_type}|{bucket_id}"


def split_key(key: str) -> tuple[str, str]:
    bucket_type, _, bucket_id = key.partition("|")
    return bucket_type, bucket_id


@dataclass
class Message:
    """Write one member of one bucket: an upsert with data, or a retraction (deleted)."""

    bucket: str
    member: tuple[str, str]
    order: list
    deleted: bool = False
    data: dict | None = None
    at_ms: int | None = None  # a delete's source commit time, kept on the tombstone (verify reads it)
    # Correlation id of the newest source change behind this message, for provenance; not part of the data,
    # so it never makes a link differ.
    cause: str | None = None


@dataclass
class Outputs:
    links: list[Message] = field(default_factory=list)
    projections: list[tuple[str, str, dict | None]] = field(default_factory=list)


def new_state() -> dict:
    return {"members": {}, "version": 0, "routes": {}, "projections": {}}


def live_members(state: dict) -> dict:
    """{member key: data} of members that are not tombstones."""
    return {key: m["data"] for key, m in state["members"].items() if not m["deleted"]}


def _digest(value) -> str:
    return hashlib.sha1(pickling.dumps(value)).hexdigest()


def _digest_once(data, digests: dict[int, tuple[object, str]]) -> str:
    """The digest of data, computed once per object; the memo keeps the object, so its id is not reused."""
    known = digests.get(id(data))
    if known is None:
        known = digests[id(data)] = (data, _digest(data))
    return known[1]


_ANY = object()

# What apply did with a message: wrote it, re-sent the outputs of the very delivery that wrote it, or nothing.
APPLIED, REPLAYED, IGNORED = "applied", "replayed", "ignored"


def apply(state: dict | None, message: Message, emits: Emits, projector: Projector,
          source=_ANY) -> tuple[dict, Outputs, str]:
    """Apply one message to its bucket; return (new state, outputs, APPLIED | REPLAYED | IGNORED).

    source identifies the delivery (topic, partition, offset). A message not newer than the member it
    writes leaves the state as it is. If it is a replay of the very delivery that wrote the member (a crash
    or rebalance between the state write and the sends), the bucket's current links, retractions and
    projections are sent again so nothing is lost; any other copy yields nothing, which also keeps links
    that point both ways (an account and the customer naming each other) from echoing forever.
    Without a source, every duplicate counts as a replay.
    """
    state, status = write(state, message, source)
    if status == IGNORED:
        return state, Outputs(), IGNORED
    state, outputs = emit(message.bucket, state, emits, projector, force=status == REPLAYED)
    return state, outputs, status


def write(state: dict | None, message: Message, source=_ANY, owned: bool = False) -> tuple[dict, str]:
    """The member write of `apply` alone, without outputs: a batch writes every message, then emits once.

    The state is copied before it changes, unless the caller says it owns it (a copy this function returned
    earlier): a batch's later writes to a bucket then skip copying its members, which for a bucket of many
    members cost more than the write.
    """
    state = state if state is not None else new_state()
    current = state["members"].get(message.member)
    if current is None or list(message.order) > list(current["order"]):
        if not owned:
            state = {**state, "members": dict(state["members"])}
        member = {"order": list(message.order), "deleted": message.deleted,
                  "data": None if message.deleted else message.data}
        if message.deleted and message.at_ms is not None:
            member["at_ms"] = message.at_ms
        if source is not _ANY:
            member["source"] = source
        state["members"][message.member] = member
        state["version"] += 1
        return state, APPLIED
    if source is not _ANY and current.get("source") != source:
        return state, IGNORED
    return state, REPLAYED


def emit(key: str, state: dict, emits: Emits, projector: Projector, force: bool) -> tuple[dict, Outputs]:
    """The links and projections a bucket's state owes; force re-sends all of them (a replayed delivery)."""
    bucket_type, bucket_id = split_key(key)
    members = live_members(state)
    outputs = Outputs()
    desired = emits(bucket_type, bucket_id, members)
    # routes: target -> (member, digest of the data sent), digest None once retracted. Retractions and
    # tombstones stay recorded so a redelivery after a crash can send them again.
    routes = dict(state["routes"])
    version = [state["version"]]
    # id -> (data, digest): a bucket often sends one dict to several targets (an account its own to three).
    digests: dict[int, tuple[object, str]] = {}
    for target, (member, digest) in list(routes.items()):
        wanted = desired.get(target)
        if wanted is not None and wanted[0] == tuple(member):
            continue
        if digest is not None or force:
            outputs.links.append(Message(target, tuple(member), version, deleted=True))
        routes[target] = (tuple(member), None)
    for target, (member, data) in desired.items():
        digest = _digest_once(data, digests)
        previous = routes.get(target)
        if force or previous is None or previous[1] != digest or previous[0] != tuple(member):
            outputs.links.append(Message(target, tuple(member), version, data=data))
        routes[target] = (tuple(member), digest)
    emitted = dict(state["projections"])
    for name, pid, record in projector(bucket_type, bucket_id, members):
        digest = None if record is None else _digest(record)
        slot = f"{name}|{pid}"
        if slot not in emitted and record is None:
            continue  # never emitted: nothing to tombstone
        if force or emitted.get(slot, "none") != digest:
            outputs.projections.append((name, pid, record))
        emitted[slot] = digest
    return {**state, "routes": routes, "projections": emitted}, outputs
