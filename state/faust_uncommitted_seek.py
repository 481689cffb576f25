"""After every assignment, read stream partitions the group never committed from their beginning.

Faust seeks an assigned partition only to a committed offset above 0. A partition without one keeps the
position its fetcher reached meanwhile: the fetcher starts on a new assignment at once, and Faust drops what
it returns for partitions not yet active. Measured on a survivor taking over a stopped worker's partitions:
positions of 1 to 11 on partitions nobody had committed, so those records were never processed. Seeking such
partitions to their beginning makes the assignment read them. Table changelogs are left alone: Faust never
commits them and positions them itself for recovery.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from typing import Any

import faust
from aiokafka.errors import IllegalStateError

from state.faust_consumer_hook import on_new_consumer

log = logging.getLogger(__name__)


def install(app: faust.App) -> None:
    """Call once, before the app starts."""
    on_new_consumer(app, "uncommitted_seek", lambda consumer: _wrap(app, consumer))


def uncommitted(committed: Mapping[Any, int | None], changelogs: Collection[str]) -> list[Any]:
    """The stream partitions a seek to committed offsets leaves where they are: no commit, or a commit of 0."""
    return sorted((tp for tp, offset in committed.items()
                   if (offset is None or offset <= 0) and tp.topic not in changelogs), key=str)


def _wrap(app: faust.App, consumer: Any) -> Any:
    seek_to_committed = consumer.seek_to_committed

    async def _seek_to_committed() -> Mapping[Any, int | None]:
        committed = await seek_to_committed()
        fresh = uncommitted(committed, app.tables.changelog_topics)
        if fresh:
            try:
                await consumer._thread.seek_to_beginning(*fresh)
            except IllegalStateError:  # the assignment changed meanwhile: the next one seeks again
                return committed
            log.info("reading %d partition(s) without a committed offset from their beginning", len(fresh))
        return committed

    consumer.seek_to_committed = _seek_to_committed
    return consumer
