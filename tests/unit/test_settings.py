"""trueup.settings: environment over TOML, errors that name the variable or the file and field."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from trueup.settings import PROJECT_ROOT, REFERENCE_SOURCES, SettingsError, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    """Nothing inherited from the caller's (or the session's) TRUEUP_* leaks into these tests."""
    for key in [k for k in os.environ if k.upper().startswith("TRUEUP_")]:
        monkeypatch.delenv(key)


def _toml(tmp_path: Path, text: str, name: str = "trueup.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ---- defaults and accessors ---------------------------------------------------------------


def test_defaults_without_env_or_file():
    s = load_settings()
    assert s.kafka.partitions == 4
    assert s.kafka.bootstrap is None
    assert list(s.sources) == list(REFERENCE_SOURCES)
    assert s.enabled_sources == ["crm", "billing", "erp"]
    assert s.topics.alerts == "trueup.alerts"
    assert s.topics.dlq == "trueup.dlq"
    assert s.mapping == PROJECT_ROOT / "config" / "mapping.yaml"


@pytest.mark.parametrize("source", REFERENCE_SOURCES)
def test_database_and_connector_config_default_to_source_name(source):
    s = load_settings()
    assert s.database(source) == source
    path = s.connector_config(source)
    assert path == PROJECT_ROOT / "debezium" / f"{source}.json"
    assert path.is_file()


def test_database_and_connector_overrides(tmp_path, monkeypatch):
    cfg = _toml(tmp_path, '[sources.billing]\nconnector = "/etc/billing-connector.json"\n')
    monkeypatch.setenv("TRUEUP_SOURCES__CRM__DATABASE", "crm_prod")
    s = load_settings(cfg)
    assert s.database("crm") == "crm_prod"
    assert s.database("erp") == "erp"
    assert s.connector_config("billing") == Path("/etc/billing-connector.json")
    assert s.connector_config("crm") == PROJECT_ROOT / "debezium" / "crm.json"


# ---- precedence and merging -----------------------------------------------------------------


def test_file_values_are_read(tmp_path):
    cfg = _toml(tmp_path, '[kafka]\npartitions = 2\nbootstrap = "broker:9092"\n[worker]\ncount = 3\n')
    s = load_settings(cfg)
    assert s.kafka.partitions == 2
    assert s.kafka.bootstrap == "broker:9092"
    assert s.worker.count == 3


def test_environment_overrides_file(tmp_path, monkeypatch):
    cfg = _toml(tmp_path, "[kafka]\npartitions = 2\n")
    monkeypatch.setenv("TRUEUP_KAFKA__PARTITIONS", "8")
    assert load_settings(cfg).kafka.partitions == 8


def test_environment_and_file_merge_within_a_section(tmp_path, monkeypatch):
    cfg = _toml(tmp_path, '[kafka]\nbootstrap = "h:1"\npartitions = 2\n')
    monkeypatch.setenv("TRUEUP_KAFKA__PRODUCER_LINGER_MS", "7")
    s = load_settings(cfg)
    assert s.kafka.bootstrap == "h:1"
    assert s.kafka.partitions == 2
    assert s.kafka.producer_linger_ms == 7


def test_config_file_from_trueup_config_env(tmp_path, monkeypatch):
    cfg = _toml(tmp_path, "[worker]\ncount = 5\n")
    monkeypatch.setenv("TRUEUP_CONFIG", str(cfg))
    assert load_settings().worker.count == 5


def test_top_level_env_var(tmp_path, monkeypatch):
    monkeypatch.setenv("TRUEUP_DATA_DIR", str(tmp_path / "data"))
    assert load_settings().data_dir == tmp_path / "data"


def test_one_source_dsn_from_env_keeps_the_other_sources(monkeypatch):
    monkeypatch.setenv("TRUEUP_SOURCES__CRM__DSN", "postgresql://u:pw@db:5432/crm")
    s = load_settings()
    assert set(s.sources) == {"crm", "billing", "erp"}
    assert s.enabled_sources == ["crm", "billing", "erp"]
    assert s.sources["crm"].dsn.get_secret_value() == "postgresql://u:pw@db:5432/crm"
    assert s.sources["billing"].dsn is None
    assert s.sources["erp"].dsn is None


def test_one_source_in_file_keeps_the_other_sources(tmp_path):
    cfg = _toml(tmp_path, '[sources.erp]\ndatabase = "netsuite"\n')
    s = load_settings(cfg)
    assert set(s.sources) == {"crm", "billing", "erp"}
    assert s.database("erp") == "netsuite"


def test_disabled_source_leaves_enabled_sources(monkeypatch):
    monkeypatch.setenv("TRUEUP_SOURCES__BILLING__ENABLED", "false")
    s = load_settings()
    assert s.enabled_sources == ["crm", "erp"]
    assert "billing" in s.sources


def test_extra_source_is_added_after_reference_sources(tmp_path):
    cfg = _toml(tmp_path, '[sources.hubspot]\ndsn = "postgresql://h/hub"\n')
    s = load_settings(cfg)
    assert s.enabled_sources == ["crm", "billing", "erp", "hubspot"]


def test_dsn_secret_not_shown_in_repr(monkeypatch):
    monkeypatch.setenv("TRUEUP_SOURCES__CRM__DSN", "postgresql://u:hunter2secret@db/crm")
    s = load_settings()
    assert "hunter2secret" not in repr(s)
    assert "hunter2secret" not in str(s)
    assert "hunter2secret" not in repr(s.sources["crm"])
    assert "hunter2secret" not in s.model_dump_json()
    assert s.sources["crm"].dsn.get_secret_value().endswith("hunter2secret@db/crm")


# ---- bootstrap ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["localhost:9092", "a:1,b:2", "10.0.0.1:9092, 10.0.0.2:9093", "[::1]:9092"])
def test_bootstrap_accepts_host_port_lists(monkeypatch, value):
    monkeypatch.setenv("TRUEUP_KAFKA__BOOTSTRAP", value)
    assert load_settings().kafka.bootstrap == value


@pytest.mark.parametrize("value", ["localhost", ":9092", "host:", "host:port", "a:1,", "a:1,,b:2"])
def test_bootstrap_rejects_malformed_values(monkeypatch, value):
    monkeypatch.setenv("TRUEUP_KAFKA__BOOTSTRAP", value)
    with pytest.raises(SettingsError) as exc:
        load_settings()
    assert "TRUEUP_KAFKA__BOOTSTRAP" in str(exc.value)
    assert "host:port" in str(exc.value)


def test_bootstrap_rejected_in_file_names_file_and_field(tmp_path):
    cfg = _toml(tmp_path, '[kafka]\nbootstrap = "just-a-host"\n')
    with pytest.raises(SettingsError) as exc:
        load_settings(cfg)
    assert str(cfg) in str(exc.value)
    assert "kafka.bootstrap" in str(exc.value)


# ---- errors naming where the bad value came from --------------------------------------------


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("TRUEUP_KAFKA__PARTITIONS", "zero"),
        ("TRUEUP_KAFKA__PARTITIONS", "0"),
        ("TRUEUP_API__PORT", "70000"),
        ("TRUEUP_WORKER__COUNT", "0"),
        ("TRUEUP_WORKER__APP_ID", "has space"),
        ("TRUEUP_CONNECT__HEARTBEAT_INTERVAL_MS", "5"),
        ("TRUEUP_SOURCES__CRM__ENABLED", "maybe"),
    ],
)
def test_bad_env_value_names_the_variable(monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError) as exc:
        load_settings()
    assert var in str(exc.value)


def test_bad_env_value_over_good_file_names_the_variable_not_the_file(tmp_path, monkeypatch):
    cfg = _toml(tmp_path, "[kafka]\npartitions = 2\n")
    monkeypatch.setenv("TRUEUP_KAFKA__PARTITIONS", "zero")
    with pytest.raises(SettingsError) as exc:
        load_settings(cfg)
    message = str(exc.value)
    assert "environment variable TRUEUP_KAFKA__PARTITIONS" in message
    assert str(cfg) not in message


def test_bad_file_value_names_file_and_dotted_field(tmp_path):
    cfg = _toml(tmp_path, "[kafka]\npartitions = 0\n")
    with pytest.raises(SettingsError) as exc:
        load_settings(cfg)
    message = str(exc.value)
    assert str(cfg) in message
    assert "kafka.partitions" in message
    assert "environment variable" not in message


def test_bad_file_value_named_even_when_env_sets_a_sibling(tmp_path, monkeypatch):
    cfg = _toml(tmp_path, "[kafka]\npartitions = 0\n")
    monkeypatch.setenv("TRUEUP_KAFKA__BOOTSTRAP", "h:1")
    with pytest.raises(SettingsError) as exc:
        load_settings(cfg)
    assert str(cfg) in str(exc.value)
    assert "kafka.partitions" in str(exc.value)


def test_bad_nested_source_value_in_file(tmp_path):
    cfg = _toml(tmp_path, '[sources.crm]\nenabled = "perhaps"\n')
    with pytest.raises(SettingsError) as exc:
        load_settings(cfg)
    assert str(cfg) in str(exc.value)
    assert "sources.crm.enabled" in str(exc.value)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("[kafka]\nfoo = 1\n", "kafka.foo"),
        ("bogus = 1\n", "bogus"),
        ("[sources.crm]\nport = 5432\n", "sources.crm.port"),
        ("[nonsense]\nx = 1\n", "nonsense"),
    ],
)
def test_unknown_field_in_file_is_rejected_naming_it(tmp_path, text, field):
    cfg = _toml(tmp_path, text)
    with pytest.raises(SettingsError) as exc:
        load_settings(cfg)
    assert str(cfg) in str(exc.value)
    assert field in str(exc.value)
    assert "Extra inputs are not permitted" in str(exc.value)


@pytest.mark.parametrize("var", ["TRUEUP_KAFKA__PARTITON", "TRUEUP_SOURCES__CRM__PORT"])
def test_unknown_nested_env_field_is_rejected_naming_the_variable(monkeypatch, var):
    monkeypatch.setenv(var, "1")
    with pytest.raises(SettingsError) as exc:
        load_settings()
    assert var in str(exc.value)


def test_missing_config_file_names_it(tmp_path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(SettingsError) as exc:
        load_settings(missing)
    assert str(missing) in str(exc.value)
    assert "not found" in str(exc.value)


def test_missing_config_file_from_env_names_it(tmp_path, monkeypatch):
    missing = tmp_path / "gone.toml"
    monkeypatch.setenv("TRUEUP_CONFIG", str(missing))
    with pytest.raises(SettingsError) as exc:
        load_settings()
    assert str(missing) in str(exc.value)


def test_invalid_toml_names_the_file(tmp_path):
    cfg = _toml(tmp_path, "[kafka\npartitions = = 3\n")
    with pytest.raises(SettingsError) as exc:
        load_settings(cfg)
    assert str(cfg) in str(exc.value)
    assert "TOML" in str(exc.value)


def test_settings_error_is_a_value_error():
    assert issubclass(SettingsError, ValueError)
