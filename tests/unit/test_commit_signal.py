"""The watermark tick follows a commit at once, and still runs every interval when nothing is committed."""

from __future__ import annotations

import asyncio
import time

from streams.commit_signal import CommitSignal, follow_commits


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


def test_the_loop_ticks_after_commits_and_never_once_the_app_is_stopping():
    async def run() -> tuple[int, int]:
        signal, stopping, ticks = CommitSignal(), [False], []

        async def tick() -> None:
            ticks.append(time.monotonic())
            if len(ticks) == 3:
                stopping[0] = True
                signal.on_commit_completed(None, None)  # the commit Faust makes on stop wakes the wait

        loop = asyncio.get_running_loop()
        loop.call_later(0.02, signal.on_commit_completed, None, None)
        started = time.monotonic()
        await asyncio.wait_for(follow_commits(signal, 0.2, lambda: stopping[0], tick), 5)
        return len(ticks), round(ticks[0] - started, 2)

    count, first = asyncio.run(run())
    assert count == 3  # no fourth tick after the stop, though a commit woke the wait
    assert first < 0.15  # the first tick followed the commit, not the 0.2 s interval
