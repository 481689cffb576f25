"""Link messages packed per target partition: one links-topic record carries what a batch sends to one partition.

A link record cost the join more than the link itself: a produce, a fetch, Faust's per-record path and a
commit. Every bucket lives on the partition its key hashes to, so a bundle goes to the partition each of its
links would have gone to alone, in the order they were sent. A reader names each link by its record and its
index in the bundle, so a redelivered bundle is recognised link by link, as a redelivered single link was.
Records holding one pickled message (rechecks, `trueup verify` findings) stay valid. Pure: no Kafka.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterator

# A bundle is a pickled list; a single link record holds one pickled Message or Recheck.
_PROTOCOL = 4


def pack(links: list, partition_of: Callable[[str], int], max_links: int,
         max_bytes: int) -> Iterator[tuple[int, bytes]]:
    """(partition, bundle value) per target partition, each at most max_links links and, unless one link is
    larger on its own, max_bytes pickled; links keep their order within a partition."""
    by_partition: dict[int, list] = {}
    for link in links:
        by_partition.setdefault(partition_of(link.bucket), []).append(link)
    for partition, group in by_partition.items():
        for start in range(0, len(group), max_links):
            yield from ((partition, value) for value in _fit(group[start:start + max_links], max_bytes))


def _fit(group: list, max_bytes: int) -> Iterator[bytes]:
    value = pickle.dumps(group, protocol=_PROTOCOL)
    if len(value) <= max_bytes or len(group) == 1:
        yield value
        return
    half = len(group) // 2
    yield from _fit(group[:half], max_bytes)
    yield from _fit(group[half:], max_bytes)


def unpack(value: bytes, record: tuple) -> list[tuple[object, tuple]]:
    """[(message, source)] of one links-topic record; source names the delivery for replay detection.

    A single-message record keeps the record's own (topic, partition, offset) as its source, so states
    written before bundles still recognise their redeliveries.
    """
    loaded = pickle.loads(value)
    if isinstance(loaded, list):
        return [(message, (*record, index)) for index, message in enumerate(loaded)]
    return [(loaded, record)]
