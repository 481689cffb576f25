"""Helpers for the fault-injection suite: traffic in threads, failures, and end-state oracles from plain SQL.

The oracles read the source databases with their own SQL and the topics with the test readers
(tests.canonical, tests.alert_support); nothing here computes an expected value with trueup code.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import threading
import time
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from unittest import mock

import psycopg

from state.topic_end import read_to_end
from tests import alert_support
from tests.canonical import events, projections, wait_until
from tests.raw_topics import envelopes
from tests.stack_support import running_stack
from trueup.simulator import Simulator
from trueup.stack.processes import alive

_connect = psycopg.connect  # the real one, whatever a test patches later

# Simulation size: short, yet every fault kind appears (the simulator puts each kind in the first half).
RATE, DURATION_S, FAULT_RATE = 20.0, 12.0, 0.3
FAULT_AT_S = 4.0  # the failure lands this long after the traffic starts
ZERO = Decimal("0.00")


# ---------------------------------------------------------------------------------------------------
# The stack
# ---------------------------------------------------------------------------------------------------


@contextmanager
def fault_stack(name: str, keep: Path, workers: int = 1, env: dict[str, str] | None = None):
    """running_stack, and on the way out (pass or fail) the stack's logs and PostgreSQL's log copied to keep."""
    with running_stack(name, workers=workers, env=env) as stack:
        try:
            yield stack
        finally:
            keep.mkdir(parents=True, exist_ok=True)
            if stack.logs.exists():
                shutil.copytree(stack.logs, keep, dirs_exist_ok=True)
            state = stack.state()
            cluster = stack._cluster(state) if state else None
            if cluster is not None and cluster.log_path.exists():
                shutil.copy(cluster.log_path, keep / "postgres.log")
            print(f"\n[{name}] logs kept in {keep}")


def components(stack) -> dict[str, dict]:
    return {c["name"]: c for c in stack.status()["components"]}


def not_up(stack, ignore: tuple[str, ...] = ()) -> dict[str, str]:
    """Components of the stack (postgres, broker, connectors, workers) whose state is not "up"."""
    return {name: c["state"] for name, c in components(stack).items() if name not in ignore and c["state"] != "up"}


def pids(stack) -> dict[str, int]:
    """Every process the stack started, by component name."""
    state = stack.state()
    out = {f"connector-{s}": rec.pid for s, rec in state.connectors.items()}
    out.update({f"worker-{i}": rec.pid for i, rec in enumerate(state.workers)})
    out["broker"] = state.broker.pid
    out["postgres"] = stack._cluster(state).pid()
    return out


def wait_gone(pid: int, timeout_s: float = 30.0) -> None:
    wait_until(lambda: alive(pid), lambda up: not up, timeout_s, f"process {pid} gone")


def kill(pid: int, sig: int = signal.SIGKILL) -> None:
    os.kill(pid, sig)
    wait_gone(pid)


def wait_worker_ready(stack, index: int, timeout_s: float = 180.0) -> None:
    rec = stack.state().workers[index]
    wait_until(lambda: stack.worker_ready(rec), bool, timeout_s, f"worker {index} serving with its tables")


# ---------------------------------------------------------------------------------------------------
# Traffic: the simulator and a billing churn of short-lived invoices, both in threads
# ---------------------------------------------------------------------------------------------------


class Gate:
    """Lets a PostgreSQL restart happen between two source transactions, never inside one.

    Writers run each transaction holding the gate; restart() holds it while the server is down, so writers
    wait as an application would and reconnect afterwards (their connections died with the server).
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.generation = 0

    @contextmanager
    def shut(self):
        with self.lock:
            try:
                yield
            finally:
                self.generation += 1


