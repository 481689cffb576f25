"""`trueup verify`: prove the live state against the sources, report drift as alerts, and repair it.

Per entity type: a REPEATABLE READ snapshot of the source table; wait until trueup's watermark for that source
has passed the snapshot (everything committed before it is processed); key-bucket checksums from SQL and from
every worker (each over its own partitions), merged; row-level comparison only for buckets that differ or hold
rows trueup saw change after the snapshot. Drift goes through the pipeline as a `state_drift` finding (its
alert resolves when a later run finds the entity clean). `--repair` re-reads drifted rows and sends them down
the normal path as repair records; every repair is audited.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import psycopg
from confluent_kafka import Producer
from psycopg import sql
from psycopg.rows import dict_row

from connectors.debezium_runner import kafka_producer
from connectors.poll_envelopes import debezium_value, encode, record_key
from streams import pickling
from streams.joins import Message
from streams.mapping import Mapping
from streams.positions import REPAIR_CONNECTOR
from streams.queries import to_json
from streams.topics import links_topic
from streams.verify_core import classify, differing, merge_sums, split
from streams.verify_sums import FINE_BUCKETS, is_coarsening
from streams.verify_specs import entity_specs
from trueup import verify_sql
from trueup.query import fetch, watermark_ms
from trueup.settings import Settings

PAGE = 2000
ROW_LEVEL_ROWS = 256  # suspect buckets holding more rows than this are split before any row is fetched
BISECT_FACTOR = 16


@dataclass
class Summary:
    rows_checked: int = 0
    buckets: int = 0
    buckets_differing: int = 0
    bisections: int = 0
    waited_s: float = 0.0  # for the watermarks to pass the snapshots (trueup catching up), inside elapsed_s
    rows_fetched_row_level: int = 0
    drift: list[dict] = field(default_factory=list)
    repaired: int = 0
    resolved: int = 0
    elapsed_s: float = 0.0
    tables: list[str] = field(default_factory=list)

    @property
    def rows_per_s(self) -> float:
        return self.rows_checked / self.elapsed_s if self.elapsed_s else 0.0

    def as_dict(self) -> dict:
        by_kind: dict[str, int] = {}
        for d in self.drift:
            by_kind[d["kind"]] = by_kind.get(d["kind"], 0) + 1
        return {"rows_checked": self.rows_checked, "buckets": self.buckets,
                "buckets_differing": self.buckets_differing, "bisections": self.bisections,
                "waited_s": round(self.waited_s, 3),
                "rows_fetched_row_level": self.rows_fetched_row_level,
                "drift": len(self.drift), "drift_by_kind": by_kind, "repaired": self.repaired,
                "alerts_resolved": self.resolved, "elapsed_s": round(self.elapsed_s, 3),
                "rows_per_s": round(self.rows_per_s, 1), "tables": self.tables}


class Verifier:
    def __init__(self, settings: Settings, mapping: Mapping, api_url: str, dsns: dict[str, str], bootstrap: str,
                 buckets: int = 256, token: str | None = None, progress=None, wait_s: float = 180.0) -> None:
        self.settings, self.mapping, self.api_url, self.dsns = settings, mapping, api_url, dsns
        if not is_coarsening(buckets):
            raise ValueError(f"bucket count must be a power of two up to {FINE_BUCKETS}, not {buckets}")
        self.bootstrap, self.buckets, self.token, self.wait_s = bootstrap, buckets, token, wait_s
        self.progress = progress or (lambda *a, **k: None)
        self.tables_done = (0, 0)  # (entity types checked, to check), for a progress bar
        self.specs = entity_specs(settings, mapping)

    # ---- talking to the workers ------------------------------------------------------------------

    def _get(self, base: str, path: str, params: dict | None = None) -> dict:
        return fetch(base, path, params, self.token, timeout_s=300)

    def _workers(self) -> list[str]:
        health = self._get(self.api_url, "/health")
        urls = [w.get("url") for w in health.get("workers") or [health]]
        if not urls or any(w.get("recovery") != "done" for w in health.get("workers") or [health]):
            raise RuntimeError("a worker is not ready (recovering or unreachable); verify again shortly")
        return urls

    def _watermark_ms(self, source: str) -> int:
        return watermark_ms(self._get(self.api_url, "/health")["sources"].get(source, {}))

    def _wait_processed(self, source: str, snapshot_ms: int) -> None:
        deadline = time.monotonic() + self.wait_s
        while self._watermark_ms(source) < snapshot_ms:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{source}'s watermark did not pass the snapshot within {self.wait_s}s")
            time.sleep(0.5)

    # ---- one entity type ---------------------------------------------------------------------------

    def _source_sums(self, conn, schema: str, table: str, spec, level: int, within: tuple[int, set[int]] | None,
                     since) -> dict[int, tuple[int, int]]:
        query = verify_sql.sums_query(schema, table, spec, level, None if within is None else within[0])
        params = [*verify_sql.since_params(spec, since)]
        if within is not None:
            params.append(sorted(within[1]))
        return {r["b"]: (r["count"], int(r["sum"])) for r in conn.execute(query, params)}

    def _trueup_sums(self, workers: list[str], entity_type: str, level: int, wanted: set[int] | None,
                     snapshot_ms: int, since_ms: int | None) -> tuple[dict[int, tuple[int, int]], set[int]]:
        parts, newer = [], set()
        for url in workers:
            params = {"entity_type": entity_type, "bucket_count": level, "newer_than_ms": snapshot_ms,
                      "since_ms": since_ms}
            if wanted is not None:
                params["buckets"] = ",".join(map(str, sorted(wanted)))
            body = self._get(url, "/verify/sums", params)
            parts.append({int(b): tuple(v) for b, v in body["buckets"].items()})
            newer |= set(body["newer"])
        return merge_sums(parts), newer

    def check(self, entity_type: str, summary: Summary, since: datetime | None = None) -> list[dict]:
        """Drift of one entity type: bucket sums, bisection of the suspect buckets, rows of the last ones."""
        source, table, spec = self.specs[entity_type]
        schema = self.mapping.sources[source].schema_
        system = self.mapping.sources[source].system
        summary.tables.append(f"{source}.{table}")
        since_ms = None if since is None else int(since.timestamp() * 1000)
        with psycopg.connect(self.dsns[source], row_factory=dict_row) as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            # The first statement fixes the snapshot; its time is what trueup must have processed.
            snapshot_ms = conn.execute("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS t"
                                       ).fetchone()["t"]
            self.progress(f"{entity_type}: waiting for {source}'s watermark to pass the snapshot")
            waiting = time.monotonic()
            self._wait_processed(source, snapshot_ms)
            summary.waited_s += time.monotonic() - waiting
            self.progress(f"{entity_type}: bucket checksums")
            workers = self._workers()
            level = self.buckets
            src = self._source_sums(conn, schema, table, spec, level, None, since)
            mine, newer = self._trueup_sums(workers, entity_type, level, None, snapshot_ms, since_ms)
            summary.rows_checked += sum(c for c, _ in src.values())
            summary.buckets += level
            suspects = differing(src, mine) | newer
            summary.buckets_differing += len(suspects)
            # Bisect while the suspects hold more rows than a row-level look should fetch.
            while suspects and level < FINE_BUCKETS and since is None and \
                    sum(max(src.get(b, (0, 0))[0], mine.get(b, (0, 0))[0]) for b in suspects) > ROW_LEVEL_ROWS:
                finer = min(level * BISECT_FACTOR, FINE_BUCKETS)
                self.progress(f"{entity_type}: {len(suspects)} bucket(s) differ; splitting them {finer // level} ways")
                wanted = split(suspects, level, finer)
                src = self._source_sums(conn, schema, table, spec, finer, (level, suspects), since)
                mine, newer = self._trueup_sums(workers, entity_type, finer, wanted, snapshot_ms, since_ms)
                suspects, level = (differing(src, mine) | newer) & wanted, finer
                summary.bisections += 1
            if not suspects:
                return []
            self.progress(f"{entity_type}: comparing the rows of {len(suspects)} bucket(s)")
            suspect_list = sorted(suspects)
            source_rows: dict[str, tuple[int, dict]] = {}
            last = ""
            while True:
                page = conn.execute(verify_sql.rows_query(schema, table, spec, level),
                                    [*verify_sql.since_params(spec, since), suspect_list, last, PAGE]).fetchall()
                for r in page:
                    source_rows[r["id"]] = (r["h"], {c: r[c] for c in spec.columns})
                summary.rows_fetched_row_level += len(page)
                if len(page) < PAGE:
                    break
                last = page[-1]["id"]
        trueup_rows: dict[str, list] = {}
        for url in workers:
            body = self._get(url, "/verify/rows", {"entity_type": entity_type, "bucket_count": level,
                                                    "buckets": ",".join(map(str, suspect_list)), "since_ms": since_ms})
            trueup_rows.update(body["rows"])
        kinds = classify({k: h for k, (h, _) in source_rows.items()},
                         {k: (v[0], v[1]) for k, v in trueup_rows.items()}, snapshot_ms)
        return [{"entity_type": entity_type, "entity_id": key, "kind": kind, "system": system, "source": source,
                 "table": table, "snapshot_ms": snapshot_ms,
                 "source_values": to_json(source_rows[key][1]) if key in source_rows else None,
                 "trueup_values": trueup_rows[key][2] if key in trueup_rows else None}
                for key, kind in sorted(kinds.items())]

    # ---- drift as findings, and repairs --------------------------------------------------------------

    def report(self, drift: list[dict], checked_types: set[str], producer: Producer) -> int:
        """Send each drift to its VFY bucket; retract findings of checked entities that are clean now."""
        now_ms = int(time.time() * 1000)
        topic = links_topic(self.settings.worker.app_id)
        drifted = set()
        for d in drift:
            bucket = f"VFY|{d['entity_type']}:{d['entity_id']}"
            drifted.add((d["entity_type"], d["entity_id"]))
            data = {"kind": d["kind"], "system": d["system"], "table": d["table"], "snapshot_ms": d["snapshot_ms"],
                    "source": d["source_values"], "trueup": d["trueup_values"]}
            producer.produce(topic, key=bucket.encode(),
                             value=pickling.dumps(Message(bucket, ("drift", "verify"), [now_ms], data=data)))
        resolved = 0
        cursor = None
        while True:
            page = self._get(self.api_url, "/alerts", {"rule": "state_drift", "status": "open", "limit": 1000,
                                                        "cursor": cursor})
            for alert in page["items"]:
                if alert["entity_type"] in checked_types and (alert["entity_type"], alert["entity_id"]) not in drifted:
                    bucket = f"VFY|{alert['entity_type']}:{alert['entity_id']}"
                    producer.produce(topic, key=bucket.encode(), value=pickling.dumps(
                        Message(bucket, ("drift", "verify"), [now_ms], deleted=True)))
                    resolved += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        if producer.flush(30):
            raise RuntimeError("drift findings not acknowledged by Kafka")
        return resolved

    def repair(self, source: str, drift: list[dict], producer: Producer, audit_path: Path) -> int:
        """Re-read each drifted row of one source now and send it down the normal path as a repair record."""
        audit_path.parent.mkdir(parents=True, exist_ok=True)
        source_spec = self.mapping.sources[source]
        with audit_path.open("a") as audit, psycopg.connect(self.dsns[source], row_factory=dict_row) as conn:
            for d in drift:
                _, table, spec = self.specs[d["entity_type"]]
                key_values = dict(zip(spec.key, d["entity_id"].split("|")))
                where = sql.SQL(" AND ").join(sql.SQL("{}::text = %s").format(sql.Identifier(k)) for k in spec.key)
                row = conn.execute(sql.SQL("SELECT * FROM {}.{} WHERE {}").format(
                    sql.Identifier(source_spec.schema_), sql.Identifier(table), where),
                    list(key_values.values())).fetchone()
                seq = int(time.time() * 1_000_000)
                value = {"before": key_values if row is None else None,
                         "after": None if row is None else {k: debezium_value(v) for k, v in row.items()},
                         "source": {"version": "trueup", "connector": REPAIR_CONNECTOR, "name": source,
                                    "db": conn.info.dbname, "schema": source_spec.schema_, "table": table,
                                    "ts_ms": seq // 1000, "snapshot": "false", "repair_seq": seq,
                                    "reason": d["kind"]},
                         "op": "d" if row is None else "r", "ts_ms": seq // 1000}
                producer.produce(source_spec.topic(table), key=record_key(spec.key, row or key_values),
                                 value=encode(value))
                audit.write(json.dumps({"at": datetime.now(timezone.utc).isoformat(), "entity_type": d["entity_type"],
                                        "entity_id": d["entity_id"], "why": d["kind"], "before": d["trueup_values"],
                                        "after": None if row is None else to_json(row)}) + "\n")
        if producer.flush(30):
            raise RuntimeError("repair records not acknowledged by Kafka")
        return len(drift)

    def run(self, systems: set[str] | None = None, entities: set[str] | None = None, repair: bool = False,
            audit_path: Path | None = None, since: datetime | None = None) -> Summary:
        started = time.monotonic()
        summary = Summary()
        chosen = [e for e, (source, _, _) in sorted(self.specs.items())
                  if self.settings.has_database(source)
                  and (not systems or self.mapping.sources[source].system in systems)
                  and (not entities or e in entities)]
        for done, entity_type in enumerate(chosen):
            self.tables_done = (done, len(chosen))
            summary.drift += self.check(entity_type, summary, since)
        self.tables_done = (len(chosen), len(chosen))
        self.progress("reporting drift")
        # Murmur2 like Kafka Connect and Faust: repairs land in their row's raw partition, findings in the
        # links partition that owns their bucket.
        producer = kafka_producer(self.bootstrap, 5)
        summary.resolved = self.report(summary.drift, set(chosen), producer)
        if repair and summary.drift:
            for source in sorted({d["source"] for d in summary.drift}):
                mine = [d for d in summary.drift if d["source"] == source]
                summary.repaired += self.repair(source, mine, producer, audit_path or Path("repairs.jsonl"))
        summary.elapsed_s = time.monotonic() - started
        return summary
