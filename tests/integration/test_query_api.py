"""The live query API on a real two-worker stack with a bearer token (its own stack).

Every key is answered the same by either worker; paging gathers every open alert exactly once although
both workers own some; live responses validate against /openapi.json; bad, malformed and oversized input
gets 400 (404 for unknown types and keys), never a 500 or a stack trace. Oracles come from SQL and from the
alert topic, not from the API's own code.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request

import jsonschema
import psycopg
import pytest

from tests import alert_support as support
from tests import fault_support
from tests.canonical import wait_until
from tests.stack_support import running_stack
from trueup.simulator import Simulator

pytestmark = pytest.mark.integration

TOKEN = "query-api-test-token-7f3a"


def call(url: str, token: str | None = TOKEN) -> tuple[int, dict | str, dict]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=20) as resp:
            body = resp.read().decode()
            status, headers = resp.status, dict(resp.headers)
    except urllib.error.HTTPError as exc:
        body, status, headers = exc.read().decode(), exc.code, dict(exc.headers)
    try:
        return status, json.loads(body), headers
    except ValueError:
        return status, body, headers


def workers(stack) -> list[str]:
    return [c["url"] for c in stack.status()["components"] if c["name"].startswith("worker")]


def validator(doc: dict, name: str):
    schema = {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
    return jsonschema.Draft202012Validator(schema)


@pytest.fixture(scope="module")
def api_stack(tmp_path_factory):
    with running_stack("query", workers=2, env={"TRUEUP_API__TOKEN": TOKEN}) as stack:
        support.wait_caught_up(stack, 0, TOKEN)
        dsns = stack.status()["postgres"]
        truth = tmp_path_factory.mktemp("truth") / "truth.json"
        Simulator(dsns, rate=40.0, duration_s=15.0, seed=6066, faults=0.5, ground_truth=truth).run()
        expected = support.expected_alerts(json.loads(truth.read_text()))
        support.assert_sources_hold(dsns, expected)
        support.wait_caught_up(stack, int(time.time() * 1000) + support.largest_sla_ms(), TOKEN)
        bootstrap = stack.status()["kafka"]["bootstrap"]
        wait_until(lambda: support.latest(support.alert_records(bootstrap)), lambda got: set(got) >= expected, 60,
                   "the injected faults' alerts")
        yield stack


def _ids(dsn: str, sql: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        return [row[0] for row in conn.execute(sql)]


def test_every_key_is_answered_the_same_by_either_worker(api_stack):
    w0, w1 = workers(api_stack)
    dsns = api_stack.status()["postgres"]
    keys = [("entities/invoice", i) for i in _ids(dsns["billing"], "SELECT id FROM invoices ORDER BY id")]
    keys += [("entities/sales_order", i) for i in _ids(dsns["erp"], "SELECT order_no FROM sales_orders ORDER BY 1")]
    keys += [("entities/account", i) for i in _ids(dsns["crm"], "SELECT id FROM accounts ORDER BY id")]
    keys += [("projections/invoice", i) for i in _ids(dsns["billing"], "SELECT id FROM invoices ORDER BY id")]
    keys += [("projections/account", i) for i in _ids(dsns["crm"], "SELECT id FROM accounts ORDER BY id")]
    keys += [("projections/quote_to_cash", i) for i in _ids(
        dsns["crm"], "SELECT id FROM opportunities WHERE stage = 'closed_won' ORDER BY id")]
    assert len(keys) > 100
    amounts = dict(_ids_amounts(dsns["billing"]))
    invoices = fault_support.invoice_oracle(dsns["billing"])  # corrected status and net paid, by SQL
    served_by = {0: 0, 1: 0}
    for path, key in keys:
        url = f"/{path}/{urllib.parse.quote(key, safe='')}"
        s0, b0, _ = call(w0 + url)
        s1, b1, _ = call(w1 + url)
        assert (s0, s1) == (200, 200), (url, b0, b1)
        assert b0 == b1, url
        if path == "entities/invoice":
            assert b0["fields"]["amount_due"]["amount"] == amounts[key], key
        elif path == "projections/invoice":
            assert fault_support.projection_problems(b0, invoices[key]) == [], key
    # Both workers own keys: a local-only alert page is non-empty on each.
    for index, base in enumerate((w0, w1)):
        status, body, _ = call(base + "/alerts?scope=local&limit=1000")
        assert status == 200
        served_by[index] = len(body["items"])
    assert served_by[0] > 0 and served_by[1] > 0, served_by
    assert call(w0 + "/entities/invoice/in_never_written")[0] == 404
    assert call(w1 + "/projections/quote_to_cash/OPP-never")[0] == 404


def _ids_amounts(dsn: str) -> list[tuple[str, str]]:
    with psycopg.connect(dsn) as conn:
        return [(i, str(a)) for i, a in conn.execute("SELECT id, amount_due FROM invoices")]


def test_paging_returns_every_open_alert_exactly_once_from_either_worker(api_stack):
    bootstrap = api_stack.status()["kafka"]["bootstrap"]
    open_in_topic = {"|".join(k) for k, r in support.latest(support.alert_records(bootstrap)).items()
                     if r["status"] == "open"}
    assert len(open_in_topic) > 5
    for base in workers(api_stack):
        seen, cursor, pages = [], None, 0
        while True:
            query = {"status": "open", "limit": "4", **({"cursor": cursor} if cursor else {})}
            status, body, _ = call(f"{base}/alerts?{urllib.parse.urlencode(query)}")
            assert status == 200, body
            assert len(body["items"]) <= 4
            seen += [item["key"] for item in body["items"]]
            pages += 1
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == len(set(seen)), "an alert came twice"
        assert set(seen) == open_in_topic and pages >= 2
        ordered = [(i["first_seen"], i["key"]) for i in _all(base)]
        assert ordered == sorted(ordered)


def _all(base: str) -> list[dict]:
    status, body, _ = call(f"{base}/alerts?limit=1000")
    assert status == 200 and body["next_cursor"] is None
    return body["items"]


def test_live_responses_validate_against_the_openapi_document(api_stack):
    w0, w1 = workers(api_stack)
    status, doc, _ = call(w0 + "/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.1")
    invoice = _all(w0)[0]["entity_id"] if _all(w0)[0]["entity_type"] == "invoice" else None
    invoice = invoice or _ids(api_stack.status()["postgres"]["billing"], "SELECT id FROM invoices LIMIT 1")[0]
    checks = [
        (f"/entities/invoice/{invoice}", 200, "Entity"),
        (f"/projections/invoice/{invoice}", 200, "Projection"),
        ("/alerts?limit=3", 200, "AlertPage"),
        ("/alerts?status=resolved&severity=critical&entity_type=invoice&rule=posting_mismatch", 200, "AlertPage"),
        ("/health", 200, "Health"),
        ("/health?scope=local", 200, "Health"),
        ("/counts", 200, "Counts"),
        ("/verify/sums?entity_type=invoice&bucket_count=16", 200, "VerifySums"),
        ("/verify/rows?entity_type=invoice&bucket_count=16&buckets=0,3", 200, "VerifyRows"),
        ("/verify/sums?entity_type=lead", 400, "Error"),
        ("/alerts?limit=5000", 400, "Error"),
        ("/entities/lead/x", 404, "Error"),
        ("/entities/invoice/no_such_invoice", 404, "Error"),
    ]
    for base in (w0, w1):
        for path, want, schema in checks:
            got, body, _ = call(base + path)
            assert got == want, (path, body)
            validator(doc, schema).validate(body)
        got, body, _ = call(base + "/health", token=None)
        assert got == 401
        validator(doc, "Error").validate(body)
    # Every documented path is served (not the router's 404), and every served route is documented.
    for path in doc["paths"]:
        concrete = path.replace("{entity_type}", "invoice").replace("{name}", "invoice")
        concrete = concrete.replace("{entity_id}", invoice).replace("{projection_id}", invoice)
        if path.startswith("/verify/"):
            concrete += "?entity_type=invoice&buckets=1,2"
        got, body, _ = call(w0 + concrete)
        assert got == 200, (path, body)
    assert call(w0 + "/table/")[0] == 404 and call(w0 + "/router/")[0] == 404


@pytest.mark.parametrize("path", [
    "/alerts?limit=0", "/alerts?limit=-1", "/alerts?limit=1001", "/alerts?limit=1e3", "/alerts?limit=" + "9" * 5000,
    "/alerts?status=OPEN", "/alerts?severity=%00", "/alerts?rule=" + "r" * 3000, "/alerts?entity_type=lead",
    "/alerts?cursor=not-a-cursor", "/alerts?cursor=" + "A" * 4000, "/alerts?status=open&status=resolved",
    "/alerts?surprise=1", "/health?scope=everything", "/health?x=1",
    "/entities/invoice/" + "x" * 300, "/entities/invoice/%00", "/entities/invoice/a%0Ab",
    "/projections/invoice/" + "%F0%9F%92%A5" * 300, "/entities/invoice/" + "x" * 9000,
])
def test_malformed_and_oversized_inputs_get_400_never_500(api_stack, path):
    for base in workers(api_stack):
        status, body, _ = call(base + path)
        assert status == 400, (path, status, body)
        assert "Traceback" not in str(body)
        if isinstance(body, dict) and "/entities/invoice/" + "x" * 9000 != path:
            assert body["error"] and body.get("parameter")


def test_a_wrong_token_is_refused_everywhere(api_stack):
    for base in workers(api_stack):
        for path in ("/alerts", "/entities/invoice/x", "/metrics", "/openapi.json", "/"):
            status, body, _ = call(base + path, token="wrong")
            assert status == 401 and body == {"error": "a valid bearer token is required"}


def test_the_query_cli_prints_tables_and_json(api_stack):
    import os
    import subprocess
    import sys

    env = dict(os.environ, TRUEUP_DATA_DIR=str(api_stack.data_dir), TRUEUP_API__TOKEN=TOKEN)
    w1 = workers(api_stack)[1]

    def trueup(*args):
        out = subprocess.run([sys.executable, "-m", "trueup.cli", "query", *args], env=env, capture_output=True,
                             text=True, timeout=60)
        return out.returncode, out.stdout, out.stderr

    code, out, err = trueup("alerts", "--status", "open", "--limit", "2", "--json")
    assert code == 0, err
    page = json.loads(out)
    assert len(page["items"]) == 2 and page["next_cursor"]
    code, out, _ = trueup("alerts", "--status", "open", "--limit", "2")
    assert code == 0 and page["items"][0]["rule_id"] in out and "more: --cursor" in out
    invoice = _ids(api_stack.status()["postgres"]["billing"], "SELECT id FROM invoices ORDER BY id LIMIT 1")[0]
    code, out, _ = trueup("entity", "invoice", invoice, "--url", w1)
    assert code == 0 and "amount_due" in out and invoice in out
    code, out, _ = trueup("projection", "invoice", invoice, "--json")
    assert code == 0 and json.loads(out)["id"] == invoice
    code, out, _ = trueup("health")
    assert code == 0 and "crm" in out and "billing" in out and "workers" in out
    code, _, err = trueup("entity", "invoice", "in_not_there")
    assert code != 0 and "404: no invoice in_not_there" in err
