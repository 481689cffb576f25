"""Whether the canonical events topics still hold changes the join never read, left by a version whose join
read them. Pure: no Kafka.

The join reads each change's entity write from the links topic; the normalizer marks every canonical event it
sends with ENTITY_WRITE_HEADER, saying that write went there. A version whose join read the events topics sent
no such header, and its consumer group committed offsets on them. So where the group's first record past its
commit on an events partition has no header, the join may never have read that change, and a worker must not
start without `worker.join_reads_events` (README, Joins: upgrading). Events sent by the versions between the
links topic and the header lack it too, though they were joined: a group that ran one is refused once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

ENTITY_WRITE_HEADER = "entity_write"
ON_LINKS = b"links"


@dataclass(frozen=True)
class Unjoined:
    """An events partition whose records from `offset` on were sent for a join that reads the events topics."""

    topic: str
    partition: int
    offset: int


def unjoined(first_past_commit: Mapping[tuple[str, int], tuple[int, tuple] | None]) -> list[Unjoined]:
    """The partitions whose first record past the group's commit (offset, headers) lacks the entity-write mark;
    None for a partition read to its end."""
    out = []
    for (topic, partition), first in sorted(first_past_commit.items()):
        if first is None:
            continue
        offset, headers = first
        if (ENTITY_WRITE_HEADER, ON_LINKS) not in {(str(k), bytes(v or b"")) for k, v in headers}:
            out.append(Unjoined(topic, partition, offset))
    return out


def refusal(found: list[Unjoined], group: str, events_prefix: str, config_file: str | None) -> str:
    """Why the worker does not start, naming the setting and, when one is in use, the settings file."""
    in_file = f", or field join_reads_events of [worker] in {config_file}" if config_file else ""
    first = found[0]
    return (f"setting worker.join_reads_events (environment variable TRUEUP_WORKER__JOIN_READS_EVENTS{in_file}) "
            f"is false, but group {group} has not joined the changes an earlier version left on "
            f"{len(found)} events partition(s), first {first.topic}[{first.partition}] from offset {first.offset}: "
            f"start every worker of the group with it true until the group's lag on {events_prefix}.* is 0, then "
            f"start them all without it")
