"""Wakes the watermark tick when this worker's offsets are committed, instead of up to a tick interval later.

A watermark stage passes only once the group's committed offsets reach its targets, so a tick that reads them
just after a commit lands passes the stage as early as the commits allow: each stage of a barrier saves the
wait for the next timer tick.
"""

from __future__ import annotations

import asyncio

from faust.sensors import Sensor


class CommitSignal(Sensor):
    """A Faust sensor: set when a commit completes; the tick loop waits on it or its interval, whichever is first."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._committed = asyncio.Event()

    def on_commit_completed(self, consumer, state) -> None:
        self._committed.set()

    async def wait(self, timeout_s: float) -> bool:
        """Until a commit completes or timeout_s passes; True if a commit woke it."""
        try:
            await asyncio.wait_for(self._committed.wait(), timeout_s)
            woken = True
        except asyncio.TimeoutError:
            woken = False
        # Cleared before the tick runs: a commit landing during the tick wakes the next one at once.
        self._committed.clear()
        return woken
