"""Shared fixtures: the real stack (PostgreSQL, broker, Debezium, workers) started once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TEST_PROFILE = ROOT / "config" / "test-profile.toml"


@pytest.fixture(scope="session", autouse=True)
def _test_profile():
    """Every tier runs on the test profile; nothing inherited from the caller's TRUEUP_* leaks in."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("TRUEUP_")}
    for key in saved:
        del os.environ[key]
    os.environ["TRUEUP_CONFIG"] = str(TEST_PROFILE)
    yield
    for key in [k for k in os.environ if k.startswith("TRUEUP_")]:
        del os.environ[key]
    os.environ.update(saved)


@pytest.fixture(scope="session")
def stack():
    """The shared real stack: one worker, rows seeded before the connectors take their snapshot."""
    from tests.stack_support import running_stack
    from tests.seed import seed_snapshot_rows

    with running_stack("session", workers=1, before_connectors=seed_snapshot_rows) as s:
        yield s


@pytest.fixture(scope="session")
def stack_status(stack):
    return stack.status()
