"""Link messages packed per target partition: one links-topic record carries what a batch sends to one partition.

A link record cost the join more than the link itself: a produce, a fetch, Faust's per-record path and a
commit. Every bucket lives on the partition its key hashes to, so a bundle goes to the partition each of its
links would have gone to alone, in the order they were sent. A reader names each link by its record and its
index in the bundle, so a redelivered bundle is recognised link by link, as a redelivered single link was.
Records holding one pickled message (rechecks, `trueup verify` findings) stay valid. Pure: no Kafka.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from streams import pickling


def pack(links: list, partition_of: Callable[[str], int], max_links: int,
         max_bytes: int) -> Iterator[tuple[int, bytes]]:
    """(partition, bundle value) per target partition, each at most max_links links and, unless one link is
    larger on its own, max_bytes pickled; links keep their order within a partition.

    A bundle is one pickled list: links of one batch share field names and classes, which a single pickle
    writes once (half the bytes, and half the time, of pickling each link on its own).
    """
    by_partition: dict[int, list] = {}
    for link in links:
        by_partition.setdefault(partition_of(link.bucket), []).append(link)
    for partition, group in by_partition.items():
        for start in range(0, len(group), max_links):
            yield from ((partition, value) for value in _fit(group[start:start + max_links], max_bytes))


def _fit(group: list, max_bytes: int) -> Iterator[bytes]:
    value = pickling.dumps(group)
    if len(value) <= max_bytes or len(group) == 1:
        yield value
        return
    # Cut into as many even parts as the size asks for, and one more since links differ in size: each part is
    # pickled again, so a bundle far over the limit is not halved (and pickled) level after level.
    step = -(-len(group) // (len(value) // max_bytes + 2))
    for start in range(0, len(group), step):
        yield from _fit(group[start:start + step], max_bytes)


def unpack(value: bytes, record: tuple) -> list[tuple[object, tuple]]:
    """[(message, source)] of one links-topic record; source names the delivery for replay detection.

    A single-message record keeps the record's own (topic, partition, offset) as its source, so states
    written before bundles still recognise their redeliveries.
    """
    loaded = pickling.loads(value)
    if isinstance(loaded, list):
        return [(message, (*record, index)) for index, message in enumerate(loaded)]
    return [(loaded, record)]
