"""Snapshot: N rows in a source table before the connectors start, timed until the pipeline has them all.

The clock starts when the connectors start (the rows arrive by Debezium's initial snapshot) and stops when
the workers have consumed every row between them and the group's lag (true end offsets) is zero on every
topic it reads: end to end, connector and pipeline together. Each worker counts only its own partitions, so
the counts of every worker are summed; each reports the group's lag, so each must read zero.
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


def measure(stack, rows: int, echo=print, workers: int = 1, token: str | None = None,
            timeout_s: float | None = None) -> dict:
    """Time the snapshot; fails when a worker exits or the rows are not all in by timeout_s (default: at
    least 600 s, 50 rows/s over more)."""
    timeout_s = timeout_s or max(600.0, rows / 50)
    marks: dict[str, float] = {}

    def before_connectors(stack, state) -> None:
        echo(f"snapshot: loading {rows} CRM accounts before the connectors start")
        load_accounts(stack.dsn("crm", state), rows)
        marks["connectors_start"] = time.monotonic()

    stack.up(workers=workers, before_connectors=before_connectors)
    marks["up"] = time.monotonic()
    urls = [c["url"] for c in stack.status()["components"] if c["name"].startswith("worker-")]
    checked = time.monotonic()
    while not _all_counted(urls, rows, token):
        if time.monotonic() - marks["connectors_start"] > timeout_s:
            raise RuntimeError(f"snapshot of {rows} rows not through the pipeline within {timeout_s:.0f}s")
        if time.monotonic() - checked > 10:
            checked = time.monotonic()
            for comp in stack.status()["components"]:
                if comp["name"].startswith("worker-") and comp["state"] == "failed":
                    raise RuntimeError(f"{comp['name']} exited during the snapshot; see {comp['log']}")
        time.sleep(0.5)
    done = time.monotonic()
    elapsed = done - marks["connectors_start"]
    return {"rows": rows, "elapsed_s": round(elapsed, 2), "rows_per_s": round(rows / elapsed, 1),
            "connector_snapshot_and_start_s": round(marks["up"] - marks["connectors_start"], 2),
            "workers": workers, "target_rows_per_s": 8000}


def _all_counted(urls: list[str], rows: int, token: str | None) -> bool:
    """The workers' counts add up to every row, and each reads the group's lag as zero."""
    counted = 0
    for url in urls:
        metrics = scrape_topic_metrics(url + "/metrics", token)
        # Heartbeat topics never stay drained while connectors run; the data and links topics must.
        lag = {t: v for t, v in metrics.get("trueup_consumer_lag", {}).items() if "heartbeat" not in t}
        if not lag or any(v != 0 for v in lag.values()):
            return False
        counted += _accounts_counted(url, token)
    return counted >= rows


def _accounts_counted(api: str, token: str | None) -> int:
    try:
        rows = fetch(api, "/counts", None, token, timeout_s=5)["tables"]
    except QueryError:
        return 0
    return sum(r["changes"] for r in rows if r["source"] == "crm" and r["table"] == "accounts")
