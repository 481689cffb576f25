"""Direct appends to aiokafka's accumulator: placement, order per partition, completion, and the fallbacks.

The accumulator, its batches and the producer's metadata are aiokafka's own (a producer that never connects);
Faust's side is a stand-in with the attributes the module touches.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from aiokafka import AIOKafkaProducer

from state.faust_direct_send import DirectSend
from streams.partitioning import KeyPartitioner

PARTITIONS = {"events": {0, 1, 2, 3}, "changelog": {0, 1, 2, 3}}


class Channel:
    def __init__(self, name: str, published: list) -> None:
        self.name, self.published = name, published

    def get_topic_name(self) -> str:
        return self.name

    def _on_published(self, fut, message, state, producer) -> None:  # Faust's Topic callback, same signature
        self.published.append((message, fut.result()))


class Buffer:
    """Faust's ProducerBuffer as far as the module uses it: a queue the test drains by hand."""

    def __init__(self) -> None:
        self.queue: list = []

    def put(self, fut) -> None:
        self.queue.append(fut)

    async def _send_pending(self, fut) -> None:
        return None


def pending(channel: Channel, key: bytes | None, value: bytes, partition: int | None = None):
    message = SimpleNamespace(channel=channel, key=key, value=value, headers=[("h", b"1")], partition=partition,
                              timestamp=None)
    return SimpleNamespace(message=message)


def make(batch_size: int = 16384, max_batches: int = 64, in_transaction: bool = False, threaded: bool = False,
         sensors=None):
    kafka = AIOKafkaProducer(bootstrap_servers="127.0.0.1:1", max_batch_size=batch_size,
                             partitioner=KeyPartitioner())
    kafka._metadata.partitions_for_topic = lambda topic: PARTITIONS.get(topic)
    kafka._metadata.available_partitions_for_topic = lambda topic: PARTITIONS.get(topic)
    buffer = Buffer()
    producer = SimpleNamespace(_producer=kafka, buffer=buffer, allow_headers=True,
                               _send_on_produce_message=lambda **kw: None)
    sensors = sensors or SimpleNamespace(on_send_initiated=lambda *a, **kw: None)
    app = SimpleNamespace(producer=producer, in_transaction=in_transaction, sensors=sensors,
                          conf=SimpleNamespace(producer_threaded=threaded))
    direct = DirectSend(app, max_batches=max_batches)
    direct.install()
    return direct, kafka, buffer


def batches(kafka, topic: str, partition: int) -> list:
    from aiokafka.structs import TopicPartition

    return list(kafka._message_accumulator._batches.get(TopicPartition(topic, partition), ()))


def test_a_keyed_record_goes_into_its_partitions_batch_and_completes_through_fausts_callback():
    async def main():
        direct, kafka, buffer = make()
        published: list = []
        events = Channel("events", published)
        fut = pending(events, b"ACC-1", b"v")
        buffer_put = direct.buffer.put
        buffer_put(fut)
        partition = KeyPartitioner()(b"ACC-1", [0, 1, 2, 3], [0, 1, 2, 3])
        [batch] = batches(kafka, "events", partition)
        assert batch.record_count == 1 and buffer.queue == [] and direct.direct == 1
        batch.done(base_offset=41)
        await asyncio.sleep(0)  # done callbacks run on the loop
        [(message, metadata)] = published
        assert message is fut and metadata.offset == 41 and metadata.partition == partition
        await kafka.stop()

    asyncio.run(main())


def test_a_full_batch_gets_a_new_one_behind_it_and_order_holds():
    async def main():
        direct, kafka, buffer = make(batch_size=300)
        published: list = []
        log = Channel("changelog", published)
        futs = [pending(log, b"k", bytes([i]) * 120, partition=2) for i in range(6)]
        for fut in futs:
            direct.buffer.put(fut)
        held = batches(kafka, "changelog", 2)
        assert len(held) > 1 and buffer.queue == [] and direct.direct == 6
        for offset, batch in enumerate(held):
            batch.done(base_offset=offset * 100)
        await asyncio.sleep(0)
        offsets = [metadata.offset for _, metadata in sorted(published, key=lambda p: futs.index(p[0]))]
        assert offsets == sorted(offsets) and len(set(offsets)) == 6
        await kafka.stop()

    asyncio.run(main())


