"""connectors.config_providers: properties files and `${file:PATH:KEY}` placeholders."""

from __future__ import annotations

import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.config_providers import PlaceholderError, read_properties, resolve, write_properties


def test_read_properties_syntax(tmp_path):
    path = tmp_path / "db.properties"
    path.write_text(
        "# a comment\n"
        "! another comment\n"
        "\n"
        "hostname=db.internal\n"
        "  port = 5432  \n"
        "user: trueup\n"
        "password s3cr=t:x\n"
        "url=postgresql://u@h:5432/db?a=b\n"
        "dup=first\n"
        "dup=second\n"
    )
    assert read_properties(path) == {
        "hostname": "db.internal",
        "port": "5432",
        "user": "trueup",
        "password": "s3cr=t:x",
        "url": "postgresql://u@h:5432/db?a=b",
        "dup": "second",
    }


def test_read_properties_key_without_value(tmp_path):
    path = tmp_path / "p.properties"
    path.write_text("empty=\nbare\n")
    assert read_properties(path) == {"empty": "", "bare": ""}


_KEYS = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,20}", fullmatch=True)
_VALUES = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=40
).filter(lambda v: v == v.strip())


@settings(max_examples=100, deadline=None)
@given(values=st.dictionaries(_KEYS, _VALUES, max_size=8))
def test_write_then_read_properties_roundtrips(tmp_path_factory, values):
    path = tmp_path_factory.mktemp("props") / "secret.properties"
    write_properties(path, values)
    assert read_properties(path) == values
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_write_properties_creates_owner_only_file_and_parents(tmp_path):
    path = tmp_path / "a" / "b" / "crm.properties"
    write_properties(path, {"password": "pw"})
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_properties(path) == {"password": "pw"}


def test_write_properties_tightens_an_existing_file(tmp_path):
    path = tmp_path / "crm.properties"
    path.write_text("old=1\n")
    path.chmod(0o644)
    write_properties(path, {"new": "2"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_properties(path) == {"new": "2"}


# ---- resolve ------------------------------------------------------------------------------------


@pytest.fixture()
def secrets(tmp_path):
    d = tmp_path / "secrets"
    write_properties(d / "crm.properties", {"hostname": "db.local", "port": "5433", "password": "pa:ss=word"})
    return d


def test_resolve_literal_path(secrets):
    path = secrets / "crm.properties"
    config = {
        "database.hostname": f"${{file:{path}:hostname}}",
        "database.password": f"${{file:{path}:password}}",
        "database.dbname": "crm",
    }
    assert resolve(config, None, origin="crm.json") == {
        "database.hostname": "db.local",
        "database.password": "pa:ss=word",
        "database.dbname": "crm",
    }


def test_resolve_falls_back_to_file_name_in_secrets_dir(secrets):
    config = {"database.port": "${file:/opt/trueup/secrets/crm.properties:port}"}
    assert resolve(config, secrets, origin="crm.json") == {"database.port": "5433"}


def test_resolve_prefers_literal_path_over_secrets_dir(tmp_path, secrets):
    literal = tmp_path / "elsewhere" / "crm.properties"
    write_properties(literal, {"hostname": "literal.host"})
    config = {"database.hostname": f"${{file:{literal}:hostname}}"}
    assert resolve(config, secrets, origin="crm.json")["database.hostname"] == "literal.host"


def test_resolve_several_placeholders_in_one_value(secrets):
    config = {"url": "jdbc:postgresql://${file:/x/crm.properties:hostname}:${file:/x/crm.properties:port}/crm"}
    assert resolve(config, secrets, origin="o") == {"url": "jdbc:postgresql://db.local:5433/crm"}


def test_resolve_leaves_other_values_alone(secrets):
    config = {"a": "plain", "b": "${env:HOME}", "c": "$file", "d": 3}
    assert resolve(config, secrets, origin="o") == config


def test_resolve_does_not_mutate_input(secrets):
    config = {"database.port": "${file:/x/crm.properties:port}"}
    before = dict(config)
    resolve(config, secrets, origin="o")
    assert config == before


def test_resolve_missing_file_names_origin_field_and_both_paths(tmp_path):
    secrets_dir = tmp_path / "empty"
    secrets_dir.mkdir()
    config = {"database.user": "${file:/nowhere/billing.properties:user}"}
    with pytest.raises(PlaceholderError) as exc:
        resolve(config, secrets_dir, origin="debezium/billing.json")
    message = str(exc.value)
    assert "debezium/billing.json" in message
    assert "database.user" in message
    assert "/nowhere/billing.properties" in message
    assert str(secrets_dir / "billing.properties") in message


def test_resolve_missing_file_without_secrets_dir(tmp_path):
    config = {"database.user": f"${{file:{tmp_path}/none.properties:user}}"}
    with pytest.raises(PlaceholderError) as exc:
        resolve(config, None, origin="erp.json")
    assert "erp.json" in str(exc.value)
    assert "database.user" in str(exc.value)
    assert "none.properties" in str(exc.value)


def test_resolve_missing_key_names_origin_field_and_key(secrets):
    config = {"database.user": "${file:/x/crm.properties:user}"}
    with pytest.raises(PlaceholderError) as exc:
        resolve(config, secrets, origin="crm.json")
    message = str(exc.value)
    assert "crm.json" in message
    assert "database.user" in message
    assert "'user'" in message
    assert str(secrets / "crm.properties") in message
