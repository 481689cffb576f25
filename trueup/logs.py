"""Log lines as JSON objects (or plain text), each carrying the correlation id of the event being handled.

An agent sets `correlation` while it handles one event; every line logged meanwhile, by trueup or by a
library, carries that id, so one grep follows a change from the source through normalizing, joins and
alerts. Outside an event the field is absent.
"""

from __future__ import annotations

import json
import logging
import time
from contextvars import ContextVar

correlation: ContextVar[str | None] = ContextVar("correlation", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# Attributes every LogRecord has; anything else was passed with `extra=` and goes into the JSON object.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "correlation_id"}


class CorrelationFilter(logging.Filter):
    """Stamps each record with the correlation id of the event in hand (None outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "correlation_id", None) is None:
            record.correlation_id = correlation.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, correlation_id when known, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if getattr(record, "correlation_id", None):
            out["correlation_id"] = record.correlation_id
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    """The plain format, with ` cid=<id>` appended when an event is in hand."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        cid = getattr(record, "correlation_id", None)
        return f"{text} cid={cid}" if cid else text


def formatter(fmt: str) -> logging.Formatter:
    if fmt == "json":
        return JsonFormatter()
    if fmt == "text":
        return TextFormatter()
    raise ValueError(f"log format must be json or text, not {fmt!r}")


def apply(fmt: str, level: str) -> None:
    """Every handler of the root logger (adding one if there is none) in this format and level."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    for handler in root.handlers:
        handler.setFormatter(formatter(fmt))
        if not any(isinstance(f, CorrelationFilter) for f in handler.filters):
            handler.addFilter(CorrelationFilter())
    root.setLevel(level.upper())
