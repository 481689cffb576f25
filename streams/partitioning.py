"""Kafka's default partitioning of keyed records (murmur2, as the Java client hashes), quick enough for every send.

aiokafka's murmur2 walks the key byte by byte in Python and cost the worker about 2% of its time: it runs for every
keyed send (canonical events, projections, alerts) and for every link a bundle routes. This one reads the key in
32-bit words and remembers the hashes of recent keys, which repeat (an entity's events, a bucket's links).
"""

from __future__ import annotations

import random
import struct

_SEED, _M, _MASK = 0x9747B28C, 0x5BD1E995, 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """MurmurHash2 of data with Kafka's seed, bit for bit Kafka's `Utils.murmur2` (as an unsigned int)."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    words = length >> 2
    if words:
        for k in struct.unpack_from(f"<{words}I", data):
            k = (k * _M) & _MASK
            k ^= k >> 24
            h = ((h * _M) & _MASK) ^ ((k * _M) & _MASK)
    rest = length & 3
    if rest:
        tail = length & ~3
        if rest >= 3:
            h ^= data[tail + 2] << 16
        if rest >= 2:
            h ^= data[tail + 1] << 8
        h = ((h ^ data[tail]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


class KeyPartitioner:
    """A producer partitioner (aiokafka's signature) that puts a key where Kafka's default partitioner would."""

    def __init__(self, remember: int = 65_536) -> None:
        self.remember = remember
        self.hashes: dict[bytes, int] = {}

    def hash_of(self, key: bytes) -> int:
        h = self.hashes.get(key)
        if h is None:
            if len(self.hashes) >= self.remember:
                self.hashes.clear()  # cheaper than an LRU's bookkeeping on every hit, and keys come back soon
            h = self.hashes[key] = murmur2(key) & 0x7FFFFFFF
        return h

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            return random.choice(available or all_partitions)
        if type(key) is not bytes:
            if not isinstance(key, (bytes, bytearray, memoryview)):
                raise TypeError(f"a record key must be bytes, not {type(key).__name__}")
            key = bytes(key)  # a bytearray or memoryview cannot be remembered
        return all_partitions[self.hash_of(key) % len(all_partitions)]
