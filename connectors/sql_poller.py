"""`trueup connect poll-sql`: a table source without logical replication, polled with CDC semantics.

Incremental by the (updated column, key) watermark like a JDBC source connector in timestamp+incrementing
mode, re-reading a lookback window so rows committed late with an older change time are not missed (re-read
rows carry the same position and are dropped downstream as duplicates). Deletes come from a soft-delete column
where the table has one, otherwise from a periodic key-set comparison. The cursor lives in Kafka and moves only
after the records it covers are acknowledged; the keys known to exist are rebuilt from the poller's own raw
topics at start. Database errors back off with jitter and are counted in status; the poller never exits on them.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from connectors.poll_config import SqlPollConfig
from connectors.poll_envelopes import debezium_value, encode, envelope, record_key
from connectors.poller_base import PollerBase, backoff_s
from connectors.status import StatusWriter
from state.topic_end import read_to_end
from streams.mapping import Mapping

log = logging.getLogger(__name__)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class SqlPoller(PollerBase):
    def __init__(self, config: SqlPollConfig, mapping: Mapping, dsn: str, bootstrap: str, cursor_topic: str,
                 work_dir: Path, linger_ms: int = 5) -> None:
        super().__init__("poll-sql", config.source, config.tables, mapping, bootstrap, cursor_topic, work_dir,
                         linger_ms)
        self.config, self.dsn = config, dsn
        self.positions: dict[str, dict] = {}
        self.known: dict[str, set[tuple]] = {t: set() for t in config.tables}
        self._last_keyset = 0.0
        self._tokens = config.max_rows_per_s
        self._token_at = time.monotonic()

    # ---- start ---------------------------------------------------------------------------------

    def _resume(self) -> None:
        self.positions = self.cursors.load()
        # Keys alive as far as downstream knows: the last record per key on our own raw topics.
        for table in self.config.tables:
            topic = self.spec.topic(table)
            alive: dict[bytes, bool] = {}
            for rec in read_to_end(self.bootstrap, [topic], idle_s=0.5):
                if rec.key is not None and rec.value is not None:
                    alive[rec.key] = json.loads(rec.value).get("op") != "d"
            key_columns = self.spec.tables[table].key
            self.known[table] = {tuple(json.loads(k)[c] for c in key_columns) for k, live in alive.items() if live}
        for table, cursor in self.positions.items():
            self.status.cursors[table] = cursor.get("at")

    # ---- polling -------------------------------------------------------------------------------

    def _throttle(self, rows: int) -> None:
        """Token bucket: at most max_rows_per_s on average."""
        rate = self.config.max_rows_per_s
        now = time.monotonic()
        self._tokens = min(rate, self._tokens + (now - self._token_at) * rate) - rows
        self._token_at = now
        if self._tokens < 0:
            time.sleep(-self._tokens / rate)

    def _select(self, table: str, after: tuple | None, floor: datetime):
        spec, cfg = self.spec.tables[table], self.config.tables[table]
        updated = sql.Identifier(cfg.updated_column)
        keys = [sql.Identifier(k) for k in spec.key]
        order = sql.SQL(", ").join([updated, *keys])
        base = sql.SQL("SELECT * FROM {}.{}").format(sql.Identifier(self.spec.schema_), sql.Identifier(table))
        if after is None:
            where, params = sql.SQL("{} >= %s").format(updated), [floor]
        else:
            where = sql.SQL("({}) > ({})").format(order, sql.SQL(", ").join(sql.Placeholder() * len(after)))
            params = list(after)
        return sql.SQL("{} WHERE {} ORDER BY {} LIMIT %s").format(base, where, order), [*params,
                                                                                        self.config.page_size]

    def poll_table(self, conn: psycopg.Connection, table: str) -> int:
        """One pass over the table from its cursor (minus the lookback); returns rows emitted."""
        spec, cfg = self.spec.tables[table], self.config.tables[table]
        topic = self.spec.topic(table)
        cursor = self.positions.get(table)
        start = datetime.fromisoformat(cursor["at"]) if cursor else EPOCH
        floor = max(EPOCH, start - timedelta(seconds=self.config.lookback_s))
        after: tuple | None = None
        emitted = 0
        while not self.stop.is_set():
            query, params = self._select(table, after, floor)
            rows = conn.execute(query, params).fetchall()
            if not rows:
                break
            newest = start
            for row in rows:
                changed = row[cfg.updated_column]
                key = tuple(row[k] for k in spec.key)
                deleted = cfg.soft_delete_column is not None and row.get(cfg.soft_delete_column) is not None
                op = "d" if deleted else ("u" if key in self.known[table] else "r")
                value = envelope(self.config.source, conn.info.dbname, self.spec.schema_, table, op,
                                 row if deleted else None, None if deleted else row, changed, 0,
                                 int(time.time() * 1000))
                self.producer.produce(topic, record_key(spec.key, row), encode(value))
                (self.known[table].discard if deleted else self.known[table].add)(key)
                newest = max(newest, changed)
                emitted += 1
            conn.commit()
            after = tuple(rows[-1][c] for c in [cfg.updated_column, *spec.key])
            # Only after every record above is acknowledged does the cursor move past them.
            self.positions[table] = {"at": newest.isoformat(), "key": [debezium_value(v) for v in after[1:]]}
            self.cursors.commit(table, self.positions[table])
            self.status.cursors[table] = self.positions[table]["at"]
            self._throttle(len(rows))
            if len(rows) < self.config.page_size:
                break
        return emitted

    def find_deletes(self, conn: psycopg.Connection, table: str) -> int:
        """Keys known to exist that the table no longer has become delete records."""
        spec = self.spec.tables[table]
        keys = sql.SQL(", ").join(sql.Identifier(k) for k in spec.key)
        query = sql.SQL("SELECT {} FROM {}.{}").format(keys, sql.Identifier(self.spec.schema_), sql.Identifier(table))
        present: set[tuple] = set()
        with conn.cursor(name=f"keyset_{table}") as cur:  # server-side: a large table streams in batches
            cur.itersize = 10_000
            cur.execute(query)
            for row in cur:
                present.add(tuple(row[k] for k in spec.key))
        conn.commit()
        vanished = self.known[table] - present
        now = datetime.now(timezone.utc)
        for key in sorted(vanished, key=str):
            before = dict(zip(spec.key, key))
            value = envelope(self.config.source, conn.info.dbname, self.spec.schema_, table, "d", before, None, now,
                             1, int(time.time() * 1000))
            self.producer.produce(self.spec.topic(table), record_key(spec.key, before), encode(value))
        if vanished:
            self.producer.flush(30.0, "delete records")
            self.known[table] -= vanished
        return len(vanished)

    def cycle(self, conn: psycopg.Connection) -> int:
        started = conn.execute("SELECT now()").fetchone()["now"]
        conn.commit()
        rows = sum(self.poll_table(conn, table) for table in self.config.tables)
        if time.monotonic() - self._last_keyset >= self.config.keyset_every_s:
            rows += sum(self.find_deletes(conn, t) for t in self.config.tables
                        if self.config.tables[t].soft_delete_column is None)
            self._last_keyset = time.monotonic()
        # Rows committed later than the cycle's start minus the lookback can still appear with older times. A
        # stop may have left a table unread to its end: a heartbeat then would cover rows not read.
        self.status.records += rows
        if not self.stop.is_set():
            self.emit_heartbeat(conn.info.dbname, started - timedelta(seconds=self.config.lookback_s))
            self.status.last_poll_at, self.status.rows_per_poll = time.time(), rows
            self.status.last_event_time_ms = int(started.timestamp() * 1000)
        return rows

    # ---- run -----------------------------------------------------------------------------------

    def run(self) -> int:
        writer = StatusWriter(self.status, self.status_path)
        writer.start()
        attempt = 0
        conn: psycopg.Connection | None = None
        try:
            self._resume()
            while not self.stop.is_set():
                try:
                    if conn is None or conn.closed:
                        conn = psycopg.connect(self.dsn, row_factory=dict_row, connect_timeout=5)
                    self.cycle(conn)
                    self.status.phase, self.status.error, attempt = "streaming", None, 0
                    self.stop.wait(self.config.interval_s)
                except (psycopg.Error, TimeoutError, OSError) as exc:
                    attempt += 1
                    self.failed(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}")
                    log.warning("poll failed (attempt %d): %s", attempt, self.status.error)
                    if conn is not None:
                        conn.close()
                    conn = None
                    self.stop.wait(backoff_s(attempt, 30.0, self.rng))
            self.status.phase = "stopped"
            return 0
        finally:
            if conn is not None:
                conn.close()
            writer.close()
