"""Load a Debezium connector config map (Kafka Connect REST form) and turn it into embedded-engine properties."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from connectors.config_providers import resolve

REQUIRED = ("connector.class", "database.dbname", "topic.prefix", "slot.name", "publication.name", "plugin.name")


class ConnectorConfigError(ValueError):
    """The connector config file is unusable; the message names the file and field."""


@dataclass(frozen=True)
class ConnectorConfig:
    """A connector's config map as registered with Kafka Connect, named after its file."""

    name: str
    path: Path
    values: dict[str, str]

    @property
    def topic_prefix(self) -> str:
        return self.values["topic.prefix"]

    @property
    def slot(self) -> str:
        return self.values["slot.name"]

    @property
    def publication(self) -> str:
        return self.values["publication.name"]

    @property
    def database(self) -> str:
        return self.values["database.dbname"]


def load_connector_config(path: Path | str) -> ConnectorConfig:
    path = Path(path)
    try:
        values = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConnectorConfigError(f"{path}: connector config not found") from None
    except json.JSONDecodeError as exc:
        raise ConnectorConfigError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(values, dict):
        raise ConnectorConfigError(f"{path}: expected a JSON object of config keys")
    for field, value in values.items():
        if not isinstance(value, str):
            raise ConnectorConfigError(f"{path}: field {field}: Kafka Connect takes string values, got {value!r}")
    for field in REQUIRED:
        if not values.get(field):
            raise ConnectorConfigError(f"{path}: field {field} is required")
    if values["plugin.name"] != "pgoutput":
        raise ConnectorConfigError(f"{path}: field plugin.name must be pgoutput")
    if values.get("topic.heartbeat.prefix", "__debezium-heartbeat") != "__debezium-heartbeat":
        # The workers read heartbeats and the runner's marks from __debezium-heartbeat.<topic.prefix> only.
        raise ConnectorConfigError(f"{path}: field topic.heartbeat.prefix is not supported: trueup reads "
                                   "heartbeats from __debezium-heartbeat.<topic.prefix>")
    return ConnectorConfig(name=path.stem, path=path, values=values)


def engine_properties(
    config: ConnectorConfig,
    offsets_file: Path,
    secrets_dir: Path | None,
    heartbeat_interval_ms: int | None = None,
    offset_flush_interval_ms: int = 1000,
) -> dict[str, str]:
    """The embedded engine's properties: the same map, placeholders resolved, plus local offset storage."""
    props = resolve(config.values, secrets_dir, origin=str(config.path))
    props.update(
        {
            "name": config.name,
            "offset.storage": "org.apache.kafka.connect.storage.FileOffsetBackingStore",
            "offset.storage.file.filename": str(offsets_file),
            "offset.flush.interval.ms": str(offset_flush_interval_ms),
        }
    )
    if heartbeat_interval_ms is not None:
        props["heartbeat.interval.ms"] = str(heartbeat_interval_ms)
    # The embedded engine hands records to us already converted; tasks.max is a Connect-only knob.
    props.pop("tasks.max", None)
    return props
