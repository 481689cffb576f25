"""The simulator against real PostgreSQL: what it writes satisfies the schemas, every injected fault is
visible in the data, the data holds exactly the ground truth's inconsistencies and no others (checked by
an independent oracle of the rules written here in SQL and plain Python), healthy journeys are consistent,
and fix() removes each kind of fault without introducing another.

One private cluster for the module (the project's own helper), stopped and deleted at the end.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
from collections import defaultdict

import psycopg
import pytest

from tests.rules_oracle import TABLES, load, net_paid, oracle
from trueup.simulator import FAULT_KINDS, Simulator, SimulatorError, fix
from trueup.stack.postgres import PrivateCluster, apply_schema, cluster_home, new_password
from trueup.stack.processes import free_port

pytestmark = pytest.mark.integration

SEED = 11


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    home = cluster_home(tmp_path_factory.mktemp("simulator-pg"))
    pg = PrivateCluster(home=home, port=free_port(), user="trueup", password=new_password())
    try:
        pg.init()
        pg.start()
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(home, ignore_errors=True)
    assert not pg.running()


def databases(pg: PrivateCluster, suffix: str) -> dict[str, str]:
    dsns = {}
    for system in TABLES:
        pg.ensure_database(system + suffix)
        dsns[system] = pg.dsn(system + suffix)
        apply_schema(dsns[system], system)
    return dsns


@pytest.fixture(scope="module")
def run(cluster, tmp_path_factory):
    dsns = databases(cluster, "")
    truth_path = tmp_path_factory.mktemp("simulator") / "truth.json"
    sim = Simulator(dsns, rate=60, duration_s=8, seed=SEED, faults=0.2, max_delay_s=0.25, ground_truth=truth_path)
    summary = sim.run()
    return dsns, summary, json.loads(truth_path.read_text())


# ---- reading the sources ---------------------------------------------------------------------------


def one(dsn: str, query: str, params: tuple = ()):
    with psycopg.connect(dsn) as conn:
        return conn.execute(query, params).fetchone()


def truth_alerts(faults: list[dict]) -> set[tuple[str, str, str]]:
    return {(a["rule_id"], a["entity_type"], a["entity_id"]) for f in faults for a in f["alerts"]}


def visible(dsns: dict[str, str], fault: dict) -> bool:
    """The fault's inconsistency, checked with SQL straight against the sources."""
    kind, variant, d = fault["kind"], fault["variant"], fault["details"]
    crm, billing, erp = dsns["crm"], dsns["billing"], dsns["erp"]
    if kind == "opportunity_without_subscription":
        return (one(crm, "SELECT stage FROM opportunities WHERE id = %s", (d["opportunity"],))[0] == "closed_won"
                and one(billing, "SELECT count(*) FROM subscriptions WHERE crm_opportunity_id = %s",
                        (d["opportunity"],))[0] == 0)
    if kind == "opportunity_without_sales_order":
        return (one(crm, "SELECT stage FROM opportunities WHERE id = %s", (d["opportunity"],))[0] == "closed_won"
                and one(erp, "SELECT count(*) FROM sales_orders WHERE crm_opportunity_id = %s",
                        (d["opportunity"],))[0] == 0)
    if kind == "invoice_not_posted":
        return (one(billing, "SELECT count(*) FROM invoices WHERE id = %s", (d["invoice"],))[0] == 1
                and one(erp, "SELECT count(*) FROM ar_postings WHERE invoice_ref = %s", (d["invoice"],))[0] == 0)
    if kind == "posting_mismatch":
        due, currency = one(billing, "SELECT amount_due, currency FROM invoices WHERE id = %s", (d["invoice"],))
        posted, currencies = one(erp, "SELECT sum(amount), array_agg(DISTINCT currency) FROM ar_postings "
                                      "WHERE invoice_ref = %s", (d["invoice"],))
        return posted is not None and (posted != due or currencies != [currency])
    if kind == "order_invoice_total_mismatch":
        total, currency = one(erp, "SELECT total_amount, currency FROM sales_orders WHERE order_no = %s",
                              (d["sales_order"],))
        billed, currencies = one(billing, "SELECT sum(amount_due), array_agg(DISTINCT currency) FROM invoices "
                                          "WHERE erp_order_no = %s AND status <> 'void'", (d["sales_order"],))
        return billed is not None and (billed != total or currencies != [currency])
    if kind == "orphan_payment":
        return one(billing, "SELECT count(*) FROM payments p WHERE p.id = %s AND p.invoice_id IS NOT NULL AND "
                            "NOT EXISTS (SELECT 1 FROM invoices i WHERE i.id = p.invoice_id)", (d["payment"],))[0] == 1
    if kind == "payment_customer_mismatch":
        return one(billing, "SELECT count(*) FROM payments p JOIN invoices i ON i.id = p.invoice_id "
                            "WHERE p.id = %s AND p.customer_id <> i.customer_id", (d["payment"],))[0] == 1
    if kind == "invoice_status_mismatch":
        status, due, paid = one(billing, """
            SELECT i.status, i.amount_due,
                   coalesce(sum(p.amount) FILTER (WHERE p.kind = 'charge' AND p.status IN ('succeeded', 'refunded')), 0)
                 - coalesce(sum(p.amount) FILTER (WHERE p.kind = 'refund' AND p.status = 'succeeded'), 0)
            FROM invoices i LEFT JOIN payments p ON p.invoice_id = i.id WHERE i.id = %s
            GROUP BY i.id""", (d["invoice"],))
        return (status == "paid" and paid < due) or paid > due or (status == "open" and paid >= due)
    if kind == "subscription_order_mismatch":
        value, currency, status = one(billing, "SELECT quantity * unit_amount, currency, status FROM subscriptions "
                                               "WHERE id = %s", (d["subscription"],))
        total, order_currency, order_status = one(erp, "SELECT total_amount, currency, status FROM sales_orders "
                                                       "WHERE order_no = %s", (d["sales_order"],))
        return (value != total or currency != order_currency
                or (status == "canceled" and order_status not in ("closed", "cancelled")))
    if kind == "account_attribute_mismatch":
        crm_value = one(crm, f"SELECT {d['column']} FROM accounts WHERE id = %s", (d["account"],))[0]
        other = one(dsns[d["source"]], f"SELECT {d['column']} FROM customers WHERE {d['key_column']} = %s",
                    (d["key"],))[0]
        return crm_value != other
    if kind == "duplicate_account":
        row = one(crm, """
            SELECT count(*) FROM accounts a JOIN accounts b ON a.id = %s AND b.id = %s
            WHERE regexp_replace(lower(a.domain), '^www\\.', '') = regexp_replace(lower(b.domain), '^www\\.', '')
               OR a.tax_id = b.tax_id""", (d["account"], d["duplicate"]))
        return row[0] == 1
    if kind == "credit_hold_violation":
        held = one(erp, "SELECT credit_hold FROM customers WHERE customer_no = %s", (d["erp_customer"],))[0]
        if variant == "invoice":
            issued = one(billing, "SELECT count(*) FROM invoices WHERE id = %s", (d["invoice"],))[0] == 1
        else:
            issued = one(crm, "SELECT stage FROM opportunities WHERE id = %s", (d["opportunity"],))[0] == "closed_won"
        return held and issued
    if kind == "dangling_reference":
        target_table = {"billing_customer_id": ("billing", "customers", "id"),
                        "erp_customer_no": ("erp", "customers", "customer_no"),
                        "crm_account_id": ("crm", "accounts", "id"),
                        "crm_opportunity_id": ("crm", "opportunities", "id"),
                        "billing_subscription_id": ("billing", "subscriptions", "id"),
                        "erp_order_no": ("erp", "sales_orders", "order_no")}[d["column"]]
        link = one(dsns[d["source"]], f"SELECT {d['column']} FROM {d['table']} WHERE {d['key_column']} = %s",
                   (d["key"],))[0]
        source, table, key = target_table
        return link is not None and one(dsns[source], f"SELECT count(*) FROM {table} WHERE {key} = %s",
                                        (link,))[0] == 0
    raise AssertionError(kind)


