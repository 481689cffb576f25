"""Declarative mapping of source tables to canonical entities, validated at load time against the Avro contract."""

from __future__ import annotations

import json
import re
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

HEARTBEAT_TABLE = "trueup_heartbeat"
SIGNAL_TABLE = "debezium_signal"
AVRO_DIR = Path(__file__).resolve().parent.parent / "avro"


def heartbeat_topic_of(topic_prefix: str) -> str:
    """Debezium's heartbeat topic for a topic prefix (topic.heartbeat.prefix left at its default)."""
    return f"__debezium-heartbeat.{topic_prefix}"

# Canonical entity type -> its Avro record (the one source of truth for canonical fields).
ENTITY_RECORDS = {
    "account": "Account",
    "opportunity": "Opportunity",
    "billing_customer": "BillingCustomer",
    "subscription": "Subscription",
    "invoice": "Invoice",
    "payment": "Payment",
    "erp_customer": "ErpCustomer",
    "sales_order": "SalesOrder",
    "ar_posting": "ArPosting",
}
ENTITY_TYPES = tuple(ENTITY_RECORDS)

COLUMN_TYPES = ("text", "integer", "boolean", "numeric", "date", "timestamp", "timestamptz")
# Which canonical (Avro) field kind each source column type may fill.
_COMPATIBLE = {
    "text": {"string"},
    "integer": {"long", "int"},
    "boolean": {"boolean"},
    "date": {"date"},
    "timestamp": {"timestamp-micros"},
    "timestamptz": {"timestamp-micros"},
    "numeric": set(),  # only through `money`
}


class MappingError(ValueError):
    """The mapping file is invalid; the message names the file, table and field."""


def _field_kind(avro_type: Any) -> str:
    """A canonical field's kind: primitive name, logical type, or the named record (e.g. trueup.Money)."""
    if isinstance(avro_type, list):
        kinds = [_field_kind(t) for t in avro_type if t != "null"]
        return kinds[0] if kinds else "null"
    if isinstance(avro_type, dict):
        return avro_type.get("logicalType") or _field_kind(avro_type["type"])
    return str(avro_type)


@lru_cache(maxsize=None)
def entity_fields(entity: str) -> dict[str, str]:
    """Canonical field name -> kind, read from the entity's Avro record."""
    path = AVRO_DIR / f"trueup.entities.{ENTITY_RECORDS[entity]}.avsc"
    schema = json.loads(path.read_text())
    return {f["name"]: _field_kind(f["type"]) for f in schema["fields"]}


class TableMapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entity: str
    owner: str | None = None
    key: list[str] = Field(..., min_length=1)
    columns: dict[str, str] = Field(..., min_length=1)
    rename: dict[str, str] = Field(default_factory=dict)
    money: dict[str, tuple[str, str]] = Field(default_factory=dict)
    references: dict[str, str] = Field(default_factory=dict)
    correlation: str | None = None
    scales: dict[str, int] = Field(default_factory=dict, description="decimal scale of numeric columns (default 2)")

    @model_validator(mode="after")
    def _consistent(self) -> TableMapping:
        if self.entity not in ENTITY_RECORDS:
            raise ValueError(f"entity: unknown entity type {self.entity!r}; known: {', '.join(ENTITY_TYPES)}")
        for column, kind in self.columns.items():
            if kind not in COLUMN_TYPES:
                raise ValueError(f"columns.{column}: bad type {kind!r}; expected one of {', '.join(COLUMN_TYPES)}")
        declared = set(self.columns)
        for column in self.key:
            if column not in declared:
                raise ValueError(f"key: unknown column {column!r} (not in columns)")
        for column in self.rename:
            if column not in declared:
                raise ValueError(f"rename.{column}: unknown column (not in columns)")
        for column, scale in self.scales.items():
            if self.columns.get(column) != "numeric":
                raise ValueError(f"scales.{column}: not a numeric column in columns")
            if not 0 <= scale <= 18:
                raise ValueError(f"scales.{column}: scale {scale} out of range 0..18")
        if self.correlation is not None and self.correlation not in declared:
            raise ValueError(f"correlation: unknown column {self.correlation!r} (not in columns)")
        fields = entity_fields(self.entity)
        for field, (amount, currency) in self.money.items():
            for column in (amount, currency):
                if column not in declared:
                    raise ValueError(f"money.{field}: unknown column {column!r} (not in columns)")
            if fields.get(field) != "trueup.Money":
                raise ValueError(f"money.{field}: {self.entity} has no money field {field!r}")
            if self.columns[amount] != "numeric":
                raise ValueError(f"money.{field}: amount column {amount!r} must be numeric")
            if self.columns[currency] != "text":
                raise ValueError(f"money.{field}: currency column {currency!r} must be text")
        for column, kind in self.columns.items():
            field = self.rename.get(column, column)
            if column not in self.scalar_columns:
                continue
            if field not in fields:
                raise ValueError(f"columns.{column}: {self.entity} has no field {field!r} (rename it or drop it)")
            if fields[field] == "trueup.Money":
                if column not in self.money_columns:
                    raise ValueError(f"columns.{column}: money field {field!r} needs a `money` entry")
                continue
            if fields[field] not in _COMPATIBLE[kind]:
                raise ValueError(f"columns.{column}: bad type {kind!r} for {self.entity}.{field} ({fields[field]})")
        for field, target in self.references.items():
            if field not in fields:
                raise ValueError(f"references.{field}: {self.entity} has no field {field!r}")
            if target not in ENTITY_RECORDS:
                raise ValueError(f"references.{field}: unknown entity type {target!r}")
        return self

    @cached_property
    def money_columns(self) -> set[str]:
        return {column for pair in self.money.values() for column in pair}

    @cached_property
    def scalar_columns(self) -> dict[str, str]:
        """Columns that fill a field of their own (money columns feed `money` fields only, unless the entity
        also has a field of that name, like a billing customer's currency)."""
        plain = {name for name, kind in entity_fields(self.entity).items() if kind != "trueup.Money"}
        return {column: kind for column, kind in self.columns.items()
                if column not in self.money_columns or self.field_of(column) in plain}

    def field_of(self, column: str) -> str:
        return self.rename.get(column, column)

    def scale_of(self, column: str) -> int:
        return self.scales.get(column, 2)


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
    def heartbeat_topic(self) -> str:
        return heartbeat_topic_of(self.topic_prefix)

    @property
    def transaction_topic(self) -> str:
        return f"{self.topic_prefix}.transaction"

    @property
    def mark_topics(self) -> list[str]:
        """Where the records that move the source's watermark go: heartbeat rows and the runner's marks."""
        return [self.topic(HEARTBEAT_TABLE), self.heartbeat_topic]

    @property
    def control_topics(self) -> list[str]:
        """Topics that carry heartbeats and signals: recognised, never treated as data."""
        return [self.topic(HEARTBEAT_TABLE), self.topic(SIGNAL_TABLE), self.heartbeat_topic]


class Mapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sources: dict[str, SourceMapping] = Field(..., min_length=1)

    @cached_property
    def _by_topic(self) -> dict[str, tuple[str, str]]:
        return {
            source.topic(table): (name, table)
            for name, source in self.sources.items()
            for table in source.tables
        }

    @cached_property
    def control_kinds(self) -> dict[str, tuple[str, str]]:
        """Topic -> (kind, source) of every control topic: heartbeat_topic, heartbeat_table, signal, transaction.

        Read for every raw record; where two sources name one topic, the first source in the file has it.
        """
        kinds: dict[str, tuple[str, str]] = {}
        for name, source in self.sources.items():
            for topic, kind in ((source.heartbeat_topic, "heartbeat_topic"),
                                (source.topic(HEARTBEAT_TABLE), "heartbeat_table"),
                                (source.topic(SIGNAL_TABLE), "signal"),
                                (source.transaction_topic, "transaction")):
                kinds.setdefault(topic, (kind, name))
        return kinds

    def source_of_topic(self, topic: str) -> tuple[str, str] | None:
        """(source name, table) for a raw data topic, or None for anything else."""
        return self._by_topic.get(topic)


def _where(loc: list[str]) -> str:
    if len(loc) >= 4 and loc[0] == "sources" and loc[2] == "tables":
        return f"source {loc[1]}, table {loc[3]}, field {'.'.join(loc[4:]) or '(table)'}"
    if len(loc) >= 2 and loc[0] == "sources":
        return f"source {loc[1]}, field {'.'.join(loc[2:]) or '(source)'}"
    return ".".join(loc) or "(top level)"


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
            msg = err["msg"].removeprefix("Value error, ")
            # Table-level checks name their field first ("columns.amount: ..."): fold it into the location.
            inner = re.match(r"^([a-z_]+(?:\.[\w-]+)?): (.*)$", msg, re.S)
            if inner and len(loc) == 4 and loc[2] == "tables":
                loc, msg = loc + [inner.group(1)], inner.group(2)
            problems.append(f"{_where(loc)}: {msg}")
        raise MappingError(f"{path}: " + "; ".join(problems)) from None


_PG_TYPES = {
    "text": "text", "character varying": "text", "character": "text", "uuid": "text",
    "integer": "integer", "bigint": "integer", "smallint": "integer",
    "boolean": "boolean", "numeric": "numeric", "date": "date",
    "timestamp without time zone": "timestamp", "timestamp with time zone": "timestamptz",
}


def catalog_problems(source: str, spec: SourceMapping, catalog: dict[str, dict[str, str]]) -> list[str]:
    """Differences between a source's mapping and its live catalog ({table: {column: SQL data type}})."""
    problems = []
    for table, tmap in spec.tables.items():
        actual = catalog.get(table)
        if actual is None:
            problems.append(f"source {source}, table {table}: no such table in schema {spec.schema_}")
            continue
        for column, kind in tmap.columns.items():
            if column not in actual:
                problems.append(f"source {source}, table {table}, field columns.{column}: unknown column")
            elif _PG_TYPES.get(actual[column]) != kind:
                problems.append(
                    f"source {source}, table {table}, field columns.{column}: bad type {kind!r}, "
                    f"the database has {actual[column]}"
                )
    return problems
