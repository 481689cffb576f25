"""connectors.debezium_config: the shipped connector config maps and the embedded engine's properties."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from connectors.config_providers import PlaceholderError, write_properties
from connectors.debezium_config import REQUIRED, ConnectorConfigError, engine_properties, load_connector_config
from streams.mapping import HEARTBEAT_TABLE, SIGNAL_TABLE, load_mapping

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("crm", "billing", "erp")
PLACEHOLDER = re.compile(r"^\$\{file:[^:}]+:[^}]+\}$")
SECRET_FIELDS = ("database.hostname", "database.port", "database.user", "database.password")


def _shipped(source: str) -> Path:
    return ROOT / "debezium" / f"{source}.json"


@pytest.mark.parametrize("source", SOURCES)
def test_shipped_config_loads(source):
    cfg = load_connector_config(_shipped(source))
    assert cfg.name == source
    assert cfg.path == _shipped(source)
    assert cfg.values["connector.class"] == "io.debezium.connector.postgresql.PostgresConnector"
    assert cfg.slot and cfg.publication


@pytest.mark.parametrize("source", SOURCES)
def test_shipped_config_values_are_all_strings(source):
    raw = json.loads(_shipped(source).read_text())
    assert raw
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items())


@pytest.mark.parametrize("source", SOURCES)
def test_shipped_config_contract(source):
    values = load_connector_config(_shipped(source)).values
    assert values["plugin.name"] == "pgoutput"
    assert values["decimal.handling.mode"] == "string"
    assert values["tombstones.on.delete"] == "true"
    assert int(values["heartbeat.interval.ms"]) > 0
    assert HEARTBEAT_TABLE in values["heartbeat.action.query"]
    assert SIGNAL_TABLE in values["signal.data.collection"]


@pytest.mark.parametrize("source", SOURCES)
def test_shipped_topic_prefix_matches_file_database_and_mapping(source):
    cfg = load_connector_config(_shipped(source))
    assert cfg.topic_prefix == source
    assert cfg.database == source
    assert cfg.topic_prefix == _shipped(source).stem
    mapping = load_mapping(ROOT / "config" / "mapping.yaml")
    assert mapping.sources[source].topic_prefix == cfg.topic_prefix


@pytest.mark.parametrize("source", SOURCES)
def test_shipped_connection_fields_are_file_placeholders(source):
    values = load_connector_config(_shipped(source)).values
    for field in SECRET_FIELDS:
        assert PLACEHOLDER.match(values[field]), f"{source}: {field} is not a ${{file:...}} placeholder"
    # nothing else carries a credential
    for field, value in values.items():
        if "password" in field:
            assert PLACEHOLDER.match(value), f"{source}: {field} holds a literal password"


def test_shipped_slots_and_publications_are_distinct_per_source():
    cfgs = {s: load_connector_config(_shipped(s)) for s in SOURCES}
    assert len({c.slot for c in cfgs.values()}) == len(SOURCES)
    assert len({c.publication for c in cfgs.values()}) == len(SOURCES)


# ---- errors -------------------------------------------------------------------------------------


def _variant(tmp_path: Path, **changes) -> Path:
    values = json.loads(_shipped("crm").read_text())
    for field, value in changes.items():
        field = field.replace("__", ".")
        if value is None:
            values.pop(field, None)
        else:
            values[field] = value
    path = tmp_path / "crm.json"
    path.write_text(json.dumps(values))
    return path


@pytest.mark.parametrize("value", [1, True, 3.5, ["a"], {"k": "v"}])
def test_non_string_value_names_file_and_field(tmp_path, value):
    path = _variant(tmp_path, tasks__max=value)
    with pytest.raises(ConnectorConfigError) as exc:
        load_connector_config(path)
    assert str(path) in str(exc.value)
    assert "tasks.max" in str(exc.value)


def test_json_null_value_is_rejected(tmp_path):
    path = tmp_path / "crm.json"
    values = json.loads(_shipped("crm").read_text())
    values["snapshot.mode"] = None
    path.write_text(json.dumps(values))
    with pytest.raises(ConnectorConfigError) as exc:
        load_connector_config(path)
    assert "snapshot.mode" in str(exc.value)


@pytest.mark.parametrize("field", REQUIRED)
def test_missing_required_field_names_file_and_field(tmp_path, field):
    path = _variant(tmp_path, **{field.replace(".", "__"): None})
    with pytest.raises(ConnectorConfigError) as exc:
        load_connector_config(path)
    assert str(path) in str(exc.value)
    assert field in str(exc.value)


def test_empty_required_field_is_rejected(tmp_path):
    path = _variant(tmp_path, slot__name="")
    with pytest.raises(ConnectorConfigError) as exc:
        load_connector_config(path)
    assert "slot.name" in str(exc.value)


def test_wrong_plugin_name(tmp_path):
    path = _variant(tmp_path, plugin__name="decoderbufs")
    with pytest.raises(ConnectorConfigError) as exc:
        load_connector_config(path)
    assert str(path) in str(exc.value)
    assert "plugin.name" in str(exc.value)
    assert "pgoutput" in str(exc.value)


def test_another_heartbeat_topic_prefix_is_rejected(tmp_path):
    path = _variant(tmp_path, topic__heartbeat__prefix="hb")
    with pytest.raises(ConnectorConfigError) as exc:
        load_connector_config(path)
    assert str(path) in str(exc.value) and "topic.heartbeat.prefix" in str(exc.value)
    assert load_connector_config(_variant(tmp_path, topic__heartbeat__prefix="__debezium-heartbeat")).topic_prefix


def test_invalid_json_names_file(tmp_path):
    path = tmp_path / "crm.json"
    path.write_text('{"connector.class": "x",')
    with pytest.raises(ConnectorConfigError) as exc:
        load_connector_config(path)
    assert str(path) in str(exc.value)
    assert "JSON" in str(exc.value)


def test_json_that_is_not_an_object(tmp_path):
    path = tmp_path / "crm.json"
    path.write_text('["connector.class"]')
    with pytest.raises(ConnectorConfigError) as exc:
        load_connector_config(path)
    assert str(path) in str(exc.value)


def test_missing_config_file(tmp_path):
    path = tmp_path / "nope.json"
    with pytest.raises(ConnectorConfigError) as exc:
        load_connector_config(path)
    assert str(path) in str(exc.value)


# ---- engine properties --------------------------------------------------------------------------


@pytest.fixture()
def secrets_dir(tmp_path):
    if Path("/opt/trueup/secrets").exists():
        pytest.skip("/opt/trueup/secrets exists here: literal placeholder paths would win over secrets_dir")
    d = tmp_path / "secrets"
    for source in SOURCES:
        write_properties(d / f"{source}.properties",
                         {"hostname": f"{source}.db", "port": "6543", "user": "dbz", "password": f"pw-{source}"})
    return d


@pytest.mark.parametrize("source", SOURCES)
def test_engine_properties_resolve_placeholders_and_add_offset_store(tmp_path, secrets_dir, source):
    cfg = load_connector_config(_shipped(source))
    offsets = tmp_path / "work" / "offsets.dat"
    props = engine_properties(cfg, offsets, secrets_dir, offset_flush_interval_ms=750)
    assert props["database.hostname"] == f"{source}.db"
    assert props["database.port"] == "6543"
    assert props["database.user"] == "dbz"
    assert props["database.password"] == f"pw-{source}"
    assert not any("${file:" in v for v in props.values())
    assert props["name"] == source
    assert props["offset.storage"] == "org.apache.kafka.connect.storage.FileOffsetBackingStore"
    assert props["offset.storage.file.filename"] == str(offsets)
    assert props["offset.flush.interval.ms"] == "750"
    assert "tasks.max" not in props
    assert props["heartbeat.interval.ms"] == cfg.values["heartbeat.interval.ms"]
    assert props["topic.prefix"] == source
    assert all(isinstance(v, str) for v in props.values())


def test_engine_properties_heartbeat_override(tmp_path, secrets_dir):
    cfg = load_connector_config(_shipped("crm"))
    props = engine_properties(cfg, tmp_path / "o.dat", secrets_dir, heartbeat_interval_ms=1000)
    assert props["heartbeat.interval.ms"] == "1000"
    assert props["heartbeat.action.query"] == cfg.values["heartbeat.action.query"]


def test_engine_properties_leave_the_config_untouched(tmp_path, secrets_dir):
    cfg = load_connector_config(_shipped("erp"))
    before = dict(cfg.values)
    engine_properties(cfg, tmp_path / "o.dat", secrets_dir, heartbeat_interval_ms=500)
    assert cfg.values == before


def test_engine_properties_missing_secret_names_config_and_field(tmp_path):
    if Path("/opt/trueup/secrets").exists():
        pytest.skip("/opt/trueup/secrets exists here")
    empty = tmp_path / "empty"
    empty.mkdir()
    cfg = load_connector_config(_shipped("billing"))
    with pytest.raises(PlaceholderError) as exc:
        engine_properties(cfg, tmp_path / "o.dat", empty)
    assert str(_shipped("billing")) in str(exc.value)
    assert "database." in str(exc.value)
    assert "billing.properties" in str(exc.value)