# ---- the tests ---------------------------------------------------------------------------------------


def test_run_writes_every_fault_kind_and_a_well_formed_ground_truth(run):
    dsns, summary, truth = run
    assert (truth["seed"], truth["rate"], truth["duration_s"]) == (SEED, 60, 8)
    assert {f["kind"] for f in truth["faults"]} == set(FAULT_KINDS)
    assert truth["counts"] == summary["faults"] and sum(truth["counts"].values()) == len(truth["faults"])
    assert all(summary["changes"][s] > 50 for s in ("crm", "billing", "erp"))
    assert summary["elapsed_s"] < 12 and not summary["stopped_early"]
    db = load(dsns)
    # Every write went through the schemas' CHECKs and foreign keys; the row counts add up.
    assert len(db["crm.accounts"]) >= summary["journeys"]
    for f in truth["faults"]:
        assert f["alerts"] and f["at"] and re.match(r"\d{4}-\d\d-\d\dT", f["at"])


def test_every_injected_fault_is_visible_in_the_data(run):
    dsns, _, truth = run
    hidden = [(f["kind"], f["variant"], f["alerts"]) for f in truth["faults"] if not visible(dsns, f)]
    assert not hidden


def test_the_data_holds_exactly_the_ground_truth_inconsistencies(run):
    dsns, _, truth = run
    found = oracle(load(dsns))
    expected = truth_alerts(truth["faults"])
    assert found - expected == set(), "inconsistencies nobody injected"
    assert expected - found == set(), "injected faults the data does not show"


