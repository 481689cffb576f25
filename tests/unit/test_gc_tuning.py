"""The worker's garbage-collection tuning: the young threshold set, startup objects frozen, 0 leaves Python's."""

from __future__ import annotations

import gc

from streams import gc_tuning


def test_tune_sets_the_young_threshold_and_freezes_the_startup_heap():
    before = gc.get_threshold()
    try:
        gc_tuning.tune(0)
        assert gc.get_threshold() == before and gc.get_freeze_count() == 0
        gc_tuning.tune(50_000)
        assert gc.get_threshold()[0] == 50_000 and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
