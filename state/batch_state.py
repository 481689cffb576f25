"""Table state for one batch of events: reads through to the table, one write per key when the batch ends.

Faust writes a table entry to the partition of the event being processed (its RocksDB and its changelog).
In a batch there is no single such event, so each read and write here is made with the event that carries
the key as the current one. Writing once per key per batch also sends one changelog record per key instead
of one per event.
"""

from __future__ import annotations

import weakref
from typing import Any

from faust.streams import _current_event  # Faust's own context variable for the event in process


def make_current(event) -> None:
    """Make `event` the one Faust's tables route reads and writes by (its partition)."""
    _current_event.set(weakref.ref(event))


class BatchState:
    """Read-through cache with write-behind over a PickledTable, for the length of one batch."""

    def __init__(self, table) -> None:
        self.table = table
        self.values: dict[bytes, Any] = {}
        self.dirty: dict[bytes, Any] = {}

    def get(self, key: bytes, event) -> Any:
        if key not in self.values:
            make_current(event)
            self.values[key] = self.table.get(key)
        return self.values[key]

    def set(self, key: bytes, value: Any, event) -> None:
        self.values[key] = value
        self.dirty[key] = event

    def flush(self) -> int:
        """Write every key set during the batch, each under its own event; returns how many."""
        for key, event in self.dirty.items():
            make_current(event)
            self.table.set(key, self.values[key])
        written = len(self.dirty)
        self.values.clear()
        self.dirty.clear()
        return written
