"""Schema drift dead-letters a change; after a mapping fix, `trueup dlq replay` re-drives it (own stack)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import psycopg
import pytest
import yaml

from tests.canonical import dead_letters, events, wait_until
from tests.stack_support import running_stack
from trueup.settings import PROJECT_ROOT, load_settings
from trueup.stack.orchestrator import Stack
from trueup.stack.processes import stop

pytestmark = pytest.mark.integration


def _fixed_mapping(path):
    data = yaml.safe_load((PROJECT_ROOT / "config" / "mapping.yaml").read_text())
    accounts = data["sources"]["crm"]["tables"]["accounts"]
    del accounts["columns"]["tax_id"]
    accounts["columns"]["vat_id"] = "text"
    accounts["rename"] = {"vat_id": "tax_id"}
    path.write_text(yaml.safe_dump(data))
    return path


def test_schema_drift_dead_letter_replays_after_mapping_fix(tmp_path):
    with running_stack("replay", workers=1) as stack:
        status = stack.status()
        bootstrap = status["kafka"]["bootstrap"]
        acc = f"ACC-DR{uuid.uuid4().hex[:6]}"
        with psycopg.connect(status["postgres"]["crm"], autocommit=True) as conn:
            conn.execute("ALTER TABLE accounts RENAME COLUMN tax_id TO vat_id")
            conn.execute("INSERT INTO accounts (id, name, vat_id, status) VALUES (%s, 'Drift AG', 'DE123', "
                         "'active')", (acc,))
        letters = wait_until(lambda: [l for l in dead_letters(bootstrap) if acc.encode() in (l["value"] or b"")],
                             bool, what="drift dead letter")
        assert "schema drift" in letters[0]["error"] and "tax_id" in letters[0]["error"]
        assert not [e for e in events(bootstrap, "account") if e["entity_id"] == acc]

        # Fix the mapping, restart the worker on it, replay.
        fixed = _fixed_mapping(tmp_path / "mapping.yaml")
        env = {"TRUEUP_DATA_DIR": str(stack.data_dir), "TRUEUP_MAPPING": str(fixed)}
        os.environ.update(env)
        try:
            fixed_stack = Stack(load_settings(), echo=lambda *_: None)
        finally:
            for key in env:
                del os.environ[key]
        state = fixed_stack.state()
        stop(state.workers[0].pid)
        fixed_stack.start_worker(state, 0)
        fixed_stack._wait(lambda: fixed_stack.worker_ready(state.workers[0]), "worker 0", state.workers[0], 180)

        result = subprocess.run(
            [sys.executable, "-m", "trueup.cli", "dlq", "replay", "--filter", "schema drift"],
            env=dict(os.environ, **env), capture_output=True, text=True, timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().startswith("1 dead letter(s) replayed"), result.stdout
        replayed = wait_until(lambda: [e for e in events(bootstrap, "account") if e["entity_id"] == acc], bool,
                              what="replayed event")
        assert len(replayed) == 1
        assert replayed[0]["op"] == "create" and replayed[0]["after"]["tax_id"] == "DE123"
