"""What `/health` reports: per source its lag, slot lag, last event and watermark; per worker its partitions."""

from __future__ import annotations

import asyncio
import logging
import time

from connectors.debezium_config import load_connector_config
from streams.mapping import Mapping
from trueup.settings import Settings
from trueup.stack.postgres import slot_lag_bytes

log = logging.getLogger(__name__)
SLOT_LAG_EVERY_S = 5.0


class SlotLag:
    """Replication slot lag per source, read from PostgreSQL at most every few seconds (off the event loop)."""

    def __init__(self, settings: Settings) -> None:
        self.targets: dict[str, tuple[str, str]] = {}
        for name in settings.enabled_sources:
            dsn = settings.sources[name].dsn
            if dsn is None:
                continue
            try:
                slot = load_connector_config(settings.connector_config(name)).slot
            except Exception as exc:  # a poller source has no Debezium config: no slot to watch
                log.debug("no replication slot for %s: %s", name, exc)
                continue
            self.targets[name] = (dsn.get_secret_value(), slot)
        self.values: dict[str, int | None] = {}
        self.errors: dict[str, str] = {}
        self._read_at = 0.0

    async def refresh(self) -> None:
        if time.monotonic() - self._read_at < SLOT_LAG_EVERY_S:
            return
        self._read_at = time.monotonic()
        for name, (dsn, slot) in self.targets.items():
            try:
                self.values[name] = await asyncio.to_thread(slot_lag_bytes, dsn, slot)
                self.errors.pop(name, None)
            except Exception as exc:  # a database down must not break health
                self.values[name] = None
                self.errors[name] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def sources_health(settings: Settings, mapping: Mapping, by_system: dict[str, dict], slots: SlotLag) -> dict:
    out = {}
    for name in settings.enabled_sources:
        entry = dict(by_system.get(mapping.sources[name].system, {}))
        entry["slot_lag_bytes"] = slots.values.get(name)
        if name in slots.errors:
            entry["slot_error"] = slots.errors[name]
        out[name] = entry
    return out
