"""Upgrading a group whose join read the canonical events topics: events left there are joined while draining.

The join reads each change's entity write from the links topic, so an event an earlier version wrote to
`trueup.events.*` and never joined stays unjoined, until `worker.join_reads_events` has the join read the
events topics too (own stack; the worker is restarted with the setting).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from connectors.debezium_runner import kafka_producer
from streams.encoding import Encoder
from streams.normalize_agent import EVENT_SCHEMA, _for_avro
from streams.normalizer import Parsed, finish, parse
from tests.canonical import wait_until
from tests.seed import seed_snapshot_rows
from tests.stack_support import running_stack
from tests.unit.envelopes import data_record, row, shipped_mapping
from trueup.stack.processes import alive, stop

pytestmark = pytest.mark.integration

LEFT_BEHIND = "ACC-UPGRADE1"


def entity(url: str, entity_type: str, entity_id: str) -> tuple[int, dict | None]:
    try:
        with urllib.request.urlopen(f"{url}/entities/{entity_type}/{entity_id}", timeout=20) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None


def an_earlier_versions_event() -> tuple[dict, bytes]:
    """A CRM account's canonical event as the normalizer of any version builds it, Avro-encoded."""
    parsed = parse(data_record("crm", "accounts", "c", after=row("crm", "accounts", id=LEFT_BEHIND,
                                                                 name="Left Behind AG")), shipped_mapping())
    assert isinstance(parsed, Parsed), parsed
    event, _, _ = finish(parsed, None, int(time.time() * 1000), ("crm.public.accounts", 0, 1))
    return event, Encoder().encode("trueup.events.account", EVENT_SCHEMA, _for_avro(event))


def test_events_an_earlier_version_left_are_joined_only_while_the_join_drains_them():
    with running_stack("upgrade", workers=1, before_connectors=seed_snapshot_rows) as stack:
        state = stack.state()
        rec = state.workers[0]
        url = stack.worker_url(rec)
        event, value = an_earlier_versions_event()
        producer = kafka_producer(state.bootstrap, 0)
        producer.produce("trueup.events.account", key=LEFT_BEHIND.encode(), value=value)
        assert producer.flush(30) == 0

        # The snapshot's account reaches its bucket through the links topic; the event written straight to
        # the events topic, before it, does not.
        wait_until(lambda: entity(url, "account", "ACC-SNAP01")[0], lambda status: status == 200, 120,
                   "the snapshot's account joined")
        time.sleep(5)
        assert entity(url, "account", LEFT_BEHIND) == (404, None)

        stop(rec.pid)
        while alive(rec.pid):
            time.sleep(0.1)
        stack.extra_env["TRUEUP_WORKER__JOIN_READS_EVENTS"] = "true"
        stack.start_worker(state, 0)
        stack._wait(lambda: stack.worker_ready(state.workers[0]), "worker 0", state.workers[0], 180)

        status, found = wait_until(lambda: entity(url, "account", LEFT_BEHIND), lambda got: got[0] == 200, 120,
                                   "the left-behind event joined")
        assert found["fields"]["name"] == "Left Behind AG", found
        assert found["correlation_id"] == event["correlation_id"]
        # Every other event is read a second time from the events topics: the bucket already holds it.
        status, snap = entity(url, "account", "ACC-SNAP01")
        assert status == 200 and snap["fields"]["name"] == "Snapshot GmbH"