def test_past_the_batch_bound_a_topic_queues_until_its_queue_is_sent_and_other_topics_go_on():
    async def main():
        direct, kafka, buffer = make(batch_size=300, max_batches=1)
        log, events = Channel("changelog", []), Channel("events", [])
        first, second, third = (pending(log, b"k", b"x" * 200, partition=1) for _ in range(3))
        direct.buffer.put(first)
        direct.buffer.put(second)  # the one batch is full and no second is allowed: Faust's path
        assert buffer.queue == [second]
        kafka._message_accumulator._batches.clear()  # the sender took the batch: room again
        direct.buffer.put(third)  # still queued: it must not overtake `second`
        assert buffer.queue == [second, third]
        direct.buffer.put(pending(events, b"ACC-1", b"v"))
        assert len(buffer.queue) == 2 and direct.direct == 2
        for fut in list(buffer.queue):
            await direct.buffer._send_pending(fut)
        direct.buffer.put(pending(log, b"k", b"y", partition=1))
        assert direct.direct == 3 and direct.queued == 2
        assert direct.fallbacks == {("changelog", "1 batches already waiting for one partition"): 1,
                                    ("changelog", "earlier records of the topic still queued"): 1}
        await kafka.stop()

    asyncio.run(main())


def test_what_only_fausts_path_can_send_is_queued(caplog):
    async def main():
        direct, kafka, buffer = make()
        unknown = pending(Channel("no-metadata-yet", []), b"k", b"v")
        keyless = pending(Channel("events", []), None, b"v")
        with caplog.at_level("WARNING"):
            direct.buffer.put(unknown)
            direct.buffer.put(keyless)
            assert buffer.queue == [unknown, keyless] and direct.direct == 0
            for fut in list(buffer.queue):
                await direct.buffer._send_pending(fut)
            direct.buffer.put(pending(Channel("events", []), None, b"w"))
        assert direct.fallbacks == {("no-metadata-yet", "no metadata for the topic yet"): 1,
                                    ("events", "no key or partition"): 2}
        # Said once per topic and reason, however many records follow it.
        assert caplog.text.count("records to events go through Faust's queue: no key or partition") == 1
        await kafka.stop()

        transactional, kafka, buffer = make(in_transaction=True)
        fut = pending(Channel("events", []), b"k", b"v")
        transactional.buffer.put(fut)
        assert buffer.queue == [fut] and transactional.direct == 0
        assert transactional.fallbacks == {("events", "producer not started or in a transaction"): 1}
        await kafka.stop()

    asyncio.run(main())


def test_an_aiokafka_without_the_internals_used_turns_direct_sends_off_and_loses_nothing(caplog):
    async def main():
        direct, kafka, buffer = make()
        del kafka._message_accumulator._batches  # as if another aiokafka version kept its batches elsewhere
        first, second = (pending(Channel("events", []), b"k", b"v") for _ in range(2))
        with caplog.at_level("WARNING"):
            direct.buffer.put(first)
        direct.buffer.put(second)
        assert buffer.queue == [first, second] and not direct.enabled and direct.direct == 0
        assert "direct sends off" in caplog.text
        kafka._message_accumulator._batches = {}
        await kafka.stop()

    asyncio.run(main())


def test_the_worker_app_sends_directly_unless_the_setting_is_off(tmp_path):
    from streams.app import create_app
    from trueup.settings import Settings

    def put_of(direct_send: bool):
        settings = Settings(data_dir=tmp_path, worker={"direct_send": direct_send})
        app = create_app(settings, "127.0.0.1:9", 0, 6099)
        return app.producer.buffer.put

    assert getattr(put_of(True), "__self__", None).__class__ is DirectSend
    assert getattr(put_of(False), "__self__", None).__class__ is not DirectSend


def test_a_failing_sensor_is_logged_and_the_record_still_completes(caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("sensor broke")

    async def main():
        direct, kafka, buffer = make(sensors=SimpleNamespace(on_send_initiated=broken))
        published: list = []
        fut = pending(Channel("changelog", published), b"k", b"v", partition=0)
        direct.buffer.put(fut)  # must not raise into the agent: the record is in a batch already
        [batch] = batches(kafka, "changelog", 0)
        batch.done(base_offset=7)
        await asyncio.sleep(0)
        assert [(m, md.offset) for m, md in published] == [(fut, 7)] and buffer.queue == []
        assert "sensor failed" in caplog.text or "sensor broke" in caplog.text
        await kafka.stop()

    asyncio.run(main())


def test_a_value_that_is_not_bytes_goes_to_fausts_path_which_raises_it_as_before():
    async def main():
        direct, kafka, buffer = make()
        fut = pending(Channel("events", []), b"k", "text, not bytes")
        direct.buffer.put(fut)
        assert buffer.queue == [fut] and direct.direct == 0
        await kafka.stop()

    asyncio.run(main())


def test_a_threaded_producer_keeps_fausts_path():
    async def main():
        direct, kafka, buffer = make(threaded=True)
        assert not direct.enabled and direct.buffer.put == buffer.put
        await kafka.stop()

    asyncio.run(main())
