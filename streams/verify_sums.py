"""Bucket checksums of a worker's live entity state, kept current on every write so a verify run never scans it.

Rows are summed into 65,536 fine buckets (the key md5's first 32 bits modulo 2^16). Since every coarser bucket
count that is a power of two divides that, a coarse bucket is the sum of its fine ones, and a differing bucket
splits into sub-buckets without reading a row: bisection as in data-diff. Each fine bucket also keeps the
newest source time it has seen (upserts and deletes), so a run can tell which buckets moved after its snapshot.
"""

from __future__ import annotations

from streams.mapping import TableMapping
from streams.values import epoch_ms
from streams.verify_core import bucket_of, state_row_hash

FINE_BUCKETS = 1 << 16


def is_coarsening(buckets: int) -> bool:
    """Whether a bucket count can be answered from the fine sums: a power of two up to FINE_BUCKETS."""
    return 1 <= buckets <= FINE_BUCKETS and buckets & (buckets - 1) == 0


def entity_row(bucket_key: str, state: dict | None, specs: dict[str, TableMapping]):
    """(entity type, id, row hash or None when deleted, source ms) of the entity a bucket holds, or None.

    Only an entity's own bucket (`type|id`, member ("self", id)) holds its row; join buckets hold none.
    """
    entity_type, _, entity_id = bucket_key.partition("|")
    spec = specs.get(entity_type)
    if spec is None or state is None:
        return None
    me = state["members"].get(("self", entity_id))
    if me is None:
        return None
    if me["deleted"] or not me.get("data"):
        return entity_type, entity_id, None, int(me.get("at_ms") or 0)
    data = me["data"]
    return entity_type, entity_id, state_row_hash(data["fields"], spec), epoch_ms(data["source_ts"])


class LiveSums:
    """{partition: {entity type: {fine bucket: [rows, sum of row hashes, newest source ms]}}} of this worker.

    Kept per table partition so a rebuild can go one partition at a time: writes to a partition not yet
    rebuilt are skipped (its scan will read them), writes to a rebuilt one are applied.
    """

    def __init__(self, specs: dict[str, TableMapping]) -> None:
        self.specs = specs
        self.sums: dict[int, dict[str, dict[int, list[int]]]] = {}

    def ready(self, partitions) -> bool:
        return all(p in self.sums for p in partitions)

    def forget(self, keep) -> None:
        """Drop every partition not in keep (revoked), and forget the rest too if keep is None."""
        self.sums = {} if keep is None else {p: v for p, v in self.sums.items() if p in keep}

    @staticmethod
    def _add(part: dict, row, sign: int) -> None:
        entity_type, entity_id, row_hash, source_ms = row
        entry = part.setdefault(entity_type, {}).setdefault(bucket_of(entity_id, FINE_BUCKETS), [0, 0, 0])
        if row_hash is not None:
            entry[0] += sign
            entry[1] += sign * row_hash
        entry[2] = max(entry[2], source_ms)

    def build(self, partition: int, items) -> int:
        """Count one partition afresh from its (bucket key, state) pairs; returns the entity rows seen."""
        part: dict = {}
        seen = 0
        for bucket_key, state in items:
            row = entity_row(bucket_key, state, self.specs)
            if row is not None:
                self._add(part, row, 1)
                seen += 1
        self.sums[partition] = part
        return seen

    def replace(self, partition: int, bucket_key: str, before: dict | None, after: dict | None) -> None:
        """A bucket of a partition was written: take its old row out and put its new one in."""
        part = self.sums.get(partition)
        if part is None:
            return  # not rebuilt yet: its scan will read the state as written now
        old = entity_row(bucket_key, before, self.specs)
        new = entity_row(bucket_key, after, self.specs)
        if old == new:
            return
        if old is not None and old[2] is not None:
            self._add(part, old, -1)
        if new is not None:
            self._add(part, new, 1)

    def answer(self, entity_type: str, buckets: int, wanted: set[int] | None, newer_than_ms: int,
               partitions) -> tuple[int, dict[int, list[int]], list[int]]:
        """(rows, {bucket: [rows, sum]}, buckets changed after newer_than_ms) over some rebuilt partitions."""
        out: dict[int, list[int]] = {}
        newer: set[int] = set()
        rows = 0
        for p in partitions:
            for fine, (count, total, newest) in self.sums[p].get(entity_type, {}).items():
                b = fine % buckets
                if wanted is not None and b not in wanted:
                    continue
                if newest > newer_than_ms:
                    newer.add(b)
                if count:
                    entry = out.setdefault(b, [0, 0])
                    entry[0] += count
                    entry[1] += total
                    rows += count
        return rows, {b: v for b, v in out.items() if v[0]}, sorted(newer)
