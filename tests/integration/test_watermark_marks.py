"""A source's watermark moves on marks only: a data record, however new, does not move it alone (own stack).

A transaction's records go to several topics, and a producer may land a later record on one partition before an
earlier one on another; a watermark that followed data records could pass a transaction half written. Here the
connector is paused and a payment change is written straight to its raw topic: the worker processes it, and the
source's watermark stays where the connector's last mark left it until the resumed connector marks again.
"""

from __future__ import annotations

import json
import time

from confluent_kafka import Producer

from tests import alert_support as support
from tests.canonical import envelope, metric, wait_until
from tests.stack_support import running_stack
from trueup.query import watermark_ms

PAYMENTS = "billing.public.payments"


def _billing_watermark(stack) -> int:
    return watermark_ms(support.health(stack)["sources"]["billing"])


def _settled_watermark(stack) -> int:
    """The watermark once it has not moved for 2 s (20 ticks): the last marks' barriers have all passed."""
    last, since = _billing_watermark(stack), time.monotonic()
    deadline = since + 60
    while time.monotonic() - since < 2:
        assert time.monotonic() < deadline, "the paused source's watermark kept moving"
        time.sleep(0.25)
        now = _billing_watermark(stack)
        if now != last:
            last, since = now, time.monotonic()
    return last


def test_a_data_record_alone_does_not_move_the_watermark_and_the_connectors_marks_do():
    with running_stack("marks") as stack:
        status = stack.status()
        api = status["api"]["url"]
        support.wait_caught_up(stack, int(time.time() * 1000))
        stack.pause("billing")
        held = _settled_watermark(stack)
        seen = metric(api, "trueup_events_in_total", source="billing", table="payments")

        value = envelope("payments", "billing", "c", {
            "id": "py_marks_1", "invoice_id": "in_marks_1", "customer_id": "cus_marks_1", "amount": "10.00",
            "currency": "EUR", "kind": "charge", "status": "succeeded", "updated_at": "2026-12-07T00:00:00Z"})
        committed_ms = json.loads(value)["source"]["ts_ms"]
        assert committed_ms > held
        producer = Producer({"bootstrap.servers": status["kafka"]["bootstrap"]})
        producer.produce(PAYMENTS, key=b'{"id":"py_marks_1"}', value=value)
        assert producer.flush(10) == 0

        wait_until(lambda: metric(api, "trueup_events_in_total", source="billing", table="payments"),
                   lambda n: n >= seen + 1, 60, "the payment read by the worker")
        # Three seconds of watermark ticks (every 0.1 s) with the record processed and at the raw topic's end.
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            assert _billing_watermark(stack) == held, "a data record moved the watermark"
            time.sleep(0.25)

        stack.resume("billing")
        # wait_until fails the test unless the watermark passes the payment within 60 s.
        wait_until(lambda: _billing_watermark(stack), lambda mark: mark >= committed_ms, 60,
                   "the resumed connector's marks move the watermark past the payment")
