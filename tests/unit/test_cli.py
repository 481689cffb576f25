"""trueup.cli: --help everywhere (walked from the click tree) and settings errors reported cleanly."""

from __future__ import annotations

import os

import click
import pytest
from click.testing import CliRunner

from trueup.cli import cli


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    """No TRUEUP_* from the caller or the session; a private data dir."""
    for key in [k for k in os.environ if k.upper().startswith("TRUEUP_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("TRUEUP_DATA_DIR", str(tmp_path / "data"))


def _command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = []
    for name, command in sorted(group.commands.items()):
        path = prefix + (name,)
        paths.append(path)
        if isinstance(command, click.Group):
            paths.extend(_command_paths(command, path))
    return paths


ALL_COMMANDS = _command_paths(cli)


def test_the_tree_has_the_documented_commands():
    # guards the walker itself: an empty or flat walk would make the parametrized test vacuous
    assert ("stack",) in ALL_COMMANDS
    for sub in ("up", "down", "status", "pause", "resume"):
        assert ("stack", sub) in ALL_COMMANDS
    assert ("connect", "debezium") in ALL_COMMANDS
    assert ("worker",) in ALL_COMMANDS
    assert ("demo",) in ALL_COMMANDS


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_top_level_help(flag):
    result = CliRunner().invoke(cli, [flag], prog_name="trueup")
    assert result.exit_code == 0, result.output
    assert "Usage: trueup" in result.output
    for name in cli.commands:
        assert name in result.output


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=[" ".join(p) for p in ALL_COMMANDS])
def test_help_on_every_command(path):
    result = CliRunner().invoke(cli, [*path, "--help"], prog_name="trueup")
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
    assert f"trueup {' '.join(path)}" in result.output
    assert result.exception is None


def test_bad_env_setting_fails_naming_the_variable(monkeypatch):
    monkeypatch.setenv("TRUEUP_KAFKA__PARTITIONS", "zero")
    result = CliRunner().invoke(cli, ["stack", "status"], prog_name="trueup")
    assert result.exit_code != 0
    assert "TRUEUP_KAFKA__PARTITIONS" in result.output
    assert "Traceback" not in result.output
    # a clean ClickException, not an unhandled error
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)


def test_bad_env_setting_fails_for_json_status_too(monkeypatch):
    monkeypatch.setenv("TRUEUP_KAFKA__BOOTSTRAP", "no-port")
    result = CliRunner().invoke(cli, ["stack", "status", "--json"], prog_name="trueup")
    assert result.exit_code == 1
    assert "TRUEUP_KAFKA__BOOTSTRAP" in result.output


def test_missing_config_file_is_reported(tmp_path):
    missing = tmp_path / "missing.toml"
    result = CliRunner().invoke(cli, ["--config", str(missing), "stack", "status"], prog_name="trueup")
    assert result.exit_code == 1
    assert str(missing) in result.output
