"""Typed settings for every trueup process: environment (TRUEUP_ prefix) over an optional TOML file."""

from __future__ import annotations

import os
import re
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

ENV_PREFIX = "TRUEUP_"
NESTED = "__"
CONFIG_ENV = "TRUEUP_CONFIG"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """A setting failed validation; the message names the variable or file and field."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KafkaSettings(_Section):
    bootstrap: str | None = Field(None, description="host:port of an existing Kafka; unset starts the bundled broker")
    broker_port: int = Field(0, ge=0, le=65535, description="port for the bundled broker; 0 picks a free one")
    schema_registry_url: str | None = None
    partitions: int = Field(4, ge=1, le=1024)
    replication_factor: int = Field(1, ge=1)
    session_timeout_s: float = Field(10.0, gt=0, le=300)
    heartbeat_interval_s: float = Field(2.0, gt=0, le=60)
    producer_linger_ms: int = Field(20, ge=0, le=5000)
    producer_batch_bytes: int = Field(256 * 1024, ge=16 * 1024, description="workers' producer batch size")
    fetch_max_bytes: int = Field(16 * 1024 * 1024, ge=1024 * 1024, description="workers' fetch size per partition")
    fetch_max_wait_ms: int = Field(
        100, ge=1, le=10_000, description="workers' longest fetch wait when no data is there (Faust's own is 1,500)"
    )

    @field_validator("bootstrap")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is None:
            return value
        for part in value.split(","):
            host, sep, port = part.strip().rpartition(":")
            if not sep or not re.fullmatch(r"[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]", host) or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port], got {value!r}")
        return value


class PostgresSettings(_Section):
    """The private PostgreSQL cluster the stack starts when sources give no DSN."""

    port: int = Field(0, ge=0, le=65535, description="0 picks a free port")
    user: str = Field("trueup", min_length=1)
    bin_dir: Path | None = Field(None, description="folder holding initdb/pg_ctl; default: found on PATH")


class SourceSettings(_Section):
    """One system of record: its database and how to reach it."""

    enabled: bool = True
    kind: Literal["debezium", "poll-sql", "poll-api"] = Field(
        "debezium", description="how changes are captured: the WAL through Debezium, or polling (SQL or an API)"
    )
    database: str | None = Field(None, min_length=1, description="default: the source's name")
    dsn: SecretStr | None = Field(None, description="postgresql:// URL of an existing server; unset uses the private cluster")
    password_file: Path | None = Field(None, description="file holding the password when the DSN carries none")
    connector: Path | None = Field(
        None, description="Debezium config map (default debezium/<name>.json) or poller file (config/pollers/<name>.yaml)"
    )
    api_token: SecretStr | None = Field(None, description="bearer token of a poll-api source's API")


REFERENCE_SOURCES = ("crm", "billing", "erp")


def _default_sources() -> dict[str, SourceSettings]:
    return {name: SourceSettings() for name in REFERENCE_SOURCES}


class ApiSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(6066, ge=0, le=65535, description="worker i serves on port + i; 0 picks free ports")
    token: SecretStr | None = Field(None, description="when set, every route needs Authorization: Bearer <token>")
    advertised_host: str | None = Field(
        None, description="how the other workers reach this one; default: host, or the machine's name when 0.0.0.0"
    )


class WorkerSettings(_Section):
    count: int = Field(1, ge=1, le=16)
    app_id: str = Field("trueup", pattern=r"^[A-Za-z0-9._-]+$")
    standby_replicas: int = Field(0, ge=0, le=4)
    report_interval_s: float = Field(5.0, gt=0)
    watermark_interval_s: float = Field(
        0.1, gt=0, description="the longest between ticks that advance source watermarks and deadlines; a tick also "
        "follows each offset commit attempt of the worker, every commit_interval_s (a stage passes once its "
        "commits land and a tick reads them)"
    )
    commit_interval_s: float = Field(
        0.1, gt=0, description="Faust's broker_commit_interval; a busy watermark stage passes only once its commits land"
    )
    mark_skew_ms: int = Field(
        10, ge=1, le=60_000, description="a source mark at time T covers changes committed before T less this: "
        "PostgreSQL takes a commit's time just before it writes the commit record, so commits made at once can "
        "reach the stream slightly out of time order"
    )
    batch_max: int = Field(
        1000, ge=1, le=100_000, description="records an agent takes at once (a links record is a bundle of up to "
        "link_bundle_max messages); the normalizer writes its state once per key per take"
    )
    join_batch_messages: int = Field(
        5000, ge=1, le=100_000, description="the most messages (bundled entity writes and links) the join handles "
        "per batch; each bucket is written once per batch, so larger batches write less (README, Benchmark) but "
        "hold the event loop longer"
    )
    batch_within_s: float = Field(
        0.1, gt=0, le=5, description="how long an agent waits to fill a batch; 0.05 shortens projections and "
        "alerts at moderate rates for about 7% less throughput (README, Benchmark)"
    )
    link_bundle_max: int = Field(
        500, ge=1, le=100_000, description="link messages one links-topic record carries to a partition at most"
    )
    link_bundle_bytes: int = Field(
        262_144, ge=1024, le=900_000, description="a links-topic record's pickled size at most (unless one link is larger)"
    )
    gc_young_threshold: int = Field(
        50_000, ge=0, description="allocations between young garbage collections (Python's default is 700); 0 keeps "
        "Python's settings"
    )
    stalled_partition_s: float = Field(
        20.0, gt=0, description="a partition whose commit is stuck this long with nothing in flight is read again"
    )
    join_reads_events: bool = Field(
        False, description="the join also reads the canonical events topics: set it while upgrading from a version "
        "whose join read them, until the group's lag on them is 0 (the normalizer now sends entity writes as links); "
        "change it for the whole group at once, never in a rolling restart"
    )
    direct_send: bool = Field(
        True, description="append records straight to aiokafka's open batches; false sends all through Faust's queue"
    )
    send_backlog_batches: int = Field(
        8, ge=0, le=1000, description="unsent producer batches a partition may hold before an agent waits between "
        "its batches for the sender to catch up; 0 never waits"
    )


class ConnectSettings(_Section):
    secrets_dir: Path | None = Field(
        None, description="where ${file:...} placeholders are looked up when their literal path does not exist"
    )
    heartbeat_interval_ms: int | None = Field(None, ge=100, description="overrides heartbeat.interval.ms")
    offset_flush_interval_ms: int = Field(1000, ge=100)
    jvm_max_heap_mb: int = Field(512, ge=128)
    metrics_host: str = Field("127.0.0.1", description="where connectors and pollers serve /metrics")
    metrics_port: int = Field(0, ge=0, le=65535, description="their /metrics port; 0 picks a free one per process")


class RuleSettings(_Section):
    """SLA durations and money tolerance of the consistency rules."""

    subscription_sla_s: float = Field(3600.0, gt=0, description="closed-won opportunity -> billing subscription")
    sales_order_sla_s: float = Field(3600.0, gt=0, description="closed-won opportunity -> ERP sales order")
    posting_sla_s: float = Field(3600.0, gt=0, description="billing invoice -> ERP AR posting")
    orphan_payment_sla_s: float = Field(900.0, gt=0, description="payment -> its invoice appears")
    dangling_reference_sla_s: float = Field(3600.0, gt=0, description="a cross-system link -> its target appears")
    sync_sla_s: float = Field(
        600.0, ge=0, description="an amendment in one system -> the others follow (order totals, subscription value)"
    )
    money_tolerance: Decimal = Field(Decimal("0.00"), ge=0, description="differences up to this are equal")


class VerifySettings(_Section):
    """Scheduled verification inside the workers (the leader runs it), and its bucket count."""

    interval_s: float = Field(0.0, ge=0, description="seconds between scheduled runs; 0 turns the schedule off")
    auto_repair: bool = Field(False, description="repair drift found by scheduled runs")
    buckets: int = Field(256, ge=1, le=65536, description="top-level key buckets; a power of two, for bisection")

    @field_validator("buckets")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value & (value - 1):
            raise ValueError(f"must be a power of two (a differing bucket is bisected), not {value}")
        return value


class LogSettings(_Section):
    """How every trueup process logs: JSON lines (with the correlation id of the event in hand) or text."""

    format: Literal["json", "text"] = "json"
    level: Literal["debug", "info", "warning", "error"] = "info"


class TopicSettings(_Section):
    events_prefix: str = "trueup.events"
    projections_prefix: str = "trueup.projections"
    alerts: str = "trueup.alerts"
    dlq: str = "trueup.dlq"
    dlq_replay: str = "trueup.dlq.replay"
    poll_cursors: str = "trueup.poll.cursors"


class Settings(BaseSettings):
    """Every setting trueup reads; nested sections map to TRUEUP_<SECTION>__<FIELD>."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter=NESTED, extra="forbid")

    data_dir: Path = Field(Path(".trueup"), description="stack state, logs, connector offsets, worker tables")
    mapping: Path = Field(PROJECT_ROOT / "config" / "mapping.yaml", description="declarative source mapping")
    kafka: KafkaSettings = KafkaSettings()
    postgres: PostgresSettings = PostgresSettings()
    sources: dict[str, SourceSettings] = Field(default_factory=_default_sources)
    api: ApiSettings = ApiSettings()
    worker: WorkerSettings = WorkerSettings()
    connect: ConnectSettings = ConnectSettings()
    topics: TopicSettings = TopicSettings()
    verify: VerifySettings = VerifySettings()
    rules: RuleSettings = RuleSettings()
    log: LogSettings = LogSettings()

    @field_validator("sources", mode="before")
    @classmethod
    def _merge_reference_sources(cls, value: Any) -> Any:
        # TRUEUP_SOURCES__CRM__DSN alone must not drop billing and erp.
        if not isinstance(value, dict):
            return value
        merged: dict[str, Any] = {name: {} for name in REFERENCE_SOURCES}
        merged.update(value)
        return merged

    @property
    def enabled_sources(self) -> list[str]:
        return [name for name, src in self.sources.items() if src.enabled]

    def database(self, source: str) -> str:
        return self.sources[source].database or source

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment wins over the file, which arrives as init kwargs.
        return env_settings, init_settings

    def connector_config(self, source: str) -> Path:
        configured = self.sources[source].connector
        if configured is not None:
            return configured
        if self.sources[source].kind == "debezium":
            return PROJECT_ROOT / "debezium" / f"{source}.json"
        return PROJECT_ROOT / "config" / "pollers" / f"{source}.yaml"

    def has_database(self, source: str) -> bool:
        """Sources read from PostgreSQL (by WAL or by SQL polling); an API source has none."""
        return self.sources[source].kind != "poll-api"


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise SettingsError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML: {exc}") from None


