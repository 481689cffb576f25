"""Snapshot: N rows in a source table before the connectors start, timed until the pipeline has them all.

The clock starts when the connectors start (the rows arrive by Debezium's initial snapshot) and stops when
the workers have consumed every row between them and each one's lag (true end offsets) is zero on every topic
it reads: end to end, connector and pipeline together. Each worker counts only its own partitions, so the
counts of every worker are summed.
"""

from __future__ import annotations

import time

import psycopg

from trueup.bench.throughput import scrape_topic_metrics
from trueup.query import QueryError, fetch


def load_accounts(dsn: str, rows: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO accounts (id, name, domain, country, status) SELECT 'ACC-B' || g, "
                     "'Company ' || g, 'b' || g || '.example', 'DE', 'active' FROM generate_series(1, %s) g",
                     (rows,))


def measure(stack, rows: int, echo=print, workers: int = 1) -> dict:
    marks: dict[str, float] = {}

    def before_connectors(stack, state) -> None:
        echo(f"snapshot: loading {rows} CRM accounts before the connectors start")
        load_accounts(stack.dsn("crm", state), rows)
        marks["connectors_start"] = time.monotonic()

    stack.up(workers=workers, before_connectors=before_connectors)
    marks["up"] = time.monotonic()
    urls = [c["url"] for c in stack.status()["components"] if c["name"].startswith("worker-")]
    while not _all_counted(urls, rows):
        time.sleep(0.5)
    done = time.monotonic()
    elapsed = done - marks["connectors_start"]
    return {"rows": rows, "elapsed_s": round(elapsed, 2), "rows_per_s": round(rows / elapsed, 1),
            "connector_snapshot_and_start_s": round(marks["up"] - marks["connectors_start"], 2),
            "workers": workers, "target_rows_per_s": 8000}


def _all_counted(urls: list[str], rows: int) -> bool:
    """The workers' counts add up to every row, and none of them has a record left to read."""
    counted = 0
    for url in urls:
        # Heartbeat topics never stay drained while connectors run; the data and links topics must.
        lag = {t: v for t, v in scrape_topic_metrics(url + "/metrics").get("trueup_consumer_lag", {}).items()
               if "heartbeat" not in t}
        if not lag or any(v != 0 for v in lag.values()):
            return False
        counted += _accounts_counted(url)
    return counted >= rows


def _accounts_counted(api: str) -> int:
    try:
        rows = fetch(api, "/counts", None, None, timeout_s=5)["tables"]
    except QueryError:
        return 0
    return sum(r["changes"] for r in rows if r["source"] == "crm" and r["table"] == "accounts")
