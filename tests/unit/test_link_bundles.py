"""Link bundles: one links-topic record per target partition, each link still named on its own."""

from __future__ import annotations

import pickle

from streams.joins import Message
from streams.link_bundles import pack, unpack


def link(bucket: str, n: int, size: int = 0) -> Message:
    return Message(bucket, ("payment", f"py_{n}"), [n], data={"pad": "x" * size})


def links_in(value: bytes) -> list[Message]:
    return [m for m, _ in unpack(value, ("t-links", 0, 0))]


def partition_of(bucket: str) -> int:
    return int(bucket.rsplit("_", 1)[1]) % 2


def test_links_are_grouped_by_the_partition_of_their_bucket_in_send_order():
    links = [link("INV|in_1", 1), link("INV|in_2", 2), link("INV|in_3", 3), link("INV|in_1", 4)]
    out = list(pack(links, partition_of, max_links=10, max_bytes=1 << 20))
    assert [p for p, _ in out] == [1, 0]
    assert [(m.bucket, m.order) for m in links_in(out[0][1])] == [("INV|in_1", [1]), ("INV|in_3", [3]),
                                                                      ("INV|in_1", [4])]
    assert [(m.bucket, m.order) for m in links_in(out[1][1])] == [("INV|in_2", [2])]


def test_a_bundle_holds_at_most_max_links_and_max_bytes():
    many = [link("INV|in_0", n) for n in range(7)]
    assert [len(links_in(v)) for _, v in pack(many, partition_of, max_links=3, max_bytes=1 << 20)] == [3, 3, 1]
    big = [link("INV|in_0", n, size=400) for n in range(8)]
    values = [v for _, v in pack(big, partition_of, max_links=100, max_bytes=1500)]
    # The limit counts the pickled links a bundle holds; the list around them adds a few bytes per link.
    assert all(sum(len(blob) for blob in pickle.loads(v)) <= 1500 for v in values) and len(values) > 1
    assert all(sum(len(blob) for blob in pickle.loads(v)) > 1500 - len(pickle.loads(v)[0]) for v in values[:-1])
    assert [m.order for v in values for m in links_in(v)] == [[n] for n in range(8)]


def test_a_link_larger_than_max_bytes_goes_alone():
    values = [v for _, v in pack([link("INV|in_0", 1, size=5000)], partition_of, max_links=10, max_bytes=1024)]
    assert len(values) == 1 and len(values[0]) > 1024


def test_each_link_of_a_bundle_is_named_by_the_record_and_its_index():
    (_, value), = pack([link("INV|in_0", 1), link("INV|in_2", 2)], partition_of, max_links=10, max_bytes=1 << 20)
    named = unpack(value, ("t-links", 3, 41))
    assert [(m.order, source) for m, source in named] == [([1], ("t-links", 3, 41, 0)), ([2], ("t-links", 3, 41, 1))]


def test_a_record_of_one_message_keeps_the_record_as_its_source():
    message = link("VFY|invoice:in_1", 1)
    (got, source), = unpack(pickle.dumps(message, protocol=4), ("t-links", 0, 7))
    assert got == message and source == ("t-links", 0, 7)


def test_a_bundle_pickled_as_one_list_of_links_still_loads():
    links = [link("INV|in_0", 1), link("INV|in_2", 2)]
    named = unpack(pickle.dumps(links, protocol=4), ("t-links", 3, 41))
    assert named == [(links[0], ("t-links", 3, 41, 0)), (links[1], ("t-links", 3, 41, 1))]
