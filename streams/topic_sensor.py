"""A Faust sensor counting the records a worker consumes and produces, per topic, into its metrics."""

from __future__ import annotations

from faust.sensors import Sensor


class TopicCounts(Sensor):
    def __init__(self, metrics, **kwargs) -> None:
        super().__init__(**kwargs)
        self.metrics = metrics
        # Labelled children by topic: called for every record, and labels() itself takes a lock each time.
        self._in: dict[str, object] = {}
        self._out: dict[str, object] = {}

    def on_message_in(self, tp, offset, message) -> None:
        child = self._in.get(tp.topic)
        if child is None:
            child = self._in[tp.topic] = self.metrics.records_in.labels(tp.topic)
        child.inc()

    def on_send_initiated(self, producer, topic, message, keysize, valsize):
        child = self._out.get(topic)
        if child is None:
            child = self._out[topic] = self.metrics.records_out.labels(topic)
        child.inc()
        return None
