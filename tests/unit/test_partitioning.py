"""Key partitioning: bit for bit Kafka's murmur2, the default partitioner's partition for every key."""

from __future__ import annotations

import random

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from streams.partitioning import KeyPartitioner, murmur2

# Kafka's own test vectors (clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java), signed as Java has them.
KAFKA_CASES = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


def _signed(h: int) -> int:
    return h - (1 << 32) if h >= 1 << 31 else h


def test_murmur2_matches_kafkas_test_vectors():
    assert {key: _signed(murmur2(key)) for key in KAFKA_CASES} == KAFKA_CASES


def test_murmur2_matches_aiokafka_on_keys_of_every_length_and_byte():
    rng = random.Random(7)
    keys = [bytes(rng.randrange(256) for _ in range(n)) for n in range(70) for _ in range(30)]
    keys += [b"\xff" * n for n in range(12)] + [f"ACC|ACC-{i:06d}R3".encode() for i in range(500)]
    assert [murmur2(k) for k in keys] == [aiokafka_murmur2(k) for k in keys]


def test_a_key_goes_where_the_default_partitioner_puts_it_also_after_forgetting():
    rng = random.Random(11)
    keys = [f"entity-{rng.randrange(300)}".encode() for _ in range(2000)]
    ours, theirs = KeyPartitioner(remember=50), DefaultPartitioner()
    for count in (1, 4, 7):
        partitions = list(range(count))
        assert [ours(k, partitions, partitions) for k in keys] == [theirs(k, partitions, partitions) for k in keys]
    assert len(ours.hashes) <= 50
    assert ours(bytearray(b"entity-1"), [0, 1, 2, 3], [0, 1, 2, 3]) == theirs(b"entity-1", [0, 1, 2, 3], [0, 1, 2, 3])


def test_a_key_that_is_not_bytes_is_refused():
    with pytest.raises(TypeError, match="must be bytes, not int"):
        KeyPartitioner()(3, [0, 1], [0, 1])


def test_the_worker_app_places_keys_with_it():
    from streams.app import create_app
    from trueup.settings import Settings

    assert isinstance(create_app(Settings(), "127.0.0.1:9092", 0, 6066).conf.producer_partitioner, KeyPartitioner)


def test_a_record_without_key_goes_to_an_available_partition():
    ours = KeyPartitioner()
    assert {ours(None, [0, 1, 2, 3], [2]) for _ in range(20)} == {2}
    assert {ours(None, [0, 1], []) for _ in range(50)} <= {0, 1}