class GatedConnection:
    """The part of a psycopg connection the simulator uses (execute, transaction, close), run through a Gate."""

    def __init__(self, gate: Gate, dsn: str, **kwargs) -> None:
        self.gate, self.dsn, self.kwargs = gate, dsn, kwargs
        self.reconnects = 0
        self._open()

    def _open(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                self._conn = _connect(self.dsn, **self.kwargs)
                self._generation = self.gate.generation
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def _fresh(self) -> None:
        if self._generation != self.gate.generation:
            self._conn.close()
            self._open()
            self.reconnects += 1

    @contextmanager
    def transaction(self):
        with self.gate.lock:
            self._fresh()
            with self._conn.transaction():
                yield self

    def execute(self, *args, **kwargs):
        with self.gate.lock:  # re-entered inside transaction(): the lock is an RLock
            self._fresh()
            return self._conn.execute(*args, **kwargs)

    def close(self) -> None:
        self._conn.close()


class _Recorded(threading.Thread):
    """A thread that records its error instead of losing it."""

    def __init__(self, name: str) -> None:
        super().__init__(daemon=True, name=name)
        self.error: BaseException | None = None

    def finish(self, timeout_s: float = 120.0):
        self.join(timeout_s)
        assert not self.is_alive(), f"{self.name} still running after {timeout_s}s"
        assert self.error is None, f"{self.name} failed: {self.error!r}"


class SimulatorRun(_Recorded):
    """Simulator(dsns, ...).run() in a thread; with a gate its connections wait out a PostgreSQL restart."""

    def __init__(self, dsns: dict[str, str], seed: int, truth_path: Path, gate: Gate | None = None,
                 rate: float = RATE, duration_s: float = DURATION_S, faults: float = FAULT_RATE) -> None:
        super().__init__("simulator")
        self.simulator = Simulator(dsns, rate=rate, duration_s=duration_s, seed=seed, faults=faults,
                                   ground_truth=truth_path)
        self.truth_path, self.gate = truth_path, gate
        self.summary: dict | None = None
        self.connections: list[GatedConnection] = []

    def _connect(self, dsn, **kwargs):
        if threading.current_thread() is not self:
            return _connect(dsn, **kwargs)
        conn = GatedConnection(self.gate, dsn, **kwargs)
        self.connections.append(conn)
        return conn

    def run(self) -> None:
        try:
            if self.gate is None:
                self.summary = self.simulator.run()
            else:
                # Simulator.run opens its connections with psycopg.connect; only this thread's calls are routed.
                with mock.patch.object(psycopg, "connect", self._connect):
                    self.summary = self.simulator.run()
        except BaseException as exc:
            self.error = exc

    def truth(self) -> dict:
        return json.loads(self.truth_path.read_text())


class InvoiceChurn(_Recorded):
    """Billing traffic the simulator never writes: payments updated, moved, refunded and deleted, and invoices
    deleted, for one customer of its own. Every invoice is draft or void and every payment names its own
    customer, so no rule may fire on any of it. A short-lived invoice gets a payment, loses it and is deleted
    within a few seconds (well inside the orphan-payment SLA), so its deletion is safe whatever order the
    deletes are processed in."""

    CURRENCY = "EUR"

    def __init__(self, dsn: str, tag: str, seed: int, duration_s: float = DURATION_S, gate: Gate | None = None):
        super().__init__("invoice-churn")
        self.dsn, self.tag, self.duration_s = dsn, tag, duration_s
        self.gate = gate or Gate()
        self.rng = random.Random(seed)
        self.customer = f"cus_fc{tag}"
        self.deleted: dict[str, set[str]] = {"invoice": set(), "payment": set()}
        self.writes = 0
        self._n = 0

    def _id(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}_fc{self.tag}_{self._n}"

    @property
    def made(self) -> int:
        """How many ids the churn has handed out so far."""
        return self._n

    def streamed_before_resnapshot(self, bootstrap: str) -> int:
        """The highest id number billing's connector sent before it snapshotted again (read from its raw topics):
        among the streamed changes below the newest snapshot's start LSN.

        The churn commits one transaction at a time, in id order, and the connector sends in commit order, a
        batch only after the one before it was acknowledged: every lower id was sent too.
        """
        pattern = re.compile(rf"(?:in|py|re)_fc{re.escape(self.tag)}_(\d+)")
        snapshot_lsn, streamed = 0, []
        for rec in read_to_end(bootstrap, ["billing.public.invoices", "billing.public.payments"], idle_s=0.5):
            if rec.value is None:
                continue
            envelope = json.loads(rec.value)
            source = envelope.get("source") or {}
            if str(source.get("snapshot", "false")).lower() not in ("false", "incremental"):
                snapshot_lsn = max(snapshot_lsn, int(source["lsn"]))
                continue
            found = pattern.fullmatch(str((envelope.get("after") or envelope.get("before") or {}).get("id")))
            if found:
                streamed.append((int(source["lsn"]), int(found.group(1))))
        return max((n for lsn, n in streamed if lsn < snapshot_lsn), default=0)

    def ids_between(self, after: int, upto: int) -> frozenset[str]:
        """Every id the churn may have handed out after `after` ids and up to `upto`, of any kind."""
        return frozenset(f"{prefix}_fc{self.tag}_{n}" for prefix in ("in", "py", "re")
                         for n in range(after + 1, upto + 1))

    def run(self) -> None:
        try:
            conn = GatedConnection(self.gate, self.dsn, autocommit=True)
            try:
                self._run(conn)
            finally:
                conn.close()
        except BaseException as exc:
            self.error = exc

    def _tx(self, conn: GatedConnection, *statements) -> None:
        with conn.transaction():
            for statement, params in statements:
                conn.execute(statement, params)
        self.writes += 1

    def _invoice(self, inv: str, due: Decimal, status: str = "draft"):
        return ("INSERT INTO invoices (id, customer_id, amount_due, currency, status) VALUES (%s, %s, %s, %s, %s)",
                (inv, self.customer, due, self.CURRENCY, status))

    def _payment(self, pid: str, inv: str, amount: Decimal, kind: str = "charge", status: str = "succeeded"):
        return ("INSERT INTO payments (id, invoice_id, customer_id, amount, currency, status, kind) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)", (pid, inv, self.customer, amount, self.CURRENCY, status, kind))

    def _money(self, lo: int, hi: int) -> Decimal:
        return Decimal(self.rng.randint(lo, hi)) / 100

    def _run(self, conn: GatedConnection) -> None:
        rng = self.rng
        self._tx(conn, ("INSERT INTO customers (id, name, currency) VALUES (%s, 'Fault Churn GmbH', %s)",
                        (self.customer, self.CURRENCY)))
        keep = [self._id("in") for _ in range(4)]
        self._tx(conn, *[self._invoice(inv, self._money(10_000, 40_000)) for inv in keep])
        charges: dict[str, str] = {}  # live charge -> its invoice
        live: list[str] = []
        short: list[tuple[float, str, list[str]]] = []  # (delete at, invoice, its payments)
        began = time.monotonic()
        while time.monotonic() - began < self.duration_s:
            now = time.monotonic()
            action = rng.random()
            if short and short[0][0] <= now:
                _, inv, pays = short.pop(0)
                self._tx(conn, ("DELETE FROM payments WHERE id = ANY(%s)", (pays,)))
                self._tx(conn, ("DELETE FROM invoices WHERE id = %s", (inv,)))
                self.deleted["payment"].update(pays)
                self.deleted["invoice"].add(inv)
            elif action < 0.12:
                inv, pay = self._id("in"), self._id("py")
                self._tx(conn, self._invoice(inv, self._money(5_000, 20_000)),
                         self._payment(pay, inv, self._money(100, 5_000)))
                short.append((now + rng.uniform(1.0, 3.0), inv, [pay]))
            elif action < 0.45 or not live:
                pid, inv = self._id("py"), rng.choice(keep)
                status = rng.choice(("succeeded", "succeeded", "pending", "failed"))
                self._tx(conn, self._payment(pid, inv, self._money(100, 15_000), status=status))
                charges[pid] = inv
                live.append(pid)
            elif action < 0.55:
                charge = rng.choice(sorted(charges))
                rid = self._id("re")
                self._tx(conn, self._payment(rid, charges[charge], self._money(100, 3_000), kind="refund"))
                live.append(rid)
            elif action < 0.67:
                self._tx(conn, ("UPDATE payments SET amount = %s WHERE id = %s", (self._money(100, 15_000),
                                                                                 rng.choice(live))))
            elif action < 0.77 and charges:
                charge = rng.choice(sorted(charges))
                status = rng.choice(("succeeded", "refunded", "failed"))
                self._tx(conn, ("UPDATE payments SET status = %s WHERE id = %s", (status, charge)))
            elif action < 0.85 and charges:
                charge, inv = rng.choice(sorted(charges)), rng.choice(keep)
                charges[charge] = inv
                self._tx(conn, ("UPDATE payments SET invoice_id = %s WHERE id = %s", (inv, charge)))
            elif action < 0.92:
                self._tx(conn, ("UPDATE invoices SET status = %s, amount_due = %s WHERE id = %s",
                                (rng.choice(("draft", "void")), self._money(5_000, 40_000), rng.choice(keep))))
            else:
                pid = live.pop(rng.randrange(len(live)))
                charges.pop(pid, None)
                self._tx(conn, ("DELETE FROM payments WHERE id = %s", (pid,)))
                self.deleted["payment"].add(pid)
            time.sleep(0.1)
        for _, inv, pays in short:  # the last short-lived invoices go too
            self._tx(conn, ("DELETE FROM payments WHERE id = ANY(%s)", (pays,)))
            self._tx(conn, ("DELETE FROM invoices WHERE id = %s", (inv,)))
            self.deleted["payment"].update(pays)
            self.deleted["invoice"].add(inv)


class Traffic:
    """The simulator and the invoice churn started together; finish() joins both and returns the ground truth."""

    def __init__(self, stack, seed: int, tmp_path: Path, gate: Gate | None = None) -> None:
        dsns = stack.status()["postgres"]
        self.simulator = SimulatorRun(dsns, seed, tmp_path / "truth.json", gate)
        self.churn = InvoiceChurn(dsns["billing"], str(seed), seed, gate=gate)
        self.started = 0.0

    def start(self) -> Traffic:
        self.started = time.monotonic()
        self.simulator.start()
        self.churn.start()
        return self

    def sleep_until(self, offset_s: float) -> None:
        """Wait until offset_s after the start (only to place a failure in the run, never to synchronise)."""
        time.sleep(max(0.0, self.started + offset_s - time.monotonic()))

    def finish(self) -> dict:
        self.simulator.finish()
        self.churn.finish()
        truth = self.simulator.truth()
        assert truth["faults"], "the short run injected no fault; the suite would prove nothing about alerts"
        assert self.simulator.summary["changes_total"] > 100, self.simulator.summary
        assert self.churn.deleted["invoice"] and self.churn.deleted["payment"], self.churn.deleted
        return truth


# ---------------------------------------------------------------------------------------------------
# Oracles from the sources (independent SQL) and the comparisons
# ---------------------------------------------------------------------------------------------------

# Net paid per invoice and currency: succeeded (or later refunded) charges minus succeeded refunds.
_PAID_SQL = """
    SELECT i.id, p.currency,
           coalesce(sum(p.amount) FILTER (WHERE p.kind = 'charge' AND p.status IN ('succeeded', 'refunded')), 0)
         - coalesce(sum(p.amount) FILTER (WHERE p.kind = 'refund' AND p.status = 'succeeded'), 0)
    FROM invoices i JOIN payments p ON p.invoice_id = i.id
    GROUP BY i.id, p.currency"""

# The corrected status the invoice projection documents: void as billing says, paid once the net paid in the
# invoice's currency covers the amount due, open otherwise; and billing's own status beside it.
_STATUS_SQL = """
    SELECT i.id, i.status,
           CASE WHEN i.status = 'void' THEN 'void'
                WHEN (SELECT coalesce(sum(p.amount) FILTER (WHERE p.kind = 'charge'
                                                            AND p.status IN ('succeeded', 'refunded')), 0)
                           - coalesce(sum(p.amount) FILTER (WHERE p.kind = 'refund' AND p.status = 'succeeded'), 0)
                      FROM payments p WHERE p.invoice_id = i.id AND p.currency = i.currency) >= i.amount_due
                THEN 'paid' ELSE 'open' END
    FROM invoices i"""

_ROWS_SQL = {
    "invoice": "SELECT id, customer_id, subscription_id, erp_order_no, amount_due, amount_paid, currency, status, "
               "updated_at FROM invoices",
    "payment": "SELECT id, invoice_id, customer_id, amount, currency, kind, status, updated_at FROM payments",
}


def _query(dsn: str, statement: str) -> list[tuple]:
    with _connect(dsn) as conn:
        return conn.execute(statement).fetchall()


BILLING_TABLES = {"billing_customer": "customers", "subscription": "subscriptions", "invoice": "invoices",
                  "payment": "payments"}


def billing_rows(billing: str, table: str, key: str) -> int:
    """How many rows of one of billing's tables (BILLING_TABLES) have this id (0 or 1)."""
    if table not in BILLING_TABLES.values():
        raise ValueError(f"not a billing table: {table}")
    with _connect(billing) as conn:
        return conn.execute(f"SELECT count(*) FROM {table} WHERE id = %s", (key,)).fetchone()[0]


def live_in_raw_but_gone(bootstrap: str, billing: str) -> set[tuple[str, str]]:
    """(entity type, id) of billing rows whose last raw record (Debezium's, not trueup's) shows a live row that
    billing no longer has: rows deleted while no connector streamed, which no snapshot carries."""
    gone: set[tuple[str, str]] = set()
    for entity, table in BILLING_TABLES.items():
        live = {rec["key"]["id"]: rec["value"] is not None and rec["value"].get("op") != "d"
                for rec in envelopes(bootstrap, f"billing.public.{table}") if rec["key"] is not None}
        present = {key for (key,) in _query(billing, f"SELECT id FROM {table}")}
        gone |= {(entity, key) for key, alive_ in live.items() if alive_ and key not in present}
    return gone


def invoice_oracle(billing: str) -> dict[str, dict]:
    """Per invoice in billing: corrected status, billing's status, net paid per currency (zeros left out)."""
    out = {inv: {"status": corrected, "billing_status": raw, "paid": {}}
           for inv, raw, corrected in _query(billing, _STATUS_SQL)}
    for inv, currency, paid in _query(billing, _PAID_SQL):
        if paid != 0:
            out[inv]["paid"][currency] = paid
    return out


def _paid_of(projection: dict) -> dict[str, Decimal]:
    return {m["currency"]: Decimal(str(m["amount"])) for m in projection["totals"]["paid"]
            if Decimal(str(m["amount"])) != 0}


def projection_problems(projection: dict | None, want: dict) -> list[str]:
    """How one invoice projection (decoded from the topic or the API's JSON) differs from its oracle."""
    if projection is None:
        return ["no projection"]
    problems = []
    if projection["status"] != want["status"]:
        problems.append(f"status {projection['status']} != {want['status']}")
    paid = _paid_of(projection)
    if paid != want["paid"]:
        problems.append(f"paid {paid} != {want['paid']}")
    shown = [a["value"] for a in projection["fields"]["status"]["alternatives"]]
    if shown != ([] if want["billing_status"] == want["status"] else [want["billing_status"]]):
        problems.append(f"billing status shown as {shown}, billing has {want['billing_status']}")
    return problems


def invoice_projection_diff(bootstrap: str, oracle: dict[str, dict], deleted: set[str]) -> dict[str, list[str]]:
    """Every invoice whose latest projection differs from the oracle; deleted ones must have no live value.

    A deleted invoice ends as a tombstone, or has no record at all: an invoice created and deleted between two
    emits of its bucket (one batch, e.g. while a restarted worker catches up) is never projected, which leaves
    a compacted topic as a tombstone would.
    """
    got = projections(bootstrap, "invoice")
    diff = {}
    for inv, want in oracle.items():
        problems = projection_problems(got.get(inv), want)
        if problems:
            diff[inv] = problems
    for inv, value in got.items():
        if inv not in oracle and value is not None:
            diff[inv] = ["not in billing, yet its latest projection is not a tombstone"]
    for inv in deleted:
        if inv in oracle:  # the churn's own record of what it deleted must agree with billing
            diff[inv] = ["recorded as deleted, yet billing still has it"]
    return diff


def _canonical(entity: str, row: tuple) -> dict:
    """A source row as the canonical event's after image should hold it (money as amount + currency)."""
    if entity == "invoice":
        inv, customer, sub, order, due, paid, currency, status, updated = row
        return {"customer_id": customer, "subscription_id": sub, "erp_order_no": order, "status": status,
                "amount_due": {"amount": due, "currency": currency},
                "amount_paid": {"amount": paid, "currency": currency}, "updated_at": updated}
    pid, inv, customer, amount, currency, kind, status, updated = row
    return {"invoice_id": inv, "customer_id": customer, "kind": kind, "status": status,
            "amount": {"amount": amount, "currency": currency}, "updated_at": updated}


def source_row(billing: str, entity: str, key: str) -> dict | None:
    """One invoice or payment row of billing by SQL, as its canonical after image should hold it; None if absent."""
    with _connect(billing) as conn:
        row = conn.execute(_ROWS_SQL[entity] + " WHERE id = %s", (key,)).fetchone()
    return None if row is None else _canonical(entity, row)


def lost_changes(bootstrap: str, billing: str, deleted: dict[str, set[str]],
                 unseen: frozenset[str] = frozenset()) -> dict[str, str]:
    """Source rows of invoices and payments whose last canonical event is not their final state.

    unseen: deleted rows that may have no event at all (born and deleted while nobody streamed, they are in
    neither the stream nor a later snapshot); one that has events must still end with its delete."""
    diff = {}
    for entity, statement in _ROWS_SQL.items():
        rows = {row[0]: _canonical(entity, row) for row in _query(billing, statement)}
        last: dict[str, dict] = {}
        for event in events(bootstrap, entity):
            last[event["entity_id"]] = event
        for key, want in rows.items():
            event = last.get(key)
            if event is None:
                diff[f"{entity} {key}"] = "no canonical event"
            elif event["op"] == "delete" or event["after"] is None:
                diff[f"{entity} {key}"] = f"last event is a {event['op']}, the row exists"
            else:
                got = {column: event["after"].get(column) for column in want}
                if got != want:
                    diff[f"{entity} {key}"] = f"last event {got} != source {want}"
        for key, event in last.items():
            if key not in rows and event["op"] != "delete":
                diff[f"{entity} {key}"] = f"gone from billing, last event is a {event['op']}"
        for key in deleted[entity]:
            if key not in last and key not in unseen:
                diff[f"{entity} {key}"] = "deleted in billing, no event at all"
    return diff


def alert_diff(bootstrap: str, expected: set[tuple[str, str, str]],
               resolved: frozenset[tuple[str, str, str]] = frozenset()) -> dict:
    """How the alert topic differs from `expected` (each open once) and `resolved` (raised, then resolved)."""
    latest = alert_support.latest(alert_support.alert_records(bootstrap))
    return {
        "missing": sorted(expected - set(latest)),
        "unexpected": sorted((k, latest[k]["status"]) for k in set(latest) - expected - resolved),
        "not resolved": sorted((k, latest.get(k, {}).get("status")) for k in resolved
                               if latest.get(k, {}).get("status") != "resolved"),
        "not open once": sorted((k, latest[k]["status"], latest[k]["occurrence"])
                                for k in set(latest) & expected
                                if latest[k]["status"] != "open" or latest[k]["occurrence"] != 1),
    }


def assert_end_state(stack, truth: dict, deleted: dict[str, set[str]], timeout_s: float = 90.0,
                     resolved: frozenset[tuple[str, str, str]] = frozenset(), unseen: frozenset[str] = frozenset()
                     ) -> dict:
    """Caught up past the last SLA, then (a) exactly the ground truth's alerts (which the sources' rows, read by
    tests.rules_oracle, must call for too), all open (and `resolved`, each
    resolved: alerts the case itself raised and closed), (b) invoice
    projections equal to the SQL oracle, tombstones for deleted invoices, (c) every invoice and payment row's
    final state as its last canonical event (unseen: see lost_changes). Returns the oracle."""
    status = stack.status()
    bootstrap, billing = status["kafka"]["bootstrap"], status["postgres"]["billing"]
    expected = alert_support.expected_alerts(truth)
    # The ground truth is the simulator's word: the rules read independently from the sources must agree.
    alert_support.assert_sources_hold(status["postgres"], expected)
    alert_support.wait_caught_up(stack, int(time.time() * 1000) + alert_support.largest_sla_ms())
    wait_until(lambda: alert_diff(bootstrap, expected, resolved), lambda d: not any(d.values()), timeout_s,
               "(a) alerts equal to the ground truth, all open")
    oracle = invoice_oracle(billing)
    assert len(oracle) >= 10 and any(o["paid"] for o in oracle.values()), oracle
    wait_until(lambda: invoice_projection_diff(bootstrap, oracle, deleted["invoice"]), lambda d: not d,
               timeout_s, "(b) invoice projections equal to the SQL oracle")
    wait_until(lambda: lost_changes(bootstrap, billing, deleted, unseen), lambda d: not d, timeout_s,
               "(c) every invoice and payment row's final state in the canonical events")
    return oracle


# ---------------------------------------------------------------------------------------------------
# Failures
# ---------------------------------------------------------------------------------------------------


def restart_postgres(stack, gate: Gate) -> float:
    """pg_ctl stop -m fast, then start on the same data folder and port (as the postgres user, through the
    stack's PrivateCluster), between two source transactions; returns how long the server was down."""
    cluster = stack._cluster(stack.state())
    with gate.shut():
        old = cluster.pid()
        began = time.monotonic()
        cluster.stop("fast")
        assert not alive(old) and not cluster.running()
        cluster.start()
        down = time.monotonic() - began
    assert cluster.running() and cluster.pid() != old
    return down
