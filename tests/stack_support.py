"""Helpers for tests that run a real stack: start one in its own folder, tear it down leaving nothing."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from trueup.settings import load_settings
from trueup.stack.broker import broker_argv, wait_ready
from trueup.stack.orchestrator import Stack
from trueup.stack.postgres import cluster_home
from trueup.stack.processes import alive, free_port, spawn, stat_fields, stop


def new_stack(name: str, env: dict[str, str] | None = None) -> Stack:
    """A stack in its own folder; env holds extra TRUEUP_* settings (they reach its child processes too)."""
    data_dir = Path(tempfile.mkdtemp(prefix=f"trueup-{name}-"))
    extra = {"TRUEUP_DATA_DIR": str(data_dir), **(env or {})}
    os.environ.update(extra)
    try:
        settings = load_settings()
        return Stack(settings, echo=lambda *_: None, child_env=env)
    finally:
        for key in extra:
            del os.environ[key]


def started_pids(stack: Stack) -> list[tuple[str, int]]:
    """(role, pid) of every process the stack's state names: workers, connectors, the broker, PostgreSQL."""
    state = stack.state()
    if state is None:
        return []
    pids = [(f"worker {i}", rec.pid) for i, rec in enumerate(state.workers) if rec.pid]
    pids += [(f"connector {name}", rec.pid) for name, rec in state.connectors.items() if rec.pid]
    if state.broker and state.broker.pid:
        pids.append(("broker", state.broker.pid))
    cluster = stack._cluster(state)
    if cluster is not None and cluster.pid():
        pids.append(("postgres", cluster.pid()))
    return pids


def describe(role: str, pid: int) -> str:
    """A survivor as the failure should name it: its role, pid, kernel state and command line."""
    fields = stat_fields(pid)
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        fields = None
    if fields is None:
        return f"{role} (pid {pid}, gone while being described)"
    return f"{role} (pid {pid}, state {fields[0]}: {argv[:160]})"


def destroy(stack: Stack) -> list[str]:
    """Stop the stack and delete its folders; describe the processes still alive afterwards (should be none)."""
    pids = started_pids(stack)
    stack.down()
    left = [describe(role, pid) for role, pid in pids if alive(pid)]
    state_home = cluster_home(stack.data_dir)
    shutil.rmtree(stack.data_dir, ignore_errors=True)
    shutil.rmtree(state_home, ignore_errors=True)
    return left


@contextmanager
def running_stack(name: str, workers: int = 1, before_connectors=None, env: dict[str, str] | None = None):
    stack = new_stack(name, env)
    try:
        stack.up(workers=workers, before_connectors=before_connectors)
        yield stack
    finally:
        left = destroy(stack)
        assert not left, f"processes left running after stack down: {left}"


@contextmanager
def tansu(workdir: Path):
    """A fresh in-memory Tansu broker on a free loopback port, stopped (with its process group) on exit."""
    port = free_port()
    pid = spawn(broker_argv(port), workdir / "broker.log")
    try:
        bootstrap = f"127.0.0.1:{port}"
        wait_ready(bootstrap)
        yield bootstrap
    finally:
        stop(pid)
