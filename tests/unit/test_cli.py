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


def test_bench_hands_its_config_file_to_every_child_by_absolute_path(monkeypatch, tmp_path):
    """The benchmark's stacks and workers are children: `--config` reaches them as TRUEUP_CONFIG, absolute."""
    import signal

    import trueup.bench.run as bench_run

    monkeypatch.chdir(tmp_path)
    (tmp_path / "profile.toml").write_text("[worker]\nreport_interval_s = 2\n")
    seen = {}

    def fake_run_bench(settings, *args, **kwargs):
        seen["env"] = os.environ.get("TRUEUP_CONFIG")
        seen["report_interval_s"] = settings.worker.report_interval_s
        raise click.ClickException("stopped before any stack")

    monkeypatch.setattr(bench_run, "run_bench", fake_run_bench)
    monkeypatch.setattr(signal, "signal", lambda *args: None)  # keep pytest's own SIGTERM handling
    monkeypatch.setenv("TRUEUP_CONFIG", "unused.toml")  # restored after the test, whatever the command sets
    result = CliRunner().invoke(cli, ["--config", "profile.toml", "bench", "--only", "latency"])
    assert "stopped before any stack" in result.output
    assert seen == {"env": str(tmp_path / "profile.toml"), "report_interval_s": 2}