def _env_name(loc: tuple[Any, ...]) -> str:
    return ENV_PREFIX + NESTED.join(str(part).upper() for part in loc)


def _in_file(data: dict[str, Any], loc: tuple[Any, ...]) -> bool:
    node: Any = data
    for part in loc:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _describe(exc: ValidationError, file_data: dict[str, Any], file_path: Path | None) -> str:
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        field = ".".join(str(part) for part in loc)
        env = _env_name(loc)
        env_hits = [_env_name(loc[:n]) for n in range(len(loc), 0, -1) if _env_name(loc[:n]) in os.environ]
        if env_hits:
            where = f"environment variable {env_hits[0]}"
        elif file_path is not None and (_in_file(file_data, loc) or _in_file(file_data, loc[:1])):
            where = f"{file_path}: field {field}"
        else:
            where = f"setting {field} (environment variable {env})"
        lines.append(f"invalid {where}: {err['msg']}")
    return "; ".join(lines)


def load_settings(config_file: Path | str | None = None) -> Settings:
    """Build settings from the environment and an optional TOML file, failing with the field named."""
    path = config_file or os.environ.get(CONFIG_ENV)
    file_path = Path(path) if path else None
    file_data = _read_file(file_path) if file_path else {}
    try:
        return Settings(**file_data)
    except ValidationError as exc:
        raise SettingsError(_describe(exc, file_data, file_path)) from None
