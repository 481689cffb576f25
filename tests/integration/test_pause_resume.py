"""`stack pause SOURCE` stops one connector; changes wait in the slot; `resume` delivers them (own stack)."""

from __future__ import annotations

import time

import psycopg
import pytest

from tests.raw_topics import envelopes, for_key, wait_for
from tests.stack_support import running_stack

pytestmark = pytest.mark.integration


def _component(stack, name):
    return next(c for c in stack.status()["components"] if c["name"] == name)


def test_pause_holds_changes_and_resume_delivers_them():
    with running_stack("pause", workers=0) as stack:
        status = stack.status()
        bootstrap = status["kafka"]["bootstrap"]
        stack.pause("billing")
        paused = _component(stack, "connector-billing")
        assert paused["state"] == "down" and paused["paused"] is True
        assert _component(stack, "connector-crm")["state"] == "up"
        with psycopg.connect(status["postgres"]["billing"], autocommit=True) as conn:
            for n in range(20):
                conn.execute("INSERT INTO customers (id, name, currency) VALUES (%s, 'Paused Ltd', 'GBP')",
                             (f"cus_pause{n}",))
        time.sleep(3)
        held = envelopes(bootstrap, "billing.public.customers")
        assert not for_key(held, "id", "cus_pause0"), "a paused connector must not deliver"
        assert _component(stack, "connector-billing")["slot_lag_bytes"] > 0
        stack.resume("billing")
        assert _component(stack, "connector-billing")["state"] == "up"
        # Every insert made while paused arrives once resumed (wait_for fails the test if one never does).
        wait_for(bootstrap, "billing.public.customers",
                 lambda rs: all(for_key(rs, "id", f"cus_pause{n}") for n in range(20)))
