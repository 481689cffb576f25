"""The offset watch's pure part: forward jumps are losses, reads again are not, forgotten partitions start afresh."""

from state.offset_gaps import OffsetGaps


def test_contiguous_offsets_skip_nothing():
    gaps = OffsetGaps()
    assert [gaps.see("p0", offset) for offset in range(5, 10)] == [0, 0, 0, 0, 0]


def test_a_forward_jump_counts_the_offsets_between():
    gaps = OffsetGaps()
    gaps.see("p0", 3)
    assert gaps.see("p0", 7) == 3  # 4, 5 and 6 never came
    assert gaps.see("p0", 8) == 0


def test_a_read_again_is_not_a_loss_and_is_followed_from_where_it_went_back_to():
    gaps = OffsetGaps()
    for offset in (10, 11, 12):
        gaps.see("p0", offset)
    assert gaps.see("p0", 11) == 0  # sought back to a held record
    assert gaps.see("p0", 11) == 0  # the same record again
    assert gaps.see("p0", 14) == 2  # but 12 and 13 must come before 14 now


def test_partitions_are_followed_apart():
    gaps = OffsetGaps()
    gaps.see("p0", 0)
    gaps.see("p1", 100)
    assert gaps.see("p0", 1) == 0
    assert gaps.see("p1", 102) == 1


def test_a_forgotten_partition_starts_afresh_and_the_others_do_not():
    gaps = OffsetGaps()
    gaps.see("p0", 0)
    gaps.see("p1", 0)
    gaps.forget(["p0", "unknown"])
    assert gaps.see("p0", 500) == 0  # reassigned: another worker read on meanwhile
    assert gaps.see("p1", 500) == 499


class _Message:
    def __init__(self, topic: str, partition: int, offset: int) -> None:
        self.topic, self.partition, self.offset = topic, partition, offset


def test_the_watch_counts_per_topic_ignores_others_and_forgets_on_rebalance_signals():
    import asyncio

    import faust
    from faust.types import TP

    from state.faust_offset_watch import OffsetWatch

    app = faust.App("offset-watch-test", broker="kafka://127.0.0.1:1", web_enabled=False)
    watch = OffsetWatch(app, {"links"})
    assert watch.see(_Message("links", 0, 0)) == 0
    assert watch.see(_Message("links", 0, 4)) == 3
    assert watch.see(_Message("raw", 0, 0)) == 0 and watch.see(_Message("raw", 0, 9)) == 0  # not watched
    assert watch.skipped == {"links": 3}
    watch.see(_Message("links", 1, 0))

    asyncio.run(app.on_partitions_revoked.send({TP("links", 0)}))
    assert watch.see(_Message("links", 0, 50)) == 0  # revoked and back: nothing to follow
    asyncio.run(app.on_partitions_assigned.send({TP("links", 0)}))
    assert watch.see(_Message("links", 0, 90)) == 0  # assigned afresh: seeks to the commit
    assert watch.see(_Message("links", 1, 2)) == 1  # never revoked: still followed
    assert watch.skipped == {"links": 4}
