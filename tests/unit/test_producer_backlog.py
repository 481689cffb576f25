"""The wait between agent batches: until no partition holds more than the limit of unsent producer batches."""

from __future__ import annotations

import asyncio
from collections import deque
from types import SimpleNamespace

import pytest

from aiokafka.producer.message_accumulator import MessageAccumulator
from aiokafka.structs import TopicPartition

from state.producer_backlog import backlog, ebb


def producer_with(batches: dict) -> SimpleNamespace:
    """Faust's producer as far as the module reads it: aiokafka's accumulator and its batches per partition."""
    return SimpleNamespace(_producer=SimpleNamespace(_message_accumulator=SimpleNamespace(_batches=batches)))


def batch() -> SimpleNamespace:
    return SimpleNamespace(future=asyncio.get_running_loop().create_future())


async def sender(batches: dict, log: list, error: Exception | None = None) -> None:
    """aiokafka's sender in small: takes each partition's oldest batch per request, then the answer ends it."""
    while any(batches.values()):
        await asyncio.sleep(0.01)
        for tp, queue in batches.items():
            if queue:
                taken = queue.popleft()
                log.append(("sent", tp))
                if error is None:
                    taken.future.set_result(None)
                else:
                    taken.future.set_exception(error)


def test_only_partitions_over_the_limit_are_waited_for():
    async def main():
        over, under = deque([batch(), batch(), batch()]), deque([batch()])
        assert backlog({"a": over, "b": under}, 2) == [over[0].future]
        assert backlog({"a": over, "b": under}, 3) == []
        assert backlog({"a": over}, 0) == []  # 0: never wait
        assert backlog(None, 2) == []

    asyncio.run(main())


def test_the_wait_ends_once_the_sender_has_brought_every_partition_down_to_the_limit():
    async def main():
        batches = {"a": deque([batch() for _ in range(4)]), "b": deque([batch() for _ in range(2)])}
        log: list = []
        sending = asyncio.create_task(sender(batches, log))
        waits = await ebb(producer_with(batches), 1)
        log.append(("ebbed", None))
        assert waits == 3
        assert max(len(q) for q in batches.values()) <= 1
        # Three requests took a batch of each partition that had one: a's third brought it down to the limit.
        assert log == [("sent", "a"), ("sent", "b")] * 2 + [("sent", "a"), ("ebbed", None)]
        await sending

    asyncio.run(main())


def test_nothing_over_the_limit_or_no_producer_yet_returns_at_once():
    async def main():
        batches = {"a": deque([batch()])}
        assert await ebb(producer_with(batches), 1) == 0
        assert await ebb(SimpleNamespace(_producer=None), 1) == 0  # not started: nothing to wait for
        assert await ebb(producer_with({"a": deque([batch() for _ in range(5)])}), 0) == 0

    asyncio.run(main())


def test_a_failed_batch_ends_the_wait_without_raising_into_the_agent():
    async def main():
        first = batch()
        batches = {"a": deque([first, batch()])}
        sending = asyncio.create_task(sender(batches, [], error=RuntimeError("broker gone")))
        assert await ebb(producer_with(batches), 1) == 1
        assert isinstance(first.future.exception(), RuntimeError)
        await sending

    asyncio.run(main())


def test_an_agent_cancelled_while_waiting_leaves_the_batches_alone():
    async def main():
        batches = {"a": deque([batch(), batch()])}
        waiting = asyncio.create_task(ebb(producer_with(batches), 1))
        await asyncio.sleep(0.01)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert not any(b.future.cancelled() for b in batches["a"])

    asyncio.run(main())


def test_batches_a_dead_sender_failed_in_place_end_the_wait_at_once():
    async def main():
        # aiokafka's own accumulator: when its sender dies it fails every batch and leaves them where they are.
        accumulator = MessageAccumulator(SimpleNamespace(), batch_size=100, compression_type=0, batch_ttl=30)
        tp = TopicPartition("changelog", 0)
        for _ in range(3):
            accumulator._append_batch(accumulator.create_builder(), tp)
        accumulator.fail_all(RuntimeError("sender died"))
        producer = SimpleNamespace(_producer=SimpleNamespace(_message_accumulator=accumulator))
        assert len(accumulator._batches[tp]) == 3
        assert await asyncio.wait_for(ebb(producer, 1), timeout=1) == 0
        for queued in accumulator._batches[tp]:
            queued.future.exception()  # retrieved: the test leaves no unretrieved error behind

    asyncio.run(main())
