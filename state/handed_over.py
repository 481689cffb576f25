"""Which fetched records reached the agents, and where each partition must be read again from. Pure: no Faust.

Faust's consumer drops a fetched record of a partition that is paused at that moment (recovery pauses
changelog partitions, the stall repair a stream partition) and hands over the partition's later records once
it is resumed. Its commit then passes the dropped ones: a gap in the acknowledged offsets is taken for a
compacted or transactional one, and a single record missing right after the committed offset is not seen as
a gap at all. Measured on the local broker (tests/integration/test_paused_partitions.py): with one partition
paused for 2 ms every 5 ms, 1,745 of 20,000 records never reached the agent, and the commits passed them on
three partitions of four. So once a partition's record is held back, none after it is handed over from
that fetch, and the partition is read again from the first record not handed over.
"""

from __future__ import annotations

from collections.abc import Hashable


class Handover:
    """One fetch: admit() each record in the order Faust would hand it over; then `held` says where to read again."""

    def __init__(self) -> None:
        # {partition: its first record held back}: nothing of it after that is handed over, so it is also the
        # first record of the fetch not handed over, where the partition is read again from.
        self.held: dict[Hashable, int] = {}

    def admit(self, tp: Hashable, offset: int, deliverable: bool) -> bool:
        """True if the record goes to the agents: its partition is deliverable and nothing of it was held back."""
        if not deliverable or tp in self.held:
            self.held.setdefault(tp, offset)
            return False
        return True
