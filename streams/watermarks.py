"""Source watermarks: the commit time up to which trueup has processed everything a source wrote. Pure.

A watermark moves by barriers. At one moment the newest mark in a source's mark topics is noted: a heartbeat row
(Debezium's action query or a poller's), or the connector runner's mark, written only once every record before it
is acknowledged. A mark at time T says every record the source committed before T is written; it covers T less
`worker.mark_skew_ms` (PostgreSQL commits made at once can reach the stream slightly out of time order). Data
records are never marks: a transaction's records go to several topics, and a producer may land a later record on
one partition before an earlier one on another, so a data record's time says nothing about the other partitions.
At a later moment the ends of the source's raw partitions are taken, so every record covered sits below them. The
barrier then waits, stage by stage, until the worker group's committed offsets pass the raw ends, then the ends,
taken after that, of the topics the join reads entity writes from (the links topic), then the links topic's ends,
once per link hop. Faust commits an offset only after the sends of the records below it are flushed, so when the
last stage passes, everything committed in the source by T is in the join buckets, whichever worker owns which
partition. Every worker runs the same barriers against the same broker, so all agree without exchanging anything,
and no wall clock is involved.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

TP = tuple[str, int]
LINK_HOPS = 3  # an invoice reaches its opportunity through INV and SUB: entity -> INV -> SUB -> OPP
# Barriers in flight per source and stage; at one a change noted while the one ahead is in the raw stage waits for
# it to leave. More only cost a comparison of targets per step.
BARRIERS_PER_STAGE = 8


@dataclass(frozen=True)
class Stages:
    """The topics of each stage a barrier passes: a source's raw topics, then the shared downstream ones."""

    raw: dict[str, tuple[str, ...]]  # system -> its raw topics (data, heartbeat and signal)
    entities: tuple[str, ...]  # where the join reads entity writes: the links topic (and events, draining)
    links: str

    def topics(self, system: str, stage: int) -> tuple[str, ...]:
        if stage == 0:
            return self.raw[system]
        if stage == 1:
            return self.entities
        return (self.links,)

    @property
    def count(self) -> int:
        return 2 + LINK_HOPS

    def all_topics(self) -> set[str]:
        return {t for topics in self.raw.values() for t in topics} | set(self.entities) | {self.links}


@dataclass
class Barrier:
    system: str
    covers_ms: int  # every record the source committed at or before this time is below the targets
    stage: int
    targets: dict[TP, int]
    entered: float = 0.0  # when it entered this stage, by the Watermarks clock
    timed: bool = False  # its time in this stage has been counted


def passed(targets: dict[TP, int], committed: dict[TP, int]) -> bool:
    return all(committed.get(tp, 0) >= end for tp, end in targets.items())


def commit_ts_ms(value: bytes | str | None, snapshot_reads: bool = False) -> int | None:
    """source.ts_ms of a streamed raw Debezium record (envelope with or without the schema wrapper), None if not one.

    A snapshot read is None too unless snapshot_reads: its time is when it was read, and changes committed before
    that may still follow.
    """
    if not value:
        return None
    try:
        doc = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(doc, dict) and isinstance(doc.get("payload"), dict):
        doc = doc["payload"]
    source = doc.get("source") if isinstance(doc, dict) else None
    if not isinstance(source, dict):
        return None
    if not snapshot_reads and str(source.get("snapshot", "false")).lower() not in ("false", "none"):
        return None
    ts = source.get("ts_ms")
    return ts if isinstance(ts, int) and not isinstance(ts, bool) else None


def newest_by_source(newest: dict[TP, int | None], system_of: dict[str, str]) -> dict[str, int | None]:
    """Per source, the newest commit time among the partitions of the topics `system_of` names (None: none yet)."""
    out: dict[str, int | None] = dict.fromkeys(set(system_of.values()))
    for (topic, _), ts in newest.items():
        system = system_of.get(topic)
        if system is not None and ts is not None and (out[system] is None or ts > out[system]):
            out[system] = ts
    return out


def mark_covers(newest_mark: dict[str, int | None], skew_ms: int) -> dict[str, int | None]:
    """What each source's newest mark covers: what it committed before the mark's time less skew_ms (at least 1:
    a change committed in the same millisecond may follow the mark)."""
    return {system: None if ts is None else ts - max(1, skew_ms) for system, ts in newest_mark.items()}


def acked_mark(commit_ms: int) -> bytes:
    """The connector runner's mark, sent once every record up to one committed at commit_ms is acknowledged."""
    return json.dumps({"source": {"ts_ms": commit_ms, "snapshot": "false"}, "op": "m",
                       "trueup": "acknowledged"}, separators=(",", ":")).encode()


def is_acked_mark(doc) -> bool:
    """Whether a decoded heartbeat-topic value is the runner's mark rather than Debezium's own heartbeat."""
    return isinstance(doc, dict) and doc.get("trueup") == "acknowledged"


