"""Verification on a schedule inside the workers: the leader runs `trueup verify` in a thread, progress in /health."""

from __future__ import annotations

import asyncio
import logging
import time

import faust

from streams.mapping import Mapping
from trueup.settings import Settings

log = logging.getLogger(__name__)


class ScheduledVerify:
    def __init__(self, app: faust.App, settings: Settings, mapping: Mapping, bootstrap: str) -> None:
        self.app, self.settings, self.mapping, self.bootstrap = app, settings, mapping, bootstrap
        self.state: dict = {"scheduled_every_s": settings.verify.interval_s or None, "running": False,
                            "step": None, "last": None, "last_error": None}

    def _run(self) -> dict:
        from trueup.verify import Verifier  # the command's code, run here in a thread

        settings = self.settings
        dsns = {name: settings.sources[name].dsn.get_secret_value() for name in settings.enabled_sources
                if settings.has_database(name) and settings.sources[name].dsn is not None}
        token = settings.api.token.get_secret_value() if settings.api.token else None
        verifier = Verifier(settings, self.mapping, str(self.app.conf.canonical_url), dsns, self.bootstrap,
                            buckets=settings.verify.buckets, token=token,
                            progress=lambda text: self.state.update(step=text))
        audit = settings.data_dir.resolve() / "verify" / "repairs.jsonl"
        return verifier.run(repair=settings.verify.auto_repair, audit_path=audit).as_dict()

    async def run_once(self) -> None:
        if self.state["running"] or not self.app.tables.recovery.completed.is_set():
            return
        self.state.update(running=True, step="starting", started_at=time.time())
        try:
            self.state["last"] = await asyncio.to_thread(self._run)
            self.state["last_error"] = None
            log.info("scheduled verify: %s", self.state["last"])
        except Exception as exc:  # a failed run is reported and retried at the next interval
            self.state["last_error"] = f"{type(exc).__name__}: {exc}"
            log.warning("scheduled verify failed: %s", self.state["last_error"])
        finally:
            self.state.update(running=False, step=None)
