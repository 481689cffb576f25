"""The query client's reading of /health: a source's watermark as epoch milliseconds."""

from __future__ import annotations

from datetime import datetime, timezone

from trueup.query import watermark_ms


def test_watermark_in_epoch_ms_from_the_health_text():
    at = datetime(2026, 11, 28, 6, 30, 1, 250000, tzinfo=timezone.utc)
    assert watermark_ms({"watermark": "2026-11-28T06:30:01.250Z"}) == int(at.timestamp() * 1000)


def test_no_watermark_yet_is_minus_one():
    assert watermark_ms({"watermark": None, "lag_seconds": None}) == -1
    assert watermark_ms({}) == -1