def test_healthy_journeys_are_consistent(run):
    dsns, _, truth = run
    db = load(dsns)
    faulty = {f["journey"] for f in truth["faults"]}

    def journey(entity_id: str) -> int:
        return int(re.search(r"[_-](\d{5})", entity_id).group(1))

    healthy_invoices = [i for i in db["billing.invoices"] if journey(i["id"]) not in faulty]
    assert len(healthy_invoices) >= 10
    postings = defaultdict(list)
    for p in db["erp.ar_postings"]:
        postings[p["invoice_ref"]].append(p)
    payments = defaultdict(list)
    for p in db["billing.payments"]:
        payments[p["invoice_id"]].append(p)
    statuses = set()
    for inv in healthy_invoices:
        [posting] = postings[inv["id"]]
        assert (posting["amount"], posting["currency"]) == (inv["amount_due"], inv["currency"])
        paid = net_paid(payments[inv["id"]])
        assert inv["amount_paid"] == paid
        assert (inv["status"] == "paid") == (paid >= inv["amount_due"]) and paid <= inv["amount_due"]
        statuses.add(inv["status"])
    assert statuses == {"paid", "open"}
    # Quote-to-cash links and values agree across the three systems for healthy won deals.
    subs = {s["crm_opportunity_id"]: s for s in db["billing.subscriptions"]}
    orders = {o["crm_opportunity_id"]: o for o in db["erp.sales_orders"]}
    won = [o for o in db["crm.opportunities"] if o["stage"] == "closed_won" and journey(o["id"]) not in faulty]
    assert won and any(o["stage"] == "closed_lost" for o in db["crm.opportunities"])
    for opp in won:
        sub, order = subs[opp["id"]], orders[opp["id"]]
        assert order["billing_subscription_id"] == sub["id"] and sub["currency"] == order["currency"] == opp["currency"]
        assert sub["quantity"] * sub["unit_amount"] == order["total_amount"] >= opp["amount"]
    accounts = {a["id"]: a for a in db["crm.accounts"]}
    for c in db["erp.customers"]:
        if journey(c["customer_no"]) not in faulty:
            a = accounts[c["crm_account_id"]]
            assert (c["name"], c["country"], c["tax_id"]) == (a["name"], a["country"], a["tax_id"])
            assert a["erp_customer_no"] == c["customer_no"] and not c["credit_hold"]


def test_fix_resolves_one_fault_of_each_kind_and_nothing_else_appears(run):
    dsns, _, truth = run
    firsts = {}
    for f in truth["faults"]:
        firsts.setdefault(f["kind"], f)
    conns = {s: psycopg.connect(dsn) for s, dsn in dsns.items()}
    try:
        for f in firsts.values():
            fix(conns, f)
    finally:
        for c in conns.values():
            c.close()
    still = [(f["kind"], f["variant"]) for f in firsts.values() if visible(dsns, f)]
    assert not still
    remaining = [f for f in truth["faults"] if f not in firsts.values()]
    assert oracle(load(dsns)) == truth_alerts(remaining)


def test_stop_ends_early_and_finishes_the_journeys_under_way(cluster, tmp_path):
    dsns = databases(cluster, "_stop")
    sim = Simulator(dsns, rate=80, duration_s=60, seed=5, faults=0.3, max_delay_s=0.5,
                    ground_truth=tmp_path / "truth.json")
    result = {}
    worker = threading.Thread(target=lambda: result.update(sim.run()))
    worker.start()
    time.sleep(2.0)
    stopped = time.monotonic()
    sim.stop()
    worker.join(timeout=10)
    assert not worker.is_alive() and time.monotonic() - stopped < 3
    assert result["stopped_early"] and result["journeys"] < len(sim.plan.journeys)
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert truth["faults"] and oracle(load(dsns)) == truth_alerts(truth["faults"])
    # Ids derive from the seed: the same seed into the same databases is refused before writing anything.
    with pytest.raises(SimulatorError, match="already simulated"):
        Simulator(dsns, rate=80, duration_s=1, seed=5, faults=0.3, max_delay_s=0.5).run()
