"""A batch of join messages: every member written first, then each touched bucket emits once. Pure.

Many messages of a batch land in the same bucket (an account's opportunities, an invoice's payments). Writing
them all before emitting turns N emits, N state writes and N rounds of links and projections into one each,
while the end state is the one message-at-a-time `apply` reaches: members are last-writer-wins by order, and
`emit` derives everything from the members alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from streams.joins import APPLIED, IGNORED, Emits, Message, Outputs, Projector, emit, write


@dataclass
class Touched:
    """One bucket in a batch: its state as read, as now, and what the batch did to it."""

    before: dict | None
    state: dict | None
    applied: int = 0
    replayed: bool = False
    recheck: bool = False
    owned: bool = False  # state is the batch's own copy, written in place from the second write on
    latest_source_ms: int | None = None
    correlation_id: str | None = None  # of the last change written: the one an alert names
    cause: str | None = None  # of the newest source change that reached the bucket, through any link

    @property
    def changed(self) -> bool:
        return self.applied > 0 or self.replayed


@dataclass
class JoinBatch:
    emits: Emits
    projector: Projector
    buckets: dict[str, Touched] = field(default_factory=dict)

    def __contains__(self, bucket: str) -> bool:
        return bucket in self.buckets

    def load(self, bucket: str, state: dict | None) -> None:
        """The bucket's stored state, given once, before its first message of the batch."""
        self.buckets[bucket] = Touched(before=state, state=state)

    def write(self, message: Message, source, source_ms: int | None = None) -> str:
        """Write one message's member; APPLIED, REPLAYED or IGNORED as `apply` would say."""
        touched = self.buckets[message.bucket]
        state, status = write(touched.state, message, source, owned=touched.owned)
        if status == IGNORED:
            return status
        touched.state = state
        if status == APPLIED:
            touched.owned = True
            touched.applied += 1
            touched.cause = message.cause or (message.data or {}).get("correlation_id") or touched.cause
            touched.correlation_id = (message.data or {}).get("correlation_id") or touched.correlation_id
        else:
            touched.replayed = True
        if source_ms is not None:
            touched.latest_source_ms = max(source_ms, touched.latest_source_ms or source_ms)
        return status

    def recheck(self, bucket: str) -> None:
        """Judge the bucket's rules again at the end of the batch, whether or not a member changed."""
        self.buckets[bucket].recheck = True

    def finish(self) -> Iterator[tuple[str, Touched, Outputs]]:
        """(bucket, touched, outputs) per bucket to judge, in first-touch order; its state updated in place.

        A replayed delivery anywhere in the bucket re-sends all of its outputs, as `apply` does for one. Each
        link carries the bucket's cause forward, so a projection three hops away still names the change.
        """
        for bucket, touched in self.buckets.items():
            if touched.changed:
                touched.state, outputs = emit(bucket, touched.state, self.emits, self.projector,
                                              force=touched.replayed)
                touched.owned = False  # the emitted state shares its members with what the caller stores
                for link in outputs.links:
                    link.cause = touched.cause
                yield bucket, touched, outputs
            elif touched.recheck and touched.state is not None:
                yield bucket, touched, Outputs()


def runs_of(records: Iterable[tuple[object, list]], limit: int) -> Iterator[list[tuple[object, list]]]:
    """Consecutive runs of (record, its messages) holding at most `limit` messages, in order; a record holding
    more than `limit` on its own is a run by itself, never split (its messages share one delivery)."""
    run: list = []
    count = 0
    for record, messages in records:
        if run and count + len(messages) > limit:
            yield run
            run, count = [], 0
        run.append((record, messages))
        count += len(messages)
    if run:
        yield run
