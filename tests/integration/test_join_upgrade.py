"""Upgrading a group whose join read the canonical events topics: events left there are joined while draining.

The join reads each change's entity write from the links topic, so an event an earlier version wrote to
`trueup.events.*` and never joined stays unjoined, until `worker.join_reads_events` has the join read the
events topics too (own stack; the worker is restarted with the setting). Without the setting, a worker refuses to
start while such events sit past the group's commit, and starts again once they are drained.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import psycopg
import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition

from connectors.debezium_runner import kafka_producer
from streams.encoding import Encoder
from streams.normalize_agent import EVENT_SCHEMA, _for_avro
from streams.normalizer import Parsed, finish, parse
from tests.canonical import wait_until
from tests.seed import seed_snapshot_rows
from tests.stack_support import running_stack
from tests.unit.envelopes import data_record, row, shipped_mapping
from trueup.stack.orchestrator import StackError
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
    # No worker yet: the group's first member is one of this version.
    with running_stack("upgrade", workers=0, before_connectors=seed_snapshot_rows) as stack:
        state = stack.state()
        event, value = an_earlier_versions_event()
        producer = kafka_producer(state.bootstrap, 0)
        delivered = []
        producer.produce("trueup.events.account", key=LEFT_BEHIND.encode(), value=value,
                         on_delivery=lambda err, msg: delivered.append((err, msg.partition(), msg.offset())))
        assert producer.flush(30) == 0
        [(error, partition, offset)] = delivered
        assert error is None
        # The earlier version's join had read that partition up to the event it left: without the setting, a
        # worker refuses to start, naming the setting and where the unjoined events begin.
        group = stack.settings.worker.app_id
        commit_as(state.bootstrap, group, "trueup.events.account", partition, offset)
        with pytest.raises(StackError, match=rf"worker.join_reads_events .* is false, but group {group} .*"
                                             rf"trueup\.events\.account\[{partition}\] from offset {offset}"):
            start_worker(stack, state)
        url = stack.worker_url(state.workers[0])

        stack.extra_env["TRUEUP_WORKER__JOIN_READS_EVENTS"] = "true"
        start_worker(stack, state)

        status, found = wait_until(lambda: entity(url, "account", LEFT_BEHIND), lambda got: got[0] == 200, 120,
                                   "the left-behind event joined")
        assert found["fields"]["name"] == "Left Behind AG", found
        assert found["correlation_id"] == event["correlation_id"]
        # The snapshot's changes reach the join both ways, as entity writes on the links topic and as events: each
        # is written once, whichever comes first.
        status, snap = wait_until(lambda: entity(url, "account", "ACC-SNAP01"), lambda got: got[0] == 200, 120,
                                  "the snapshot's account joined")
        assert snap["fields"]["name"] == "Snapshot GmbH", snap

        # Drained, the group starts without the setting. The normalizer's events then pile up past the
        # group's commit on the events topics, each marked as joined through the links topic, so a restart
        # without the setting goes ahead.
        wait_until(lambda: committed_at(state.bootstrap, group, "trueup.events.account", partition),
                   lambda at: at is not None and at > offset, 120, "the drain committed past the left event")
        stop_worker(state.workers[0])
        del stack.extra_env["TRUEUP_WORKER__JOIN_READS_EVENTS"]
        start_worker(stack, state)
        new_ids = [f"ACC-AFTER{i}" for i in range(12)]
        with psycopg.connect(stack.dsn("crm", state), autocommit=True) as conn:
            for account_id in new_ids:
                conn.execute("INSERT INTO accounts (id, name, domain, country, status) VALUES "
                             "(%s, 'After Upgrade', 'after.example', 'DE', 'active')", (account_id,))
        for account_id in new_ids:
            wait_until(lambda: entity(url, "account", account_id)[0], lambda got: got == 200, 120,
                       f"{account_id} joined without the setting")
        stop_worker(state.workers[0])
        past = [first_past_commit(state.bootstrap, group, "trueup.events.account", p)
                for p in range(stack.settings.kafka.partitions)]
        marked = [headers for headers in past if headers is not None]
        assert marked and all(("entity_write", b"links") in headers for headers in marked), past
        start_worker(stack, state)


def stop_worker(rec) -> None:
    stop(rec.pid)
    while alive(rec.pid):
        time.sleep(0.1)


def start_worker(stack, state) -> None:
    stack.start_worker(state, 0)
    stack._wait(lambda: stack.worker_ready(state.workers[0]), "worker 0", state.workers[0], 180)


def _group_consumer(bootstrap: str, group: str) -> Consumer:
    # The group's id without joining it: offsets are read and committed for it as an earlier version would have.
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                     "enable.partition.eof": True})


def commit_as(bootstrap: str, group: str, topic: str, partition: int, offset: int) -> None:
    """Commit for the group, which has no member yet, as an earlier version's join had."""
    consumer = _group_consumer(bootstrap, group)
    try:
        consumer.commit(offsets=[TopicPartition(topic, partition, offset)], asynchronous=False)
    finally:
        consumer.close()


def committed_at(bootstrap: str, group: str, topic: str, partition: int) -> int | None:
    consumer = _group_consumer(bootstrap, group)
    try:
        [tp] = consumer.committed([TopicPartition(topic, partition)], timeout=10)
        return tp.offset if tp.offset >= 0 else None
    finally:
        consumer.close()


def first_past_commit(bootstrap: str, group: str, topic: str, partition: int) -> tuple | None:
    """The headers of the first record at the group's commit on one partition; None at its end or uncommitted."""
    at = committed_at(bootstrap, group, topic, partition)
    if at is None:
        return None
    consumer = _group_consumer(bootstrap, group)
    try:
        consumer.assign([TopicPartition(topic, partition, at)])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            if msg.error() is not None:
                assert msg.error().code() == KafkaError._PARTITION_EOF, msg.error()
                return None
            return tuple(msg.headers() or ())
        raise TimeoutError(f"nothing read from {topic}[{partition}] at {at}")
    finally:
        consumer.close()
