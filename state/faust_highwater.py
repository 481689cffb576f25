"""Make Faust's table recovery read each changelog to its true end: the local broker's ListOffsets reports less."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth, server_list
from faust.types import TP

from state.faust_consumer_hook import on_new_consumer
from state.partition_ends import probe_tails

log = logging.getLogger(__name__)

# Faust's Recovery takes consumer.highwaters(*tps) (ListOffsets) as the end of each changelog partition it restores.
# Tansu answers ListOffsets with the first offset of the last batch + 1: recovery stopped early (counts lost after a
# handover) and raised ConsistencyError when a store or standby was ahead of it (tests/integration/
# test_table_restore.py). Its fetch responses are right, so the end handed to Faust comes from a short probe read
# (state.partition_ends).

PROBE_TIMEOUT_S = 15.0
PROBE_ATTEMPTS = 4


def install(app: faust.App) -> None:
    """Call once, before the app starts: every consumer the app creates reports true changelog ends to recovery."""
    on_new_consumer(app, "true_highwaters", lambda consumer: _wrap(app, consumer))


def _wrap(app: faust.App, consumer: Any) -> Any:
    # Recovery._build_highwaters is the only caller of highwaters() in Faust; nothing else changes.
    reported_highwaters: Callable[..., Any] = consumer.highwaters

    async def highwaters(*tps: TP) -> Mapping[TP, int]:
        reported = await reported_highwaters(*tps)
        if consumer.in_transaction:
            # Exactly-once: Faust already uses the last stable offset, which comes from fetch responses.
            return reported
        return await true_ends(app, reported)

    consumer.highwaters = highwaters
    return consumer


async def true_ends(app: faust.App, reported: Mapping[TP, int]) -> dict[TP, int]:
    """The reported ends, raised to what a probe read finds; raises if repeated probes all fail."""
    ends = dict(reported)
    # An end of 0 (or None) is an empty partition: nothing to probe, and a fetch there would only wait for data.
    probe = {tp: end for tp, end in reported.items() if end}
    if not probe:
        return ends
    found = None
    for attempt in range(1, PROBE_ATTEMPTS + 1):
        try:
            found = await asyncio.wait_for(_probe(app, probe), PROBE_TIMEOUT_S * attempt)
            break
        except Exception as exc:
            # Restoring to the wrong end silently loses table state, so keep trying before giving up.
            log.warning("changelog end probe failed (attempt %d of %d): %r", attempt, PROBE_ATTEMPTS, exc)
    if found is None:
        raise RuntimeError("could not read the changelogs' true ends; refusing to restore tables short")
    for tp, end in found.items():
        if end > ends[tp]:
            log.info("changelog %s:%d ends at %d, not %d as ListOffsets said", tp.topic, tp.partition, end, ends[tp])
            ends[tp] = end
    return ends


async def _probe(app: faust.App, reported: Mapping[TP, int]) -> dict[TP, int]:
    conf = app.conf
    transport = app.transport
    consumer = AIOKafkaConsumer(
        bootstrap_servers=server_list(transport.url, transport.default_port),
        client_id=f"{conf.broker_client_id}-end-probe",
        group_id=None,  # a bare reader: no group, no commits, no rebalance of the real consumer
        enable_auto_commit=False,
        # If retention removed the probe offset, restart at the log start: the fetch still carries the high watermark.
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
        request_timeout_ms=int(conf.broker_request_timeout * 1000),
        **credentials_to_aiokafka_auth(conf.broker_credentials, conf.ssl_context),
    )
    await consumer.start()
    try:
        found = await probe_tails(consumer, reported, tails=())  # the ends alone
    finally:
        await consumer.stop()
    return {tp: end for tp, (end, _) in found.items()}