class Watermarks:
    """Per-source watermarks and the barriers in flight: a few per source and stage, oldest first."""

    def __init__(self, stages: Stages, per_stage: int = BARRIERS_PER_STAGE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stages = stages
        self.per_stage = per_stage
        self.clock = clock
        self._now = 0.0
        # (stage name, seconds from entering it to passing it) of every barrier since stage_times() last ran
        self._stage_times: list[tuple[str, float]] = []
        # Per source and stage, the commit time up to which everything has passed that stage; the last is `marks`.
        self.reached: dict[str, list[int]] = {system: [-1] * stages.count for system in stages.raw}
        self.in_flight: dict[tuple[str, int], list[Barrier]] = {}
        self._noted: dict[str, int | None] = dict.fromkeys(stages.raw)
        self._started: dict[str, int] = dict.fromkeys(stages.raw, -1)  # newest time a barrier was started for
        self._committed: dict[TP, int] = {}  # the group's offsets at the last step, to say what a barrier waits on

    def step(self, committed: dict[TP, int], ends: dict[TP, int], newest: dict[str, int | None]) -> dict[str, int]:
        """Advance with the group's committed offsets, then ends read *after* them; return what moved.

        newest is, per source, what its newest mark seen in this same read of the ends covers.
        """
        moved: dict[str, int] = {}
        self._committed = committed
        self._now = self.clock()
        for system in self.stages.raw:
            # A barrier starts every step that notes a newer time, not only once the one before has left the raw
            # stage: each change then waits for the stages, not for the barrier ahead of it too.
            noted = self._noted[system]
            first = self.in_flight.setdefault((system, 0), [])
            if noted is not None and noted > self._started[system] and len(first) < self.per_stage:
                first.append(Barrier(system, noted, 0, _restrict(ends, self.stages.raw[system]), self._now))
                self._started[system] = noted
            # Until nothing moves: a barrier entering a stage is checked against the same commits at once, so
            # stages with nothing pending (often the later link hops) pass in one step. That is sound because
            # the ends were read after the commits: committed >= end means all below the end was committed then.
            while self._advance(system, committed, ends, moved):
                pass
            if newest.get(system) is not None:
                self._noted[system] = max(newest[system], noted or -1)
        return moved

    def _advance(self, system: str, committed: dict[TP, int], ends: dict[TP, int], moved: dict[str, int]) -> bool:
        """One pass over a source's stages, last first so barriers ahead free their stage; True if any moved."""
        last = self.stages.count - 1
        progressed = False
        for stage in range(last, -1, -1):
            waiting = self.in_flight.get((system, stage))
            if not waiting:
                continue
            # Oldest first, and only while they pass: a stage's barriers leave it in the order they entered.
            done = 0
            while done < len(waiting) and passed(waiting[done].targets, committed):
                done += 1
            if not done:
                continue
            for barrier in waiting[:done]:
                if not barrier.timed:
                    barrier.timed = True  # a barrier held here by a full next stage passed it only once
                    self._stage_times.append((stage_name(stage), self._now - barrier.entered))
            newest = waiting[done - 1]
            # Passed, whether or not it can move on: buckets this many hops in have everything up to its time.
            if newest.covers_ms > self.reached[system][stage]:
                self.reached[system][stage] = newest.covers_ms
                if stage == last:
                    moved[system] = newest.covers_ms
            if stage < last:
                ahead = self.in_flight.setdefault((system, stage + 1), [])
                if len(ahead) >= self.per_stage:
                    continue  # the next stage is full: wait here
                # Barriers passing together would enter the next stage with the same ends: the newest stands
                # for them all.
                ahead.append(Barrier(system, newest.covers_ms, stage + 1,
                                     _restrict(ends, self.stages.topics(system, stage + 1)), self._now))
            del waiting[:done]
            progressed = True
        return progressed

    @property
    def marks(self) -> dict[str, int]:
        """Per source, the watermark: everything committed up to it has passed every stage (-1: none yet)."""
        return {system: reached[-1] for system, reached in self.reached.items()}

    def marks_after(self, hops: int) -> dict[str, int]:
        """Per source, the commit time up to which every change has gone `hops` link hops past its entity bucket.

        A bucket no change reaches in more hops is complete up to it; `marks` is the deepest (LINK_HOPS).
        """
        stage = min(1 + max(hops, 0), self.stages.count - 1)
        return {system: reached[stage] for system, reached in self.reached.items()}

    def stage_times(self) -> list[tuple[str, float]]:
        """(stage name, seconds from entering to passing it) of each barrier since the last call: where a
        watermark's time goes (commits a stage waits on, ticks), for the worker's metrics."""
        times, self._stage_times = self._stage_times, []
        return times

    def behind_by_stage(self, system: str) -> list[dict]:
        """One entry per stage, as /health shows it: a stage's oldest barrier holds the newer ones behind it, so
        only its partitions are listed; the rest are a count and a range."""
        return [{"stage": stage_name(stage), "barriers": len(barriers), "covers_ms": barriers[0].covers_ms,
                 "newest_covers_ms": barriers[-1].covers_ms, "waiting_on": self._short_of(barriers[0])}
                for (s, stage), barriers in sorted(self.in_flight.items()) if s == system and barriers]

    def _short_of(self, barrier: Barrier, limit: int = 10) -> list[dict]:
        short = [{"topic": t, "partition": p, "end": end, "committed": self._committed.get((t, p), 0)}
                 for (t, p), end in sorted(barrier.targets.items()) if self._committed.get((t, p), 0) < end]
        return short[:limit]


def _restrict(ends: dict[TP, int], topics: Iterable[str]) -> dict[TP, int]:
    wanted = set(topics)
    return {tp: end for tp, end in ends.items() if tp[0] in wanted}


def stage_name(stage: int) -> str:
    return "raw" if stage == 0 else "entity writes" if stage == 1 else f"links hop {stage - 1}"
