"""Measure `trueup verify` on a large clean table: rows/s and rows fetched row by row (expected 0).

Usage: python tools/measure_verify.py [ROWS]   (default 1,000,000; needs the machine's PostgreSQL and Java)
Starts its own stack, loads ROWS CRM accounts before the connectors start (they arrive by Debezium's
snapshot), waits until the worker has them all and every watermark has passed, then times a clean verify
of the account table. Prints JSON.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402

from streams.mapping import load_mapping  # noqa: E402
from tests.alert_support import get_json, wait_caught_up  # noqa: E402
from tests.stack_support import running_stack  # noqa: E402
from trueup.settings import load_settings  # noqa: E402
from trueup.verify import Verifier  # noqa: E402


def main(rows: int) -> None:
    def load(stack, state) -> None:
        with psycopg.connect(stack.dsn("crm", state), autocommit=True) as conn:
            conn.execute("INSERT INTO accounts (id, name, domain, country, status) SELECT 'ACC-M' || g, "
                         "'Company ' || g, 'm' || g || '.example', 'DE', 'active' FROM generate_series(1, %s) g",
                         (rows,))

    t0 = time.monotonic()
    with running_stack("verify-1m", before_connectors=load) as stack:
        status = stack.status()
        api = status["api"]["url"]
        loaded = time.monotonic()
        while True:  # until the worker holds every account
            counts = {r["table"]: r["changes"] for r in get_json(api + "/counts")["tables"] if r["source"] == "crm"}
            if counts.get("accounts", 0) >= rows:
                break
            time.sleep(5)
        counted = time.monotonic()
        # Everything through the joins too, so the verify timed below waits for no backlog.
        wait_caught_up(stack, int(time.time() * 1000), timeout_s=3600)
        ingested = time.monotonic()
        settings = load_settings()
        verifier = Verifier(settings, load_mapping(settings.mapping), api, status["postgres"],
                            status["kafka"]["bootstrap"])
        summary = verifier.run(entities={"account"})
        print(json.dumps({"rows": rows, "stack_up_s": round(loaded - t0, 1),
                          "normalized_s": round(counted - loaded, 1), "ingest_s": round(ingested - loaded, 1),
                          "ingest_rows_per_s": round(rows / (ingested - loaded), 1),
                          "verify": summary.as_dict()}, indent=2))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
