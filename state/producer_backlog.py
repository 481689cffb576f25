"""Wait while the producer holds more than a few unsent batches for any partition: backpressure for agents.

An agent that handles a long batch without yielding lets aiokafka's sender move only between batches, and the
sender has one produce request in flight at a time, each taking one batch per partition. A join draining a
backlog filled batches faster than that (one 200,000-event run): past the direct path's bound every record
then went through Faust's per-record queue, which grew past 55,000 records within two minutes, the slowest
path there is. Waiting here between batches hands the loop to the sender until it has caught up, and bounds the unsent
records in memory, as Kafka's own producer blocks a send while its buffer is full.
"""

from __future__ import annotations

import asyncio
from typing import Any


def backlog(batches: dict[Any, Any] | None, limit: int) -> list[Any]:
    """The oldest batch's future of every partition holding more than `limit` batches, unless it has ended.

    A batch leaves the accumulator when the sender takes it and ends when the broker answers, so an ended batch
    still there means the sender failed them all and will take none: nothing to wait for (the agent's next
    send meets the producer's error instead).
    """
    if not batches or limit <= 0:
        return []
    return [queue[0].future for queue in list(batches.values())
            if len(queue) > limit and not queue[0].future.done()]


def accumulator_batches(producer: Any) -> dict[Any, Any] | None:
    """aiokafka's batches per partition behind Faust's producer; None if not started or laid out otherwise."""
    kafka = getattr(producer, "_producer", None)
    return getattr(getattr(kafka, "_message_accumulator", None), "_batches", None)


async def ebb(producer: Any, limit: int) -> int:
    """Yield to the loop, then return once no partition holds more than `limit` unsent batches; how many waits.

    A batch's future ends when its request is answered, with a result or an error; a broker that does not
    answer holds the wait until aiokafka expires the batch (Faust's producer_request_timeout), as it holds
    Faust's commit, which flushes the producer. asyncio.wait never cancels those futures, even if this task is
    cancelled.
    """
    await asyncio.sleep(0)
    waits = 0
    while oldest := backlog(accumulator_batches(producer), limit):
        await asyncio.wait(oldest, return_when=asyncio.FIRST_COMPLETED)
        waits += 1
    return waits
