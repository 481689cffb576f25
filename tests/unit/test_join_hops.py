"""join_topology.HOPS: no change reaches a bucket in more link hops than its type is listed with.

A rule judged in a bucket waits only for the watermark after that many hops, so a change arriving in more
would be judged before it is there. Generated multi-system histories, each message counted from its entity's
own bucket (hop 0); the table must also be tight, or alerts would wait for stages they do not need.
"""

from __future__ import annotations

from collections import deque

from hypothesis import HealthCheck, given, settings

from streams import join_topology, projections
from streams.join_driver import JoinDriver
from streams.joins import APPLIED, apply, split_key
from streams.mapping import ENTITY_TYPES
from streams.rules import RULE_BUCKETS
from streams.watermarks import LINK_HOPS
from tests.unit.histories import Source
from tests.unit.test_join_order_independence import scenarios


class HopCountingDriver(JoinDriver):
    """Message at a time, each message carrying the hops its change has taken; the most seen per bucket type."""

    def __init__(self) -> None:
        super().__init__()
        self.most: dict[str, int] = {}

    def deliver(self, message) -> None:
        queue = deque([(message, 0)])
        while queue:
            msg, hops = queue.popleft()
            self.deliveries += 1
            state, outputs, status = apply(self.states.get(msg.bucket), msg, join_topology.emits,
                                           projections.projector, source=self.deliveries)
            self.states[msg.bucket] = state
            if status == APPLIED:
                bucket_type = split_key(msg.bucket)[0]
                self.most[bucket_type] = max(self.most.get(bucket_type, 0), hops)
            queue.extend((link, hops + 1) for link in outputs.links)


def most_hops(in_order: list[dict]) -> dict[str, int]:
    driver = HopCountingDriver()
    for ev in in_order:
        driver.feed(ev)
    return driver.most


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scenarios())
def test_no_change_reaches_a_bucket_in_more_hops_than_its_type_is_listed_with(scenario):
    in_order, _, _ = scenario
    for bucket_type, hops in most_hops(in_order).items():
        allowed = 0 if bucket_type in ENTITY_TYPES else join_topology.hops_to(bucket_type, LINK_HOPS)
        assert hops <= allowed, f"{bucket_type} reached in {hops} hops, listed with {allowed}"


def test_the_listed_hops_are_reached_and_none_exceeds_the_deepest_stage():
    seen: dict[str, int] = {}

    @settings(max_examples=150, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(scenarios())
    def collect(scenario):
        for bucket_type, hops in most_hops(scenario[0]).items():
            seen[bucket_type] = max(seen.get(bucket_type, 0), hops)

    collect()
    # The generator draws no web domains; two accounts sharing one reach DOM in one hop.
    crm = Source("crm")
    seen[join_topology.DOM] = most_hops([crm.upsert("account", "ACC-1", domain="acme.example"),
                                         crm.upsert("account", "ACC-2", domain="acme.example")])["DOM"]
    assert {t: seen.get(t) for t in join_topology.HOPS} == join_topology.HOPS
    assert max(join_topology.HOPS.values()) == LINK_HOPS
    assert RULE_BUCKETS - set(join_topology.HOPS) == {join_topology.VFY}  # verify findings wait the longest
