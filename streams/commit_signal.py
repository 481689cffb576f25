"""Wakes the watermark tick when this worker commits offsets, instead of up to a tick interval later.

A watermark stage passes only once the group's committed offsets reach its targets, so a tick that reads them
just after a commit lands passes the stage as early as the commits allow: each stage of a barrier saves the
wait for the next timer tick. Faust reports every commit attempt, one per broker_commit_interval even with
nothing to commit, so ticks follow that interval; the tick interval is the longest wait without one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from faust.sensors import Sensor


class CommitSignal(Sensor):
    """A Faust sensor: set when a commit attempt completes; the tick loop waits on it or its interval."""

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


async def follow_commits(signal: CommitSignal, interval_s: float, stopping: Callable[[], bool],
                         tick: Callable[[], Awaitable[None]]) -> None:
    """Tick after each commit and at least every interval_s, until the app stops: never once it is stopping,
    when partitions are revoked and the producer is closing (a commit on stop still wakes the wait)."""
    while not stopping():
        await signal.wait(interval_s)
        if stopping():
            return
        await tick()
