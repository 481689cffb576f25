"""Declarative mapping of source tables to canonical entities, validated at load time."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

HEARTBEAT_TABLE = "trueup_heartbeat"
SIGNAL_TABLE = "debezium_signal"
ENTITY_TYPES = (
    "account",
    "opportunity",
    "billing_customer",
    "subscription",
    "invoice",
    "payment",
    "erp_customer",
    "sales_order",
    "ar_posting",
)


class MappingError(ValueError):
    """The mapping file is invalid; the message names the file, table and field."""


class TableMapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entity: str = Field(..., pattern="^(" + "|".join(ENTITY_TYPES) + ")$")
    key: list[str] = Field(..., min_length=1)


class SourceMapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    system: str = Field(..., min_length=1)
    topic_prefix: str = Field(..., pattern=r"^[A-Za-z0-9._-]+$")
    schema_: str = Field("public", alias="schema")
    tables: dict[str, TableMapping] = Field(..., min_length=1)

    def topic(self, table: str) -> str:
        """Debezium's raw topic name for a table: <prefix>.<schema>.<table>."""
        return f"{self.topic_prefix}.{self.schema_}.{table}"

    @property
    def data_topics(self) -> list[str]:
        return [self.topic(table) for table in self.tables]

    @property
    def control_topics(self) -> list[str]:
        """Topics that carry heartbeats and signals: recognised, never treated as data."""
        return [self.topic(HEARTBEAT_TABLE), self.topic(SIGNAL_TABLE), f"__debezium-heartbeat.{self.topic_prefix}"]


class Mapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sources: dict[str, SourceMapping] = Field(..., min_length=1)

    def source_of_topic(self, topic: str) -> tuple[str, str] | None:
        """(source name, table) for a raw data topic, or None for anything else."""
        for name, source in self.sources.items():
            for table in source.tables:
                if source.topic(table) == topic:
                    return name, table
        return None


def load_mapping(path: Path | str) -> Mapping:
    """Read and validate a mapping file, naming file, table and field on error."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise MappingError(f"{path}: mapping file not found") from None
    except yaml.YAMLError as exc:
        raise MappingError(f"{path}: not valid YAML: {exc}") from None
    try:
        return Mapping.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = [str(p) for p in err["loc"]]
            where = ".".join(loc)
            if len(loc) >= 4 and loc[0] == "sources" and loc[2] == "tables":
                where = f"source {loc[1]}, table {loc[3]}, field {'.'.join(loc[4:]) or '(table)'}"
            problems.append(f"{where}: {err['msg']}")
        raise MappingError(f"{path}: " + "; ".join(problems)) from None
