"""The offset watch: offsets passed over open holes, reads again fill them, forgotten partitions start afresh."""

import asyncio
import logging
from types import SimpleNamespace

import faust
from faust.types import TP
from prometheus_client import generate_latest

from state.faust_offset_watch import OffsetWatch
from state.offset_gaps import OffsetGaps


def test_contiguous_offsets_pass_nothing_over():
    gaps = OffsetGaps()
    assert [gaps.see("p0", offset) for offset in range(5, 10)] == [(0, 0)] * 5
    assert gaps.missing() == 0


def test_a_forward_jump_opens_a_hole_of_the_offsets_between():
    gaps = OffsetGaps()
    gaps.see("p0", 3)
    assert gaps.see("p0", 7) == (3, 0)  # 4, 5 and 6 never came
    assert gaps.see("p0", 8) == (0, 0)
    assert gaps.holes == {"p0": [[4, 7]]} and gaps.missing() == 3


def test_reads_again_fill_holes_and_never_count_what_was_handed_over():
    gaps = OffsetGaps()
    for offset in (10, 11, 12, 15):  # 13 and 14 passed over
        gaps.see("p0", offset)
    assert gaps.missing() == 2
    assert gaps.see("p0", 11) == (0, 0)  # sought back to the commit: handed over before, not a hole
    assert gaps.see("p0", 12) == (0, 0)
    assert gaps.see("p0", 14) == (0, 1)  # read again into the hole (13 passed over again, no new hole)
    assert gaps.holes == {"p0": [[13, 14]]}
    assert gaps.see("p0", 13) == (0, 1)
    assert gaps.holes == {} and gaps.missing() == 0
    assert gaps.see("p0", 15) == (0, 0) and gaps.see("p0", 16) == (0, 0)


def test_a_record_in_the_middle_of_a_hole_splits_it():
    gaps = OffsetGaps()
    gaps.see("p0", 0)
    gaps.see("p0", 10)
    assert gaps.see("p0", 5) == (0, 1)
    assert gaps.holes == {"p0": [[1, 5], [6, 10]]} and gaps.missing() == 8


def test_partitions_are_followed_apart():
    gaps = OffsetGaps()
    gaps.see("p0", 0)
    gaps.see("p1", 100)
    assert gaps.see("p0", 1) == (0, 0)
    assert gaps.see("p1", 102) == (1, 0)
    assert gaps.missing(["p0"]) == 0 and gaps.missing(["p1"]) == 1


def test_a_forgotten_partition_starts_afresh_says_what_it_left_missing_and_the_others_go_on():
    gaps = OffsetGaps()
    gaps.see("p0", 0)
    gaps.see("p0", 3)
    gaps.see("p1", 0)
    assert gaps.forget(["p0", "unknown"]) == {"p0": 2}
    assert gaps.missing() == 0
    assert gaps.see("p0", 500) == (0, 0)  # reassigned: another worker read on meanwhile
    assert gaps.see("p1", 500) == (499, 0)


def _message(topic: str, partition: int, offset: int) -> SimpleNamespace:
    return SimpleNamespace(topic=topic, partition=partition, offset=offset)


def test_the_watch_counts_per_topic_ignores_others_and_forgets_on_rebalance_signals(caplog):
    app = faust.App("offset-watch-test", broker="kafka://127.0.0.1:1", web_enabled=False)
    watch = OffsetWatch(app, {"links"})
    with caplog.at_level(logging.WARNING, logger="state.faust_offset_watch"):
        assert watch.see(_message("links", 0, 0)) == 0
        assert watch.see(_message("links", 0, 4)) == 3
        assert watch.see(_message("raw", 0, 0)) == 0 and watch.see(_message("raw", 0, 9)) == 0  # not watched
        assert watch.skipped == {"links": 3} and watch.missing("links") == 3
        assert watch.see(_message("links", 0, 2)) == 0 and watch.missing("links") == 2  # read again into it
        watch.see(_message("links", 1, 0))
        asyncio.run(app.on_partitions_revoked.send({TP("links", 0)}))
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2, errors
    assert "3 record(s) of links[0] before offset 4 were passed over" in errors[0]
    assert "2 record(s) of links[0] were still missing when the partition was reassigned" in errors[1]
    assert watch.missing("links") == 0
    assert watch.see(_message("links", 0, 50)) == 0  # revoked and back: nothing to follow
    asyncio.run(app.on_partitions_assigned.send({TP("links", 0)}))
    assert watch.see(_message("links", 0, 90)) == 0  # assigned afresh: seeks to the commit
    assert watch.see(_message("links", 1, 2)) == 1  # never revoked: still followed
    assert watch.skipped == {"links": 4} and watch.missing("links") == 1


def test_the_join_agent_feeds_every_links_record_to_the_watch_and_its_metrics():
    """The join agent's own record path (JoinAgents._messages), on a stand-in holding only what it reads."""
    from streams.join_agent import JoinAgents, Recheck
    from streams.link_bundles import pack
    from streams.metrics import WorkerMetrics

    app = faust.App("join-watch-test", broker="kafka://127.0.0.1:1", web_enabled=False)
    metrics = WorkerMetrics()
    agents = SimpleNamespace(links_name="trueup-links", offset_watch=OffsetWatch(app, {"trueup-links"}),
                             metrics=metrics)
    metrics.records_missing.labels("trueup-links").set_function(lambda: agents.offset_watch.missing("trueup-links"))
    [(_, bundle)] = pack([Recheck("ACC|a1")], lambda bucket: 0, 10, 1 << 20)
    for offset in (0, 1, 5):
        record = SimpleNamespace(topic="trueup-links", partition=2, offset=offset, value=bundle)
        assert JoinAgents._messages(agents, record) == [(Recheck("ACC|a1"), ("trueup-links", 2, offset, 0))]
    text = generate_latest(metrics.registry).decode()
    assert 'trueup_records_skipped_total{topic="trueup-links"} 3.0' in text
    assert 'trueup_records_missing{topic="trueup-links"} 3.0' in text
