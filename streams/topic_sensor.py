"""A Faust sensor counting the records a worker consumes and produces, per topic, into its metrics."""

from __future__ import annotations

from faust.sensors import Sensor


class TopicCounts(Sensor):
    def __init__(self, metrics, **kwargs) -> None:
        super().__init__(**kwargs)
        self.metrics = metrics

    def on_message_in(self, tp, offset, message) -> None:
        self.metrics.records_in.labels(tp.topic).inc()

    def on_send_initiated(self, producer, topic, message, keysize, valsize):
        self.metrics.records_out.labels(topic).inc()
        return None
