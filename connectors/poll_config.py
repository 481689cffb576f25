"""Poller configuration files (YAML), validated at start: a bad file fails naming the file and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class PollConfigError(ValueError):
    """The poller's configuration file cannot be used; the message names the file and field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SqlTable(_Model):
    updated_column: str = Field(..., min_length=1, description="when the row last changed (timestamptz)")
    soft_delete_column: str | None = Field(None, description="a non-null value here means the row is deleted")


class SqlPollConfig(_Model):
    kind: Literal["poll-sql"] = "poll-sql"
    source: str = Field(..., min_length=1, description="the mapping source: its topic prefix, schema and tables")
    interval_s: float = Field(1.0, gt=0)
    page_size: int = Field(500, ge=1, le=100_000)
    max_rows_per_s: float = Field(10_000, gt=0)
    lookback_s: float = Field(10.0, ge=0, description="re-read rows changed this long before the cursor")
    keyset_every_s: float = Field(10.0, gt=0, description="how often vanished keys are looked for (deletes)")
    tables: dict[str, SqlTable] = Field(..., min_length=1)


class ApiPollConfig(_Model):
    kind: Literal["poll-api"] = "poll-api"
    source: str = Field(..., min_length=1)
    base_url: str = Field(..., pattern=r"^https?://")
    events_path: str = "/v1/events"
    interval_s: float = Field(1.0, gt=0)
    page_size: int = Field(100, ge=1, le=1000, description="limit per request")
    max_requests_per_s: float = Field(20.0, gt=0)
    timeout_s: float = Field(10.0, gt=0)
    max_backoff_s: float = Field(30.0, gt=0)
    objects: dict[str, str] = Field(..., min_length=1, description="API object type -> mapping table")


def load_poll_config(path: Path | str) -> SqlPollConfig | ApiPollConfig:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise PollConfigError(f"{path}: cannot read: {exc}") from None
    if not isinstance(raw, dict):
        raise PollConfigError(f"{path}: expected a mapping at the top level")
    model = {"poll-sql": SqlPollConfig, "poll-api": ApiPollConfig}.get(raw.get("kind"))
    if model is None:
        raise PollConfigError(f"{path}: field kind: must be poll-sql or poll-api")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise PollConfigError(f"{path}: field {where}: {first['msg']}") from None
