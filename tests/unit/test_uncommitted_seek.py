"""A worker's seek after an assignment rewinds stream partitions nobody committed, and leaves the rest."""

from __future__ import annotations

import asyncio

from faust.types import TP

from state.faust_uncommitted_seek import uncommitted
from streams.app import create_app
from trueup.settings import Settings


def test_only_stream_partitions_without_a_commit_are_rewound():
    committed = {TP("raw", 0): None, TP("raw", 1): 0, TP("raw", 2): 7, TP("app-t-changelog", 0): None}
    assert uncommitted(committed, {"app-t-changelog"}) == [TP("raw", 0), TP("raw", 1)]


def test_perform_seek_rewinds_uncommitted_partitions_of_the_worker_consumer(tmp_path):
    rewound: list[tuple] = []
    committed = {TP("crm.public.accounts", 0): None, TP("crm.public.accounts", 1): 12,
                 TP("trueup-join_buckets-changelog", 0): None}

    async def run():
        app = create_app(Settings(data_dir=tmp_path), "127.0.0.1:9", 0, 6099)
        app.Table("join_buckets")  # its changelog, trueup-join_buckets-changelog, is Faust's to position
        assert "trueup-join_buckets-changelog" in app.tables.changelog_topics
        consumer = app.consumer
        thread = consumer._thread  # stands in for the consumer thread only: nothing here talks to a broker

        async def seek_to_committed():
            return committed

        async def seek_to_beginning(*tps):
            rewound.append(tps)

        thread.seek_to_committed = seek_to_committed
        thread.seek_to_beginning = seek_to_beginning
        await consumer.perform_seek()
        return consumer._read_offset

    read_offset = asyncio.run(run())
    assert rewound == [(TP("crm.public.accounts", 0),)]
    assert read_offset[TP("crm.public.accounts", 0)] is None and read_offset[TP("crm.public.accounts", 1)] == 12
