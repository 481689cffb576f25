"""A Faust table whose values are Python objects pickled to bytes, so Decimal, datetime and tuples survive.

Faust picks a table's serializer from its value type (JSON unless the type says otherwise), and JSON
would turn Decimal money into text; storing raw bytes and pickling here keeps state exact.
"""

from __future__ import annotations

import pickle

import faust


class PickledTable:
    """get/set over a Faust table with bytes keys and pickled values (RocksDB-backed, changelogged)."""

    def __init__(self, app: faust.App, name: str, partitions: int, help: str) -> None:
        self.table = app.Table(name, default=None, partitions=partitions, key_type=bytes, value_type=bytes,
                               help=help)

    def get(self, key: bytes):
        raw = self.table.get(key)
        return None if raw is None else pickle.loads(raw)

    def set(self, key: bytes, value) -> None:
        self.table[key] = pickle.dumps(value, protocol=4)

    def items(self):
        """(key, value) of every entry this worker holds; a scan, for rare rebuilds only."""
        for key, raw in self.table.items():
            if raw is not None:
                yield key, pickle.loads(raw)
