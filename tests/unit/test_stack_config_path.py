"""The stack hands its children the config file by absolute path, however the user named it."""

from __future__ import annotations

from pathlib import Path

from trueup.settings import Settings
from trueup.stack.orchestrator import Stack
from trueup.stack.state import StackState


def _state(tmp_path) -> StackState:
    return StackState(data_dir=str(tmp_path), bootstrap="127.0.0.1:39092", postgres_home=str(tmp_path / "pg"),
                      postgres_port=55432)


def test_a_relative_trueup_config_reaches_children_absolute(tmp_path, monkeypatch):
    monkeypatch.setenv("TRUEUP_CONFIG", "config/test-profile.toml")
    stack = Stack(Settings(data_dir=tmp_path), echo=lambda *a: None)
    assert stack.child_env(_state(tmp_path))["TRUEUP_CONFIG"] == str(Path.cwd() / "config" / "test-profile.toml")


def test_an_explicit_config_file_wins_over_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TRUEUP_CONFIG", "config/test-profile.toml")
    stack = Stack(Settings(data_dir=tmp_path), Path("other.toml"), echo=lambda *a: None)
    assert stack.child_env(_state(tmp_path))["TRUEUP_CONFIG"] == str(Path.cwd() / "other.toml")


def test_no_config_file_sets_none(tmp_path, monkeypatch):
    monkeypatch.delenv("TRUEUP_CONFIG", raising=False)
    stack = Stack(Settings(data_dir=tmp_path), echo=lambda *a: None)
    assert "TRUEUP_CONFIG" not in stack.child_env(_state(tmp_path))
