"""Log lines: JSON objects carrying the correlation id of the event in hand, or text with it appended."""

from __future__ import annotations

import io
import json
import logging

import pytest

from trueup import logs


@pytest.fixture
def captured():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs.CorrelationFilter())
    logger = logging.getLogger("trueup.test.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, handler, stream
    logger.removeHandler(handler)


def test_a_json_line_carries_the_correlation_id_only_while_an_event_is_in_hand(captured):
    logger, handler, stream = captured
    handler.setFormatter(logs.JsonFormatter())
    token = logs.correlation.set("crm-tx-42")
    logger.info("applied %s", "acc_1", extra={"bucket": "ACC|acc_1"})
    logs.correlation.reset(token)
    logger.warning("idle")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "applied acc_1" and first["correlation_id"] == "crm-tx-42"
    assert first["bucket"] == "ACC|acc_1" and first["level"] == "info" and first["ts"].endswith("Z")
    assert "correlation_id" not in second and second["level"] == "warning"


def test_an_exception_is_kept_in_the_json_line(captured):
    logger, handler, stream = captured
    handler.setFormatter(logs.JsonFormatter())
    try:
        raise ValueError("bad money")
    except ValueError:
        logger.exception("dead letter")
    line = json.loads(stream.getvalue())
    assert "ValueError: bad money" in line["exception"]


def test_text_lines_append_the_id(captured):
    logger, handler, stream = captured
    handler.setFormatter(logs.formatter("text"))
    token = logs.correlation.set("erp-7")
    logger.info("hello")
    logs.correlation.reset(token)
    assert stream.getvalue().rstrip().endswith("hello cid=erp-7")
    with pytest.raises(ValueError, match="json or text"):
        logs.formatter("xml")
