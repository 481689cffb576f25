"""The watermark tick follows a commit at once, and still runs every interval when nothing is committed."""

from __future__ import annotations

import asyncio
import time

from streams.commit_signal import CommitSignal


def test_a_completed_commit_wakes_the_wait_before_its_interval():
    async def run() -> tuple[bool, float]:
        signal = CommitSignal()
        asyncio.get_running_loop().call_later(0.05, signal.on_commit_completed, None, None)
        started = time.monotonic()
        woken = await signal.wait(5.0)
        return woken, time.monotonic() - started

    woken, waited = asyncio.run(run())
    assert woken and waited < 1.0


def test_without_a_commit_the_wait_ends_after_its_interval():
    async def run() -> tuple[bool, float]:
        signal = CommitSignal()
        started = time.monotonic()
        woken = await signal.wait(0.05)
        return woken, time.monotonic() - started

    woken, waited = asyncio.run(run())
    assert not woken and waited >= 0.05


def test_a_commit_during_a_tick_wakes_the_next_wait_at_once_and_only_that_one():
    async def run() -> list[bool]:
        signal = CommitSignal()
        signal.on_commit_completed(None, None)  # completed while the tick before was running
        return [await signal.wait(5.0), await signal.wait(0.05)]

    assert asyncio.run(run()) == [True, False]
