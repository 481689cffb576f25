"""Link bundles: one links-topic record per target partition, each link still named on its own."""

from __future__ import annotations

import pickle

from streams.joins import Message
from streams.link_bundles import pack, unpack


def link(bucket: str, n: int, size: int = 0) -> Message:
    return Message(bucket, ("payment", f"py_{n}"), [n], data={"pad": "x" * size})


def partition_of(bucket: str) -> int:
    return int(bucket.rsplit("_", 1)[1]) % 2


def test_links_are_grouped_by_the_partition_of_their_bucket_in_send_order():
    links = [link("INV|in_1", 1), link("INV|in_2", 2), link("INV|in_3", 3), link("INV|in_1", 4)]
    out = list(pack(links, partition_of, max_links=10, max_bytes=1 << 20))
    assert [p for p, _ in out] == [1, 0]
    assert [(m.bucket, m.order) for m in pickle.loads(out[0][1])] == [("INV|in_1", [1]), ("INV|in_3", [3]),
                                                                      ("INV|in_1", [4])]
    assert [(m.bucket, m.order) for m in pickle.loads(out[1][1])] == [("INV|in_2", [2])]


def test_a_bundle_holds_at_most_max_links_and_max_bytes():
    many = [link("INV|in_0", n) for n in range(7)]
    assert [len(pickle.loads(v)) for _, v in pack(many, partition_of, max_links=3, max_bytes=1 << 20)] == [3, 3, 1]
    big = [link("INV|in_0", n, size=400) for n in range(8)]
    values = [v for _, v in pack(big, partition_of, max_links=100, max_bytes=1500)]
    assert all(len(v) <= 1500 for v in values) and len(values) > 1
    assert [m.order for v in values for m in pickle.loads(v)] == [[n] for n in range(8)]


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


def test_a_bundle_far_over_max_bytes_is_cut_into_parts_that_fit_in_one_pass():
    big = [link("INV|in_0", n, size=400) for n in range(40)]
    values = [v for _, v in pack(big, partition_of, max_links=100, max_bytes=4000)]
    assert all(len(v) <= 4000 for v in values)
    assert [m.order for v in values for m in pickle.loads(v)] == [[n] for n in range(40)]
    assert len(values) <= 6  # even parts of about 8 links, not pieces from halving level after level
