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


def test_holes_the_commit_passed_are_settled_as_lost_and_the_rest_stay_open():
    gaps = OffsetGaps()
    for offset in (0, 3, 7, 20):  # holes 1-2, 4-6, 8-19
        gaps.see("p0", offset)
    gaps.see("p1", 0)
    gaps.see("p1", 5)  # hole 1-4, never committed
    commits = {"p0": 5, "p1": None}
    assert gaps.settle(commits.get) == {"p0": [(1, 3), (4, 5)]}  # 5 and 6 not passed yet
    assert gaps.holes == {"p0": [[5, 7], [8, 20]], "p1": [[1, 5]]}
    assert gaps.settle(commits.get) == {}  # nothing more passed
    assert gaps.see("p0", 6) == (0, 1) and gaps.see("p0", 2) == (0, 0)  # 2 was settled as lost: no hole now
    commits["p0"] = 21
    assert gaps.settle(commits.get) == {"p0": [(5, 6), (8, 20)]}
    assert gaps.missing(["p0"]) == 0 and gaps.missing() == 4


def test_many_holes_are_found_by_search_and_a_read_again_outside_them_fills_nothing():
    gaps = OffsetGaps()
    for offset in range(0, 20_000, 2):  # a hole at every odd offset
        gaps.see("p0", offset)
    assert gaps.missing() == 9_999
    assert gaps.see("p0", 10_000) == (0, 0)  # handed over before
    assert gaps.see("p0", 10_001) == (0, 1)
    assert gaps.see("p0", 1) == (0, 1) and gaps.see("p0", 19_997) == (0, 1)
    assert gaps.missing() == 9_996


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


def test_the_watch_counts_per_topic_settles_against_the_commits_and_forgets_on_rebalance_signals(caplog):
    app = faust.App("offset-watch-test", broker="kafka://127.0.0.1:1", web_enabled=False)
    watch = OffsetWatch(app, {"links"})
    with caplog.at_level(logging.WARNING, logger="state.faust_offset_watch"):
        assert watch.see(_message("links", 0, 0)) == 0
        assert watch.see(_message("links", 0, 4)) == 3
        assert watch.see(_message("raw", 0, 0)) == 0 and watch.see(_message("raw", 0, 9)) == 0  # not watched
        assert watch.skipped == {"links": 3} and watch.missing("links") == 3
        assert watch.see(_message("links", 0, 2)) == 0 and watch.missing("links") == 2  # read again into it
        assert watch.filled == {"links": 1}
        app.consumer._committed_offset[TP("links", 0)] = 2  # Faust's own record of the group's commit
        assert watch.lost == {}
        watch.settle()
        assert watch.lost == {"links": 1}  # offset 1
        watch.see(_message("links", 1, 0))
        asyncio.run(app.on_partitions_revoked.send({TP("links", 0)}))
    lines = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert lines[0] == (logging.WARNING, "records 1 to 3 of links[0] were passed over, not handed to the agent: "
                                         "missing unless read again before the group's commit passes them")
    assert lines[1][0] == logging.ERROR and lines[1][1].startswith(
        "1 record(s) of links[0] were never handed to the agent and the group's commit passed them: lost (offsets 1-1)")
    assert lines[2][0] == logging.ERROR and lines[2][1].startswith("1 record(s) of links[0] passed over were still "
                                                                   "missing when the partition was reassigned")
    assert len(lines) == 3, lines
    assert watch.missing("links") == 0
    assert watch.see(_message("links", 0, 50)) == 0  # revoked and back: nothing to follow
    asyncio.run(app.on_partitions_assigned.send({TP("links", 0)}))
    assert watch.see(_message("links", 0, 90)) == 0  # assigned afresh: seeks to the commit
    assert watch.see(_message("links", 1, 2)) == 1  # never revoked: still followed
    assert watch.skipped == {"links": 4} and watch.missing("links") == 1


def test_the_join_agent_feeds_every_links_record_to_the_watch_and_its_metrics():
    """The join agent's own record path (JoinAgents._messages) and its watch's metrics (watch_links), on a
    stand-in holding only what the record path reads."""
    from streams.join_agent import JoinAgents, Recheck, watch_links
    from streams.link_bundles import pack
    from streams.metrics import WorkerMetrics

    app = faust.App("join-watch-test", broker="kafka://127.0.0.1:1", web_enabled=False)
    metrics = WorkerMetrics()
    agents = SimpleNamespace(links_name="trueup-links", metrics=metrics,
                             offset_watch=watch_links(app, "trueup-links", metrics))
    text = generate_latest(metrics.registry).decode()
    for name in ("trueup_records_skipped_total", "trueup_records_lost_total", "trueup_records_missing"):
        assert f'{name}{{topic="trueup-links"}} 0.0' in text  # served from the start
    [(_, bundle)] = pack([Recheck("ACC|a1")], lambda bucket: 0, 10, 1 << 20)
    for offset in (0, 1, 5):
        record = SimpleNamespace(topic="trueup-links", partition=2, offset=offset, value=bundle)
        assert JoinAgents._messages(agents, record) == [(Recheck("ACC|a1"), ("trueup-links", 2, offset, 0))]
    app.consumer._committed_offset[TP("trueup-links", 2)] = 4
    # As Faust's consumer reports each commit it completes: the watch settles then.
    consumer = app.consumer
    consumer.app.sensors.on_commit_completed(consumer, consumer.app.sensors.on_commit_initiated(consumer))
    text = generate_latest(metrics.registry).decode()
    assert 'trueup_records_skipped_total{topic="trueup-links"} 3.0' in text
    assert 'trueup_records_lost_total{topic="trueup-links"} 2.0' in text  # 2 and 3
    assert 'trueup_records_missing{topic="trueup-links"} 1.0' in text  # 4, above the commit


def test_a_failure_while_settling_is_logged_and_never_reaches_faust_s_commit_path(caplog):
    def refuse(topic: str, count: int) -> None:
        raise RuntimeError("metrics are gone")

    app = faust.App("offset-watch-fails", broker="kafka://127.0.0.1:1", web_enabled=False)
    watch = OffsetWatch(app, {"links"}, on_lost=refuse)
    watch.see(_message("links", 0, 0))
    watch.see(_message("links", 0, 3))
    consumer = app.consumer
    consumer._committed_offset[TP("links", 0)] = 3
    with caplog.at_level(logging.ERROR, logger="state.faust_offset_watch"):
        consumer.app.sensors.on_commit_completed(consumer, consumer.app.sensors.on_commit_initiated(consumer))
    assert watch.lost == {"links": 2}
    failure = [r for r in caplog.records if r.exc_info]
    assert [r.getMessage() for r in failure] == ["settling the offset watch's holes after a commit failed"]
    assert "metrics are gone" in str(failure[0].exc_info[1])
