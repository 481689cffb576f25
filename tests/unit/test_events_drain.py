"""Which events partitions hold changes an earlier version left for a join that read the events topics."""

from __future__ import annotations

from streams.events_drain import ENTITY_WRITE_HEADER, ON_LINKS, Unjoined, refusal, unjoined

MARKED = (("correlation_id", b"crm-tx-1"), (ENTITY_WRITE_HEADER, ON_LINKS))
UNMARKED = (("correlation_id", b"crm-tx-0"), ("idempotency_key", b"k"))


def test_a_partition_read_to_its_end_or_resuming_at_a_marked_event_is_joined():
    assert unjoined({("trueup.events.account", 0): None, ("trueup.events.invoice", 3): (7, MARKED)}) == []


def test_an_unmarked_event_past_the_commit_was_left_for_the_old_join():
    found = unjoined({("trueup.events.invoice", 1): (12, UNMARKED), ("trueup.events.account", 2): (40, ()),
                      ("trueup.events.account", 0): (3, MARKED)})
    assert found == [Unjoined("trueup.events.account", 2, 40), Unjoined("trueup.events.invoice", 1, 12)]


def test_the_mark_must_say_links_and_header_values_may_be_missing():
    assert unjoined({("e", 0): (1, ((ENTITY_WRITE_HEADER, b"events"),)), ("e", 1): (1, ((ENTITY_WRITE_HEADER, None),))}) \
        == [Unjoined("e", 0, 1), Unjoined("e", 1, 1)]


def test_the_refusal_names_the_setting_the_first_partition_and_the_file():
    found = [Unjoined("trueup.events.account", 2, 40), Unjoined("trueup.events.invoice", 1, 12)]
    text = refusal(found, "trueup", "trueup.events", "/etc/trueup.toml")
    assert text.startswith("setting worker.join_reads_events (environment variable TRUEUP_WORKER__JOIN_READS_EVENTS, "
                           "or field join_reads_events of [worker] in /etc/trueup.toml) is false")
    assert "group trueup" in text and "2 events partition(s)" in text
    assert "trueup.events.account[2] from offset 40" in text and "lag on trueup.events.* is 0" in text
    assert "/etc/trueup.toml" not in refusal(found, "trueup", "trueup.events", None)
