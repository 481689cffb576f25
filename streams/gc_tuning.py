"""Garbage collection tuned for a stream worker: young collections far apart, the startup heap frozen.

Each change allocates thousands of short-lived objects (decoded records, state loaded back from its pickle),
and with Python's default threshold of 700 allocations a young collection runs every few changes, walking
objects that are about to be freed anyway. Reference counting frees almost all of them; the collector is
only for cycles, which a threshold in the tens of thousands still finds within a batch or two.
"""

from __future__ import annotations

import gc


def tune(young_threshold: int) -> None:
    """Collect once, freeze what startup built (modules, the app), and set the young threshold; 0 leaves it."""
    if young_threshold <= 0:
        return
    gc.collect()
    gc.freeze()
    gc.set_threshold(young_threshold, 20, 100)
