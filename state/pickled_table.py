"""A Faust table whose values are Python objects pickled to bytes, so Decimal, datetime and tuples survive.

Faust picks a table's serializer from its value type (JSON unless the type says otherwise), and JSON
would turn Decimal money into text; storing raw bytes and pickling here keeps state exact.
"""

from __future__ import annotations

import faust

from streams import pickling


class PickledTable:
    """get/set over a Faust table with bytes keys and pickled values (RocksDB-backed, changelogged)."""

    def __init__(self, app: faust.App, name: str, partitions: int, help: str) -> None:
        self.table = app.Table(name, default=None, partitions=partitions, key_type=bytes, value_type=bytes,
                               help=help)

    def get(self, key: bytes):
        raw = self.table.get(key)
        return None if raw is None else pickling.loads(raw)

    def set(self, key: bytes, value) -> None:
        self.table[key] = pickling.dumps(value)

    def active_partitions(self) -> set[int]:
        """The table partitions this worker serves as active (standbys excluded)."""
        topic = self.table.changelog_topic.get_topic_name()
        return {tp.partition for tp in self.table.app.assignor.assigned_actives() if tp.topic == topic}

    def partition_items(self, partition: int):
        """(key, value) of one partition's entries, from its own RocksDB; a scan, for rebuilds only."""
        store = self.table.data
        db = store._db_for_partition(partition)  # Faust keeps one RocksDB per partition; no public view of one
        for raw_key, raw in store._visible_items(db):
            if raw is not None:
                yield store._decode_key(raw_key), pickling.loads(store._decode_value(raw))

    def items(self):
        """(key, value) of every entry this worker holds; a scan, for rare rebuilds only."""
        for key, raw in self.table.items():
            if raw is not None:
                yield key, pickling.loads(raw)
