"""Snapshot: N rows in a source table before the connectors start, timed until the pipeline has them all.

The clock starts when the connectors start (the rows arrive by Debezium's initial snapshot) and stops when
the worker has consumed every row and the group's lag (true end offsets) is zero on every topic it reads:
end to end, connector and pipeline together.
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


def measure(stack, rows: int, echo=print) -> dict:
    marks: dict[str, float] = {}

    def before_connectors(stack, state) -> None:
        echo(f"snapshot: loading {rows} CRM accounts before the connectors start")
        load_accounts(stack.dsn("crm", state), rows)
        marks["connectors_start"] = time.monotonic()

    stack.up(workers=1, before_connectors=before_connectors)
    marks["up"] = time.monotonic()
    api = stack.status()["api"]["url"]
    while True:
        metrics = scrape_topic_metrics(api + "/metrics")
        counted = _accounts_counted(api)
        # Heartbeat topics never stay drained while connectors run; the data and links topics must.
        lag = {t: v for t, v in metrics.get("trueup_consumer_lag", {}).items() if "heartbeat" not in t}
        if counted >= rows and lag and all(v == 0 for v in lag.values()):
            break
        time.sleep(0.5)
    done = time.monotonic()
    elapsed = done - marks["connectors_start"]
    return {"rows": rows, "elapsed_s": round(elapsed, 2), "rows_per_s": round(rows / elapsed, 1),
            "connector_snapshot_and_start_s": round(marks["up"] - marks["connectors_start"], 2),
            "target_rows_per_s": 8000}


def _accounts_counted(api: str) -> int:
    try:
        rows = fetch(api, "/counts", None, None, timeout_s=5)["tables"]
    except QueryError:
        return 0
    return sum(r["changes"] for r in rows if r["source"] == "crm" and r["table"] == "accounts")
