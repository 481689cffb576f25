"""The join's take split into batches by message count: a take of bundles must not become one huge batch."""

from __future__ import annotations

from streams.join_batch import runs_of


def take(*sizes: int) -> list[tuple[str, list]]:
    return [(f"r{i}", list(range(size))) for i, size in enumerate(sizes)]


def test_records_are_grouped_in_order_up_to_the_message_limit():
    runs = list(runs_of(take(400, 300, 200, 500, 100), limit=1000))
    assert [[record for record, _ in run] for run in runs] == [["r0", "r1", "r2"], ["r3", "r4"]]
    assert all(sum(len(m) for _, m in run) <= 1000 for run in runs)


def test_a_record_over_the_limit_is_a_run_by_itself_and_never_split():
    runs = list(runs_of(take(10, 2500, 10), limit=1000))
    assert [[(record, len(m)) for record, m in run] for run in runs] == [[("r0", 10)], [("r1", 2500)], [("r2", 10)]]


def test_a_take_of_single_messages_stays_one_batch_and_nothing_is_lost():
    records = take(*[1] * 1000)
    runs = list(runs_of(records, limit=1000))
    assert len(runs) == 1 and runs[0] == records
    assert list(runs_of([], limit=10)) == []
    assert [r for run in runs_of(take(3, 9, 4, 1, 7), limit=8) for r in run] == take(3, 9, 4, 1, 7)
