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
    larger on its own, max_bytes of pickled links; links keep their order within a partition.

    A bundle is a pickled list of links pickled one by one: each is pickled once, and its size is known before
    it joins a bundle, so no bundle is pickled again to be split.
    """
    by_partition: dict[int, list[bytes]] = {}
    for link in links:
        by_partition.setdefault(partition_of(link.bucket), []).append(pickling.dumps(link))
    for partition, blobs in by_partition.items():
        bundle: list[bytes] = []
        size = 0
        for blob in blobs:
            if bundle and (len(bundle) == max_links or size + len(blob) > max_bytes):
                yield partition, pickling.dumps(bundle)
                bundle, size = [], 0
            bundle.append(blob)
            size += len(blob)
        if bundle:
            yield partition, pickling.dumps(bundle)


def unpack(value: bytes, record: tuple) -> list[tuple[object, tuple]]:
    """[(message, source)] of one links-topic record; source names the delivery for replay detection.

    A single-message record keeps the record's own (topic, partition, offset) as its source, so states
    written before bundles still recognise their redeliveries. Bundles of links pickled as one list, as
    written before links were pickled one by one, still load.
    """
    loaded = pickling.loads(value)
    if isinstance(loaded, list):
        return [(pickling.loads(m) if isinstance(m, bytes) else m, (*record, index))
                for index, m in enumerate(loaded)]
    return [(loaded, record)]
