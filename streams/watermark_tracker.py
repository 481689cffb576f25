"""The watermark edge: reads the group's committed offsets and the true topic ends, feeds streams.watermarks."""

from __future__ import annotations

import contextvars
import logging
import time

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from faust.transport.drivers.aiokafka import server_list

from state.partition_ends import probe_tails, reported_ends
from state.probed_ends import ProbedEnds
from streams.mapping import Mapping
from streams.topics import catalog, join_input_topics, links_topic
from streams.watermarks import Stages, Watermarks, commit_ts_ms, mark_covers, newest_by_source
from trueup.settings import Settings

log = logging.getLogger(__name__)
# Every partition is probed again this often even if its reported end has not moved (state.probed_ends).
PROBE_REFRESH_S = 5.0
_probing: contextvars.ContextVar[bool] = contextvars.ContextVar("trueup_watermark_probe", default=False)


class _QuietProbe(logging.Filter):
    """Drops aiokafka's info lines about the watermark reader's own (re)assignments: up to ten ticks a second of noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _probing.get() or record.levelno > logging.INFO


for _name in ("aiokafka.consumer.consumer", "aiokafka.consumer.subscription_state"):
    logging.getLogger(_name).addFilter(_QuietProbe())


def stages_for(settings: Settings, mapping: Mapping) -> Stages:
    raw: dict[str, list[str]] = {}
    for name in settings.enabled_sources:
        source = mapping.sources[name]
        raw.setdefault(source.system, []).extend(source.data_topics + source.control_topics)
    return Stages(raw={system: tuple(topics) for system, topics in raw.items()},
                  entities=join_input_topics(settings),
                  links=links_topic(settings.worker.app_id))


class WatermarkTracker:
    """One per worker; every worker computes the same watermarks from the broker, so none has to share them."""

    def __init__(self, app: faust.App, settings: Settings, mapping: Mapping) -> None:
        self.app = app
        self.group = settings.worker.app_id
        self.fetch_max_wait_ms = settings.kafka.fetch_max_wait_ms
        self.stages = stages_for(settings, mapping)
        self.core = Watermarks(self.stages)
        wanted = self.stages.all_topics()
        specs = catalog(mapping, settings.enabled_sources, settings.topics, settings.kafka.partitions,
                        settings.worker.app_id)
        self.partitions = [(s.name, p) for s in specs if s.name in wanted for p in range(s.partitions)]
        sources = [mapping.sources[name] for name in settings.enabled_sources]
        self.data_system = {t: source.system for source in sources for t in source.data_topics}
        # Only marks move a watermark: a data record's time says nothing of the source's other partitions.
        self.mark_system = {t: source.system for source in sources for t in source.mark_topics}
        self.mark_skew_ms = settings.worker.mark_skew_ms
        # Data tails are read only for the newest change /health shows; a mark tail without a mark is read again.
        read = self.data_system.keys() | self.mark_system.keys()
        self.probed = ProbedEnds({tp for tp in self.partitions if tp[0] in read}, self._newest_of,
                                 refresh_s=PROBE_REFRESH_S,
                                 retry={tp for tp in self.partitions if tp[0] in self.mark_system})
        self.newest_event: dict[str, int | None] = dict.fromkeys(self.stages.raw)
        self.updated_ms: dict[str, int] = {}
        self.lag: dict[str, int] = {}  # topic -> records past the group's committed offsets (true ends)
        self.last_error: str | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._reader: AIOKafkaConsumer | None = None

    @property
    def marks(self) -> dict[str, int]:
        return self.core.marks

    def marks_after(self, hops: int) -> dict[str, int]:
        return self.core.marks_after(hops)

    @property
    def newest(self) -> dict[str, int | None]:
        """The time of the newest change (snapshot reads included) seen in each source's data topics."""
        return dict(self.newest_event)

    def stage_times(self) -> list[tuple[str, float]]:
        return self.core.stage_times()

    def _servers(self) -> list[str]:
        return server_list(self.app.transport.url, self.app.transport.default_port)

    async def tick(self) -> dict[str, int]:
        """One step; returns the sources whose watermark moved. Broker trouble leaves the watermarks where they are."""
        try:
            # Committed offsets first, ends after: a stage's next targets must postdate the commits that passed it.
            committed = await self._committed()
            ends, covered = await self._ends()
        except Exception as exc:  # the broker may be frozen or restarting: try again next tick
            self.last_error = repr(exc)
            log.warning("watermark tick failed: %r", exc)
            await self._drop_clients()
            return {}
        self.last_error = None
        lag: dict[str, int] = {}
        for (topic, partition), end in ends.items():
            lag[topic] = lag.get(topic, 0) + max(0, end - committed.get((topic, partition), 0))
        self.lag = lag
        moved = self.core.step(committed, ends, covered)
        now = int(time.time() * 1000)
        for system in moved:
            self.updated_ms[system] = now
        return moved

    async def _committed(self) -> dict[tuple[str, int], int]:
        if self._admin is None:
            self._admin = AIOKafkaAdminClient(bootstrap_servers=self._servers(), client_id=f"{self.group}-watermarks")
            await self._admin.start()
        offsets = await self._admin.list_consumer_group_offsets(
            self.group, partitions=[TopicPartition(t, p) for t, p in self.partitions])
        return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items() if meta.offset >= 0}

    async def _ends(self) -> tuple[dict[tuple[str, int], int], dict[str, int | None]]:
        # One reader for every tick (starting one costs a bootstrap and a metadata round): probe_tails assigns
        # its partitions afresh each time, and a new assignment starts with no high watermarks remembered.
        if self._reader is None:
            reader = AIOKafkaConsumer(bootstrap_servers=self._servers(), group_id=None, enable_auto_commit=False,
                                      auto_offset_reset="earliest", fetch_max_wait_ms=self.fetch_max_wait_ms,
                                      client_id=f"{self.group}-watermarks")
            await reader.start()
            self._reader = reader
        reported = await reported_ends(self._reader, self.partitions)
        quiet = _probing.set(True)
        try:
            found = await probe_tails(self._reader, self.probed.to_probe(reported), tails=self.probed.tails)
        finally:
            self._reader.unsubscribe()  # or its fetcher would go on reading the raw topics between ticks
            _probing.reset(quiet)
        self.probed.update(reported, found)
        ends = self.probed.ends(reported)
        newest = {tp: self.probed.newest(tp) for tp in reported}
        for system, ts in newest_by_source(newest, self.data_system).items():
            if ts is not None:
                self.newest_event[system] = max(ts, self.newest_event[system] or ts)
        return ends, mark_covers(newest_by_source(newest, self.mark_system), self.mark_skew_ms)

    def _newest_of(self, tp: tuple[str, int], tail: list[bytes | None]) -> int | None:
        """A partition's newest time, read from the end, not the whole tail batch (thousands of records under load):
        a mark's commit time on a mark topic, any change's on a data topic (records are in commit order)."""
        snapshot_reads = tp[0] not in self.mark_system
        for value in reversed(tail):
            ts = commit_ts_ms(value, snapshot_reads)
            if ts is not None:
                return ts
        return None

    async def _drop_clients(self) -> None:
        self.probed.clear()  # the broker may come back with other logs
        admin, self._admin = self._admin, None
        reader, self._reader = self._reader, None
        for close in ([admin.close] if admin else []) + ([reader.stop] if reader else []):
            try:
                await close()
            except Exception:  # already broken: nothing to release
                pass

    async def stop(self) -> None:
        await self._drop_clients()

    def health(self, waiting: dict[str, dict]) -> dict[str, dict]:
        """Per source: its watermark, how far behind the wall clock it is, and which alerts wait for it and why."""
        now = int(time.time() * 1000)
        out: dict[str, dict] = {}
        for system, mark in self.marks.items():
            wait = waiting.get(system)
            newest = self.newest.get(system)
            entry: dict = {
                "watermark": _iso(mark) if mark >= 0 else None,
                "lag_seconds": round((now - mark) / 1000, 3) if mark >= 0 else None,
                "last_event_time": _iso(newest) if newest is not None else None,
                "barriers": self.core.behind_by_stage(system),
                "waiting_alerts": wait["buckets"] if wait else 0,
            }
            if wait:
                entry["why"] = (f"{wait['buckets']} pending alert check(s) wait until everything {system} committed "
                                f"up to {_iso(wait['next_ms'])} has been processed; trueup has processed it up to "
                                f"{_iso(mark) if mark >= 0 else 'nothing yet'}")
            out[system] = entry
        return out


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"
