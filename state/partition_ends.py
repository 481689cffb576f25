"""True partition ends and the records just before them, from a short read at the reported end.

The local broker's ListOffsets answer can be the last batch's first offset + 1; its fetch responses are right.
A fetch from the reported end - 1 returns the tail up to the real end and carries the high watermark, so the end
is max(reported, last offset read + 1, high watermark). On Apache Kafka this only confirms the reported value.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition


async def probe_tails(consumer: AIOKafkaConsumer, reported: Mapping[Any, int], poll_ms: int = 200,
                      tails: Collection[Any] | None = None) -> dict[Any, tuple[int, list[bytes | None]]]:
    """{tp: (true end, values of the tail records read)} for the started, group-less consumer given.

    Keys may be any (topic, partition) pairs; they come back as given. Empty partitions (end 0 or None) are
    not read: a fetch there would only wait for data. Only the keys in `tails` (all when None) have their tail
    records decoded; of the others the end comes from the fetch response's high watermark, so a tail batch of
    thousands of records costs no decoding.
    """
    keys = {TopicPartition(tp[0], tp[1]): tp for tp in reported}
    found: dict[TopicPartition, tuple[int, list]] = {tp: (reported[key] or 0, []) for tp, key in keys.items()}
    pending = {tp for tp in keys if reported[keys[tp]]}
    decoded = {tp for tp in keys if tails is None or keys[tp] in tails}
    if pending:
        consumer.assign(list(pending))
        for tp in pending:
            # Fetches return whole batches, so from end - 1 comes the batch holding it, up to the real end.
            consumer.seek(tp, reported[keys[tp]] - 1)
        while pending:
            wanted = [tp for tp in pending if tp in decoded]
            # The fetcher reads every assigned partition; high watermarks arrive while the tails are drained.
            batches = await (consumer.getmany(*wanted, timeout_ms=poll_ms) if wanted else
                             consumer.getmany(*pending, timeout_ms=poll_ms, max_records=1))
            for tp in list(pending):
                records = batches.get(tp) or []
                end, tail = found[tp]
                if records:
                    end = max(end, records[-1].offset + 1)
                    if tp in decoded:
                        tail = tail + [r.value for r in records]
                highwater = consumer.highwater(tp)  # from this consumer's own fetch responses
                if highwater is not None:
                    end = max(end, highwater)
                found[tp] = (end, tail)
                if records or highwater is not None:
                    pending.discard(tp)
    return {keys[tp]: value for tp, value in found.items()}


async def reported_ends(consumer: AIOKafkaConsumer, tps: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
    offsets = await consumer.end_offsets([TopicPartition(t, p) for t, p in tps])
    return {(tp.topic, tp.partition): end for tp, end in offsets.items()}
