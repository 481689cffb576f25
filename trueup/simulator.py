"""Quote-to-cash traffic for the three reference sources, with injected faults and their ground truth.

`Simulator` writes realistic customer journeys into the CRM, billing and ERP databases with plain SQL:
an account and an opportunity in CRM, the deal won (or, for about one in five, lost), the billing customer
and subscription, the ERP customer and sales order, invoices, their AR postings, payments (some partial,
some failing first, some on pending debit methods), refunds, amendments and cancellations, each system
following the one before it after a short delay. At fault rate F a journey carries one injected fault of a
kind the consistency rules catch, and the ground-truth file lists, per fault, exactly the alerts
(rule_id, entity_type, entity_id) it must cause and nothing else.

Everything the simulator will write is planned up front from the seed (`build_plan`, pure: no database,
no clock): the same seed, rate, duration, fault rate and max delay give the same SQL statements in the same
order; only the wall-clock timing of execution varies. `Simulator.run()` executes the plan on schedule.
Journeys start during the first `duration_s` seconds; when the duration is over (or `stop()` is called)
no new journey starts and the remaining writes of journeys already under way are flushed at once, so no
journey is left half-written (half a journey would raise alerts nobody injected).

Healthy traffic keeps every cross-system pair within `max_delay_s` (two at most for the opportunity ->
sales order chain) of the write that calls for it, so with rule SLAs of ~10 s and the default 2 s, healthy
traffic never breaches an SLA. Healthy data never sets an ERP credit hold, never shares a normalised domain
or tax id between accounts, and keeps names, countries and tax ids identical across the systems. Writes
that belong together go in one transaction (a payment and its invoice's amount_paid/status, installment
invoices, a posting and the order's billed status); links are written after their targets exist (a CRM
account learns its customer ids last); churn closes the ERP order before billing cancels. The one healthy
moment when the sources disagree is an amendment: billing's new quantity and difference invoice precede
ERP's new order total and posting by one delay (subscription_order_mismatch and
order_invoice_total_mismatch hold in the sources for at most max_delay_s).

Fault design (each fault must cause its alerts and no other rule's alert; choices per kind are documented
at the builders below, `_Planner._fault_*`). Assumptions about the rules, taken from their specification
and from streams/rules.py: a sales order no invoice names is not checked against invoices
(order_invoice_total_mismatch needs at least one invoice); a subscription is compared only with sales
orders of the same opportunity; an open, unpaid invoice is healthy; a prospect account without billing
or ERP customers is healthy; closed_lost and open opportunities need nothing downstream; payments count
towards their invoice's net paid whatever customer they name.

`fix(conn_by_source, fault)` repairs one injected fault (a ground-truth entry) in the sources so that its
alerts resolve without raising any other.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, Mapping

SOURCES = ("crm", "billing", "erp")

FAULT_KINDS = (
    "opportunity_without_subscription",
    "opportunity_without_sales_order",
    "invoice_not_posted",
    "posting_mismatch",
    "order_invoice_total_mismatch",
    "orphan_payment",
    "payment_customer_mismatch",
    "invoice_status_mismatch",
    "subscription_order_mismatch",
    "account_attribute_mismatch",
    "duplicate_account",
    "credit_hold_violation",
    "dangling_reference",
)

# Variants rotate per kind (in a seeded order), so a long run shows every way a kind can happen.
VARIANTS: dict[str, tuple[str, ...]] = {
    "opportunity_without_subscription": ("missing",),
    "opportunity_without_sales_order": ("missing",),
    "invoice_not_posted": ("missing",),
    "posting_mismatch": ("amount", "currency"),
    "order_invoice_total_mismatch": ("amount", "currency"),
    "orphan_payment": ("mistyped_invoice",),
    "payment_customer_mismatch": ("parent_pays",),
    "invoice_status_mismatch": ("paid_but_underpaid", "fully_paid_but_open", "overpaid"),
    "subscription_order_mismatch": ("amendment_not_propagated", "canceled_order_active"),
    "account_attribute_mismatch": ("billing_name", "erp_name", "erp_country", "erp_tax_id"),
    "duplicate_account": ("domain", "tax_id"),
    "credit_hold_violation": ("invoice", "opportunity"),
    "dangling_reference": (
        "account.billing_customer_id",
        "account.erp_customer_no",
        "billing_customer.crm_account_id",
        "subscription.crm_opportunity_id",
        "sales_order.crm_opportunity_id",
        "sales_order.billing_subscription_id",
        "invoice.erp_order_no",
        "erp_customer.crm_account_id",
    ),
}

ENTITY_TYPES = ("account", "opportunity", "billing_customer", "subscription", "invoice", "payment",
                "erp_customer", "sales_order", "ar_posting")

# The entity types each kind's alerts may name.
ALERT_ENTITY_TYPES: dict[str, frozenset[str]] = {
    "opportunity_without_subscription": frozenset({"opportunity"}),
    "opportunity_without_sales_order": frozenset({"opportunity"}),
    "invoice_not_posted": frozenset({"invoice"}),
    "posting_mismatch": frozenset({"invoice"}),
    "order_invoice_total_mismatch": frozenset({"sales_order"}),
    "orphan_payment": frozenset({"payment"}),
    "payment_customer_mismatch": frozenset({"payment"}),
    "invoice_status_mismatch": frozenset({"invoice"}),
    "subscription_order_mismatch": frozenset({"subscription"}),
    "account_attribute_mismatch": frozenset({"account"}),
    "duplicate_account": frozenset({"account"}),
    "credit_hold_violation": frozenset({"invoice", "opportunity"}),
    "dangling_reference": frozenset({"account", "billing_customer", "subscription", "sales_order", "invoice",
                                     "erp_customer"}),
}

CENT = Decimal("0.01")

COUNTRIES: dict[str, tuple[str, str, str, tuple[tuple[str, str], ...]]] = {
    # country: (currency, top-level domain, legal form, ((city, postal code), ...))
    "DE": ("EUR", "de", "GmbH", (("Berlin", "10115"), ("Munich", "80331"), ("Hamburg", "20095"))),
    "FR": ("EUR", "fr", "SAS", (("Paris", "75002"), ("Lyon", "69002"), ("Lille", "59000"))),
    "NL": ("EUR", "nl", "B.V.", (("Amsterdam", "1012"), ("Utrecht", "3511"), ("Rotterdam", "3011"))),
    "ES": ("EUR", "es", "S.L.", (("Madrid", "28013"), ("Barcelona", "08002"), ("Valencia", "46002"))),
    "IT": ("EUR", "it", "S.r.l.", (("Milan", "20121"), ("Turin", "10121"), ("Bologna", "40121"))),
    "GB": ("GBP", "co.uk", "Ltd", (("London", "EC1A"), ("Manchester", "M1"), ("Leeds", "LS1"))),
    "US": ("USD", "com", "Inc.", (("Austin", "78701"), ("Boston", "02108"), ("Denver", "80202"))),
    "CA": ("CAD", "ca", "Inc.", (("Toronto", "M5H"), ("Vancouver", "V6B"), ("Montreal", "H2Y"))),
    "SE": ("SEK", "se", "AB", (("Stockholm", "11122"), ("Gothenburg", "41103"), ("Malmo", "21122"))),
    "CH": ("CHF", "ch", "AG", (("Zurich", "8001"), ("Geneva", "1201"), ("Basel", "4001"))),
}
COUNTRY_CODES = tuple(COUNTRIES)
NAME_A = ("Northwind", "Kestrel", "Bluebird", "Granite", "Lumen", "Cobalt", "Harbor", "Juniper", "Meridian",
          "Orchid", "Pioneer", "Quarry", "Redwood", "Summit", "Tundra", "Vertex", "Willow", "Zephyr", "Aurora",
          "Beacon", "Cascade", "Ember", "Falcon", "Helix")
NAME_B = ("Analytics", "Robotics", "Logistics", "Foods", "Health", "Software", "Energy", "Textiles", "Media",
          "Labs", "Systems", "Capital", "Mobility", "Materials", "Pharma", "Retail")
INDUSTRIES = ("software", "manufacturing", "retail", "healthcare", "logistics", "financial_services", "media")
REPS = ("ana.garcia", "ben.kowalski", "chloe.martin", "dev.patel", "emma.schulz", "femi.adeyemi")
LEAD_SOURCES = ("web", "partner", "event", "outbound", "referral")
# (product, price id, unit amount range in cents, billing interval)
PRODUCTS = (
    ("Starter plan", "price_starter_m", 2_900, 9_900, "month"),
    ("Growth plan", "price_growth_m", 19_900, 49_900, "month"),
    ("Enterprise plan", "price_enterprise_y", 500_000, 2_400_000, "year"),
    ("Analytics add-on", "price_analytics_m", 4_900, 14_900, "month"),
    ("Premium support", "price_support_y", 120_000, 600_000, "year"),
)
CARD_METHODS = ("card", "card", "card", "bank_transfer", "wire", "check")
DEBIT_METHODS = ("ach_debit", "sepa_debit")
FAILURES = (("card_declined", "Your card was declined."),
            ("insufficient_funds", "The account has insufficient funds."),
            ("expired_card", "The card has expired."))


class SimulatorError(RuntimeError):
    """The simulation cannot run as asked; the message says why."""


# ---------------------------------------------------------------------------------------------------
# Plan: pure data
# ---------------------------------------------------------------------------------------------------


class _Expr(str):
    """An SQL expression written into the statement as it is (now(), CURRENT_DATE + 30), never a parameter."""


NOW = _Expr("now()")
TODAY = _Expr("CURRENT_DATE")
DUE_30 = _Expr("CURRENT_DATE + 30")
PERIOD_END = {"month": _Expr("now() + interval '1 month'"), "year": _Expr("now() + interval '1 year'")}

Statement = tuple[str, tuple]


def _ins(table: str, **cols: Any) -> Statement:
    names, values, params = [], [], []
    for name, value in cols.items():
        names.append(name)
        if isinstance(value, _Expr):
            values.append(str(value))
        else:
            values.append("%s")
            params.append(value)
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(values)})", tuple(params)


def _upd(table: str, key_col: str, key: str, **cols: Any) -> Statement:
    sets, params = [], []
    for name, value in cols.items():
        if isinstance(value, _Expr):
            sets.append(f"{name} = {value}")
        else:
            sets.append(f"{name} = %s")
            params.append(value)
    return f"UPDATE {table} SET {', '.join(sets)} WHERE {key_col} = %s", (*params, key)


@dataclass(frozen=True)
class Write:
    """One transaction in one source: its statements, when (seconds after the start) and for which journey."""

    at: float
    source: str
    label: str
    statements: tuple[Statement, ...]
    journey: int

    @property
    def rows(self) -> int:
        return len(self.statements)


@dataclass(frozen=True)
class PlannedFault:
    """An injected fault: its kind, the alerts it must cause, and the write that makes it true."""

    index: int
    kind: str
    variant: str
    journey: int
    write: int  # index into Plan.writes of the write that makes the fault true
    at: float  # seconds after the start (that write's offset)
    alerts: tuple[tuple[str, str, str], ...]  # (rule_id, entity_type, entity_id)
    details: dict  # what fix() and the tests need: ids, the right and wrong values (JSON-ready)

    def ground_truth(self, at_iso: str | None = None) -> dict:
        return {
            "kind": self.kind,
            "variant": self.variant,
            "alerts": [{"rule_id": r, "entity_type": t, "entity_id": i} for r, t, i in self.alerts],
            "at": at_iso,
            "at_offset_s": round(self.at, 3),
            "journey": self.journey,
            "details": self.details,
        }


@dataclass
class Plan:
    seed: int
    rate: float
    duration_s: float
    faults_rate: float
    max_delay_s: float
    tag: str
    writes: list[Write]
    faults: list[PlannedFault]
    journeys: dict[int, dict]  # journey -> {"start", "kind", "first", "last"} (first/last: write indices)

    def rows_by_source(self) -> dict[str, int]:
        out = dict.fromkeys(SOURCES, 0)
        for w in self.writes:
            out[w.source] += w.rows
        return out

    def fault_counts(self) -> dict[str, int]:
        out = dict.fromkeys(FAULT_KINDS, 0)
        for f in self.faults:
            out[f.kind] += 1
        return out


@dataclass(frozen=True)
class _Company:
    name: str
    domain: str
    country: str
    currency: str
    tax_id: str
    city: str
    postal: str
    mail_domain: str


@dataclass
class _Knobs:
    """How a won journey departs from the healthy path (all defaults: healthy, extras chosen at random)."""

    healthy: bool = True
    pre_customers: bool = False  # billing and ERP customers exist before the deal (a returning customer)
    hold_before_won: bool = False  # ERP credit hold set before the opportunity is won
    parent_account: str | None = None
    skip_subscription: bool = False
    skip_order: bool = False
    skip_invoice: bool = False
    skip_posting: bool = False
    posting_override: tuple[Decimal, str] | None = None  # (amount, currency) posted instead of the invoice's
    invoice_override: tuple[Decimal, str] | None = None  # (amount, currency) invoiced instead of the order's
    billing_name: str | None = None
    erp_overrides: dict = field(default_factory=dict)  # name / country / tax_id the ERP customer gets instead
    payment_plan: str | None = None  # None: a healthy plan at random
    payer_customer: str | None = None  # for payment_plan "foreign_payer"
    after: str | None = None  # amend | cancel | amend_unpropagated | cancel_order_active | none


def _money(cents: int) -> Decimal:
    return (Decimal(cents) / 100).quantize(CENT)


def _typo(name: str) -> str:
    """A realistic misspelling: the third letter of the first word dropped ("Kestrel" -> "Kesrel")."""
    first, _, rest = name.partition(" ")
    return f"{first[:2]}{first[3:]} {rest}".strip()


def _other_tax_id(tax_id: str) -> str:
    """The same tax id with its last digit changed (a keying error)."""
    return tax_id[:-1] + str((int(tax_id[-1]) + 1) % 10)


class _Journey:
    """One customer's writes in time order, and the faults it carries."""

    def __init__(self, n: int, start: float, seed: int, tag: str, max_delay: float, tax_base: int) -> None:
        self.n, self.t, self.tag, self.max_delay, self.tax_base = n, start, tag, max_delay, tax_base
        self.rng = random.Random(seed)
        self.steps: list[tuple[float, str, str, tuple[Statement, ...]]] = []
        self.marks: list[tuple[str, str, tuple, dict, int]] = []  # kind, variant, alerts, details, local step
        self.kind = "won"
        self._k = {"inv": 0, "pay": 0, "re": 0, "ar": 0}

    # ---- time and writes ----
    def step(self, source: str, label: str, *statements: Statement, lo: float = 0.15, hi: float = 1.0) -> int:
        """A transaction after a pause of lo..hi x max_delay (none for the journey's first write)."""
        if self.steps:
            self.t += self.rng.uniform(lo, hi) * self.max_delay
        self.steps.append((self.t, source, label, statements))
        return len(self.steps) - 1

    def mark(self, kind: str, variant: str, alerts: list[tuple[str, str, str]], details: dict, step: int) -> None:
        self.marks.append((kind, variant, tuple(alerts), details, step))

    @property
    def rows(self) -> int:
        return sum(len(s[3]) for s in self.steps)

    # ---- ids (CHECK patterns of the schemas) ----
    def acc(self, suffix: str = "") -> str:
        return f"ACC-S{self.tag}-{self.n:05d}{suffix}"

    def opp(self, suffix: str = "") -> str:
        return f"OPP-S{self.tag}-{self.n:05d}{suffix}"

    def cus(self, suffix: str = "") -> str:
        return f"cus_s{self.tag}_{self.n:05d}{suffix}"

    def sub(self, suffix: str = "") -> str:
        return f"sub_s{self.tag}_{self.n:05d}{suffix}"

    def cno(self) -> str:
        return f"C-{self.tag}-{self.n:05d}"

    def so(self) -> str:
        return f"SO-{self.tag}-{self.n:05d}"

    def next_inv(self) -> str:
        self._k["inv"] += 1
        return f"in_s{self.tag}_{self.n:05d}_{self._k['inv']}"

    def next_pay(self) -> str:
        self._k["pay"] += 1
        return f"py_s{self.tag}_{self.n:05d}_{self._k['pay']}"

    def next_refund(self) -> str:
        self._k["re"] += 1
        return f"re_s{self.tag}_{self.n:05d}_{self._k['re']}"

    def next_ar(self) -> str:
        self._k["ar"] += 1
        return f"AR-{self.tag}-{self.n:05d}-{self._k['ar']}"

    # Ids of records that never appear: shapes the healthy generator never produces.
    def ghost(self, entity: str) -> str:
        return {
            "account": f"ACC-S{self.tag}-{self.n:05d}X",
            "opportunity": f"OPP-S{self.tag}-{self.n:05d}X",
            "billing_customer": f"cus_s{self.tag}_{self.n:05d}x",
            "subscription": f"sub_s{self.tag}_{self.n:05d}x",
            "invoice": f"in_s{self.tag}_{self.n:05d}_x",
            "erp_customer": f"C-{self.tag}-{self.n:05d}-0",
            "sales_order": f"SO-{self.tag}-{self.n:05d}-0",
        }[entity]

    def fix_id(self, prefix: str) -> str:
        """Ids fix() writes with (a repair's own records)."""
        return {"py": f"py_s{self.tag}_{self.n:05d}_fix", "re": f"re_s{self.tag}_{self.n:05d}_fix"}[prefix]

    # ---- realistic reference data ----
    def company(self, slot: int = 0) -> _Company:
        """A company; slot 0 is the journey's customer, 1 a parent, 2 a second company (unique domain and tax id)."""
        rng = self.rng
        country = rng.choice(COUNTRY_CODES)
        currency, tld, legal, cities = COUNTRIES[country]
        a, b = rng.choice(NAME_A), rng.choice(NAME_B)
        slug = f"{a}{b}".lower()
        suffix = ("", "grp", "hq")[slot]
        domain = f"{slug}{suffix}-{self.tag}x{self.n}.{tld}"
        style = rng.random()
        if style < 0.1:
            domain = "www." + domain  # CRM users paste URLs; normalised, it is the same domain
        elif style < 0.15:
            domain = domain.capitalize()
        digits = f"{(self.tax_base + self.n * 4 + slot) % 10**9:09d}"
        tax_id = f"{digits[:2]}-{digits[2:]}" if country == "US" else f"{country}{digits}"
        city, postal = rng.choice(cities)
        return _Company(f"{a} {b} {legal}", domain, country, currency, tax_id, city, postal,
                        f"{slug}{suffix}.{tld}")

    def rep(self) -> str:
        return f"{self.rng.choice(REPS)}@sales.example.com"


# ---- rows ----------------------------------------------------------------------------------------


def _account(j: _Journey, co: _Company, acc: str, status: str, parent: str | None = None, **links) -> Statement:
    return _ins("accounts", id=acc, name=co.name, domain=co.domain, country=co.country, tax_id=co.tax_id,
                status=status, parent_account_id=parent, industry=j.rng.choice(INDUSTRIES), owner_email=j.rep(),
                phone=f"+{j.rng.randint(10, 99)} {j.rng.randint(100, 999)} {j.rng.randint(1000, 9999)}",
                employee_count=j.rng.choice((12, 45, 120, 350, 800, 2500)), billing_city=co.city,
                billing_postal_code=co.postal, **links)


def _opportunity(j: _Journey, opp: str, acc: str, amount: Decimal, currency: str, product: str,
                 name: str, stage: str = "qualification") -> Statement:
    return _ins("opportunities", id=opp, account_id=acc, stage=stage, amount=amount, currency=currency,
                close_date=DUE_30, name=f"{name} - {product}", type="new_business",
                probability={"qualification": 20, "prospecting": 10}.get(stage, 20), owner_email=j.rep(),
                lead_source=j.rng.choice(LEAD_SOURCES))


def _billing_customer(co: _Company, cus: str, acc: str | None, name: str | None = None) -> Statement:
    return _ins("customers", id=cus, crm_account_id=acc, name=name or co.name, email=f"billing@{co.mail_domain}",
                currency=co.currency, address_city=co.city, address_postal_code=co.postal,
                address_country=co.country, description=f"CRM {acc}" if acc else None)


def _erp_customer(co: _Company, cno: str, acc: str | None, **overrides) -> Statement:
    return _ins("customers", customer_no=cno, crm_account_id=acc, name=overrides.get("name", co.name),
                tax_id=overrides.get("tax_id", co.tax_id), country=overrides.get("country", co.country),
                credit_hold=False, subsidiary=f"{co.country} Sales", currency=co.currency,
                payment_terms="net_30", credit_limit=Decimal("250000.00"), email=f"ap@{co.mail_domain}",
                bill_city=co.city, bill_postal_code=co.postal)


def _subscription(sub: str, cus: str, opp: str | None, qty: int, unit: Decimal, currency: str,
                  product: tuple) -> Statement:
    name, price_id, _, _, interval = product
    return _ins("subscriptions", id=sub, customer_id=cus, crm_opportunity_id=opp, quantity=qty, unit_amount=unit,
                currency=currency, status="active", price_id=price_id, product_name=name,
                billing_interval=interval, current_period_start=NOW, current_period_end=PERIOD_END[interval])


def _order(j: _Journey, so: str, cno: str, opp: str | None, sub: str | None, total: Decimal,
           currency: str, country: str) -> Statement:
    return _ins("sales_orders", order_no=so, customer_no=cno, crm_opportunity_id=opp,
                billing_subscription_id=sub, total_amount=total, currency=currency,
                status="pending_fulfillment", po_number=f"PO-{j.rng.randint(10000, 99999)}",
                subsidiary=f"{country} Sales", memo="Created from CRM opportunity" if opp else "Manual order")


def _invoice(inv: str, cus: str, sub: str | None, so: str | None, amount: Decimal, currency: str,
             due: _Expr = DUE_30) -> Statement:
    return _ins("invoices", id=inv, customer_id=cus, subscription_id=sub, erp_order_no=so, amount_due=amount,
                amount_paid=Decimal("0.00"), currency=currency, status="open", number=inv.upper().replace("_", "-"),
                issued_at=NOW, due_date=due, period_start=NOW, period_end=PERIOD_END["month"])


def _posting(ar: str, inv: str, so: str | None, cno: str, amount: Decimal, currency: str) -> Statement:
    return _ins("ar_postings", id=ar, invoice_ref=inv, order_no=so, customer_no=cno, amount=amount,
                currency=currency, entry_type="invoice", document_no=f"INV{ar[3:].replace('-', '')}",
                due_date=DUE_30, memo=f"Billing invoice {inv}")


def _charge(pid: str, inv: str, cus: str, amount: Decimal, currency: str, method: str,
            status: str = "succeeded", failure: tuple[str, str] | None = None) -> Statement:
    return _ins("payments", id=pid, invoice_id=inv, customer_id=cus, amount=amount, currency=currency,
                status=status, kind="charge", payment_method=method,
                paid_at=NOW if status == "succeeded" else None,
                failure_code=failure[0] if failure else None, failure_message=failure[1] if failure else None,
                description=f"Payment for invoice {inv}")


def _refund(rid: str, inv: str, cus: str, amount: Decimal, currency: str, charge: str) -> Statement:
    return _ins("payments", id=rid, invoice_id=inv, customer_id=cus, amount=amount, currency=currency,
                status="succeeded", kind="refund", refunded_payment_id=charge, paid_at=NOW,
                description=f"Refund of {charge}")


def _invoice_paid(inv: str, paid: Decimal, status: str) -> Statement:
    if status == "paid":
        return _upd("invoices", "id", inv, amount_paid=paid, status="paid", paid_at=NOW)
    return _upd("invoices", "id", inv, amount_paid=paid, status=status, paid_at=None)


def _consistent_status(paid: Decimal, due: Decimal) -> str:
    return "paid" if paid >= due else "open"


def _share(amount: Decimal, low: float, high: float, rng: random.Random) -> Decimal:
    """A part of amount strictly between 0 and amount (to the cent)."""
    cents = int(amount * 100)
    part = int(cents * rng.uniform(low, high))
    return _money(min(max(part, 1), cents - 1))


# ---------------------------------------------------------------------------------------------------
# The planner
# ---------------------------------------------------------------------------------------------------


class _Planner:
    def __init__(self, seed: int, rate: float, duration_s: float, faults: float, max_delay_s: float) -> None:
        if rate <= 0:
            raise SimulatorError(f"rate must be positive, got {rate}")
        if duration_s < 0:
            raise SimulatorError(f"duration must not be negative, got {duration_s}")
        if not 0 <= faults <= 1:
            raise SimulatorError(f"fault rate must be between 0 and 1, got {faults}")
        if max_delay_s < 0:
            raise SimulatorError(f"max delay must not be negative, got {max_delay_s}")
        self.seed, self.rate, self.duration_s, self.faults, self.max_delay_s = (
            seed, rate, duration_s, faults, max_delay_s)
        self.tag = str(seed % 10**10)
        self.rng = random.Random(f"trueup-simulator/{seed}")
        self.tax_base = self.rng.randrange(10**9)
        self.kind_order = list(FAULT_KINDS)
        self.rng.shuffle(self.kind_order)
        self.variant_order = {}
        for kind in FAULT_KINDS:
            variants = list(VARIANTS[kind])
            self.rng.shuffle(variants)
            self.variant_order[kind] = variants
        self.variant_used = dict.fromkeys(FAULT_KINDS, 0)

    def plan(self) -> Plan:
        journeys: list[_Journey] = []
        t, n, injected = 0.0, 0, 0
        kinds = len(FAULT_KINDS)
        # Every kind once within the first half of the run: fault number i (i < kinds) is forced on the
        # first journey starting at or after i/kinds of that window, if chance has not brought it already.
        cover_window = 0.5 * self.duration_s
        while t < self.duration_s:
            n += 1
            journey_seed = self.rng.getrandbits(64)
            chance = self.rng.random()
            forced = injected < kinds and t >= injected * cover_window / kinds
            j = _Journey(n, t, journey_seed, self.tag, self.max_delay_s, self.tax_base)
            if self.faults > 0 and (forced or chance < self.faults):
                kind = self.kind_order[injected % kinds]
                variants = self.variant_order[kind]
                variant = variants[self.variant_used[kind] % len(variants)]
                self.variant_used[kind] += 1
                injected += 1
                j.kind = kind
                getattr(self, f"_fault_{kind}")(j, variant)
                assert len(j.marks) == 1, kind
            elif j.rng.random() < 0.2:
                j.kind = "lost"
                self._lost(j)
            else:
                self._won(j, _Knobs())
            journeys.append(j)
            t += max(j.rows, 1) / self.rate * self.rng.uniform(0.5, 1.5)
        return self._assemble(journeys)

    def _assemble(self, journeys: list[_Journey]) -> Plan:
        order = []
        for j in journeys:
            for local, (at, source, label, stmts) in enumerate(j.steps):
                order.append((at, j.n, local, source, label, stmts))
        order.sort(key=lambda x: (x[0], x[1], x[2]))
        writes: list[Write] = []
        where: dict[tuple[int, int], int] = {}
        info: dict[int, dict] = {j.n: {"start": j.steps[0][0], "kind": j.kind} for j in journeys}
        for index, (at, jn, local, source, label, stmts) in enumerate(order):
            writes.append(Write(round(at, 6), source, label, stmts, jn))
            where[(jn, local)] = index
            info[jn].setdefault("first", index)
            info[jn]["last"] = index
        faults = []
        for j in journeys:
            for kind, variant, alerts, details, local in j.marks:
                index = where[(j.n, local)]
                faults.append(PlannedFault(len(faults), kind, variant, j.n, index, writes[index].at, alerts,
                                           details))
        faults.sort(key=lambda f: (f.write, f.index))
        faults = [PlannedFault(i, f.kind, f.variant, f.journey, f.write, f.at, f.alerts, f.details)
                  for i, f in enumerate(faults)]
        return Plan(self.seed, self.rate, self.duration_s, self.faults, self.max_delay_s, self.tag, writes,
                    faults, info)

    # ---- healthy journeys --------------------------------------------------------------------------

    def _lost(self, j: _Journey, co: _Company | None = None) -> dict:
        """A deal that is lost: the account stays a prospect, nothing reaches billing or ERP."""
        co = co or j.company()
        acc, opp = j.acc(), j.opp()
        product = j.rng.choice(PRODUCTS)
        amount = (_money(j.rng.randint(product[2], product[3])) * j.rng.randint(1, 30)).quantize(CENT)
        j.step("crm", "account.create", _account(j, co, acc, "prospect"),
               _opportunity(j, opp, acc, amount, co.currency, product[0], co.name))
        if j.rng.random() < 0.6:
            j.step("crm", "opportunity.stage", _upd("opportunities", "id", opp, stage="proposal", probability=50))
        j.step("crm", "opportunity.closed_lost",
               _upd("opportunities", "id", opp, stage="closed_lost", probability=0, close_date=TODAY))
        return {"account": acc, "opportunity": opp, "company": co}

    def _won(self, j: _Journey, k: _Knobs, co: _Company | None = None) -> dict:
        """The quote-to-cash path of a won deal; the knobs make the departures faults need."""
        rng = j.rng
        co = co or j.company()
        acc, opp, cus, sub, cno, so = j.acc(), j.opp(), j.cus(), j.sub(), j.cno(), j.so()
        product = rng.choice(PRODUCTS)
        unit = _money(rng.randint(product[2], product[3]))
        qty = rng.randint(1, 40)
        total = (unit * qty).quantize(CENT)
        cur = co.currency
        r: dict[str, Any] = {"company": co, "account": acc, "opportunity": opp, "billing_customer": cus,
                             "subscription": sub, "erp_customer": cno, "sales_order": so, "unit": unit,
                             "quantity": qty, "total": total, "currency": cur, "product": product,
                             "invoices": [], "steps": {}}
        steps = r["steps"]
        steps["account"] = j.step(
            "crm", "account.create",
            _account(j, co, acc, "active" if k.pre_customers else "prospect", k.parent_account),
            _opportunity(j, opp, acc, total, cur, product[0], co.name))
        if k.pre_customers:
            # A returning customer: billing and ERP already know it before this deal is won.
            steps["billing_customer"] = j.step("billing", "billing.onboard", _billing_customer(co, cus, acc))
            steps["erp_customer"] = j.step("erp", "erp.onboard", _erp_customer(co, cno, acc))
            j.step("crm", "account.link", _upd("accounts", "id", acc, billing_customer_id=cus, erp_customer_no=cno))
            if k.hold_before_won:
                steps["hold"] = j.step("erp", "erp_customer.credit_hold",
                                       _upd("customers", "customer_no", cno, credit_hold=True))
        for stage, probability in (("proposal", 50), ("negotiation", 75)):
            if rng.random() < 0.7:
                j.step("crm", "opportunity.stage",
                       _upd("opportunities", "id", opp, stage=stage, probability=probability))
        steps["won"] = j.step(
            "crm", "opportunity.closed_won",
            _upd("opportunities", "id", opp, stage="closed_won", probability=100, close_date=TODAY),
            _upd("accounts", "id", acc, status="active"))
        # Billing provisions the deal; ERP books the order for the subscription once it exists; then CRM
        # learns both customer ids (so no link ever points at a record that is not there yet). The order
        # follows the won deal within two delays.
        billing = []
        if not k.pre_customers:
            billing.append(_billing_customer(co, cus, acc, k.billing_name))
        if not k.skip_subscription:
            billing.append(_subscription(sub, cus, opp, qty, unit, cur, product))
        if billing:
            steps["billing"] = j.step("billing", "billing.provision", *billing)
        erp = []
        if not k.pre_customers:
            erp.append(_erp_customer(co, cno, acc, **k.erp_overrides))
        if not k.skip_order:
            erp.append(_order(j, so, cno, opp, None if k.skip_subscription else sub, total, cur, co.country))
        if erp:
            steps["erp"] = j.step("erp", "erp.book", *erp)
        if not k.pre_customers:
            j.step("crm", "account.link", _upd("accounts", "id", acc, billing_customer_id=cus, erp_customer_no=cno))
        if k.skip_invoice:
            return r
        # One invoice for the order, or (some healthy deals) a schedule of two installments issued together
        # in one billing transaction and posted together, so the invoices naming the order never sum to
        # less than its total, not even for a moment.
        installments = [total]
        if k.healthy and rng.random() < 0.15 and total >= Decimal("2.00"):
            first = (total / 2).quantize(CENT)
            installments = [first, total - first]
        label = "invoice.installments" if len(installments) > 1 else "invoice.issue"
        issued, posted = [], []
        for number, amount in enumerate(installments):
            inv, ar = j.next_inv(), j.next_ar()
            inv_amount, inv_cur = k.invoice_override or (amount, cur)
            due = _Expr(f"CURRENT_DATE + {30 * (number + 1)}")
            issued.append(_invoice(inv, cus, sub, so, inv_amount, inv_cur, due))
            r["invoices"].append({"id": inv, "amount": inv_amount, "currency": inv_cur, "posting": ar})
            post_amount, post_cur = k.posting_override or (inv_amount, inv_cur)
            posted.append(_posting(ar, inv, so, cno, post_amount, post_cur))
        step = j.step("billing", label, *issued)
        for record in r["invoices"]:
            record["step"] = step
        if not k.skip_posting:
            step = j.step("erp", "ar_posting.post", *posted, _upd("sales_orders", "order_no", so, status="billed"))
            for record in r["invoices"]:
                record["posting_step"] = step
        for record in r["invoices"]:
            plan = k.payment_plan or self._healthy_payment_plan(rng)
            self._payments(j, r, record, plan, k)
        after = k.after
        if after is None:
            roll = rng.random()
            after = "amend" if roll < 0.15 else "cancel" if roll < 0.23 else "none"
        if after == "amend":
            self._amend(j, r)
        elif after == "cancel":
            # Churn: ERP closes the order first, then billing cancels (the other order would leave a
            # canceled subscription beside an active order for a moment).
            j.step("erp", "sales_order.close", _upd("sales_orders", "order_no", so, status="closed"))
            j.step("billing", "subscription.cancel",
                   _upd("subscriptions", "id", sub, status="canceled", canceled_at=NOW))
        elif after == "amend_unpropagated":
            extra = rng.randint(1, 5)
            r["amended_quantity"] = qty + extra
            steps["after"] = j.step("billing", "subscription.amend",
                                    _upd("subscriptions", "id", sub, quantity=qty + extra))
        elif after == "cancel_order_active":
            steps["after"] = j.step("billing", "subscription.cancel",
                                    _upd("subscriptions", "id", sub, status="canceled", canceled_at=NOW))
        return r

    @staticmethod
    def _healthy_payment_plan(rng: random.Random) -> str:
        roll = rng.random()
        for plan, cumulative in (("unpaid", 0.15), ("full", 0.55), ("partial", 0.75), ("failed_then_full", 0.85),
                                 ("pending_debit", 0.92), ("refund", 1.0)):
            if roll < cumulative:
                return plan
        return "full"

    def _payments(self, j: _Journey, r: dict, record: dict, plan: str, k: _Knobs) -> None:
        """Payments for one invoice; the invoice's amount_paid always equals net paid, and healthy plans keep
        status 'paid' exactly when net paid >= amount_due."""
        rng = j.rng
        inv, due, cur, cus = record["id"], record["amount"], record["currency"], r["billing_customer"]
        method = rng.choice(CARD_METHODS)
        if plan == "unpaid":
            return
        if plan == "full":
            pid = j.next_pay()
            j.step("billing", "payment.charge", _charge(pid, inv, cus, due, cur, method),
                   _invoice_paid(inv, due, "paid"))
        elif plan == "partial":
            part = _share(due, 0.3, 0.7, rng)
            j.step("billing", "payment.partial", _charge(j.next_pay(), inv, cus, part, cur, method),
                   _invoice_paid(inv, part, "open"))
            j.step("billing", "payment.charge", _charge(j.next_pay(), inv, cus, due - part, cur, method),
                   _invoice_paid(inv, due, "paid"))
        elif plan == "failed_then_full":
            j.step("billing", "payment.failed",
                   _charge(j.next_pay(), inv, cus, due, cur, "card", "failed", rng.choice(FAILURES)))
            j.step("billing", "payment.charge", _charge(j.next_pay(), inv, cus, due, cur, method),
                   _invoice_paid(inv, due, "paid"))
        elif plan == "pending_debit":
            pid = j.next_pay()
            j.step("billing", "payment.pending", _charge(pid, inv, cus, due, cur, rng.choice(DEBIT_METHODS), "pending"))
            j.step("billing", "payment.settle", _upd("payments", "id", pid, status="succeeded", paid_at=NOW),
                   _invoice_paid(inv, due, "paid"))
        elif plan == "refund":
            pid = j.next_pay()
            j.step("billing", "payment.charge", _charge(pid, inv, cus, due, cur, method),
                   _invoice_paid(inv, due, "paid"))
            full = rng.random() < 0.4
            back = due if full else _share(due, 0.1, 0.5, rng)
            stmts = [_refund(j.next_refund(), inv, cus, back, cur, pid)]
            if full:
                stmts.append(_upd("payments", "id", pid, status="refunded"))
            stmts.append(_invoice_paid(inv, due - back, _consistent_status(due - back, due)))
            j.step("billing", "payment.refund", *stmts)
            if rng.random() < 0.5:  # the customer settles again
                j.step("billing", "payment.charge", _charge(j.next_pay(), inv, cus, back, cur, method),
                       _invoice_paid(inv, due, "paid"))
        # ---- faults (see the builders for why each looks the way it does) ----
        elif plan == "paid_but_underpaid":
            part = _share(due, 0.3, 0.8, rng)
            pid = j.next_pay()
            record["fault_step"] = j.step("billing", "payment.partial", _charge(pid, inv, cus, part, cur, method),
                                          _invoice_paid(inv, part, "paid"))
            record["remainder"] = due - part
        elif plan == "fully_paid_but_open":
            record["fault_step"] = j.step("billing", "payment.charge",
                                          _charge(j.next_pay(), inv, cus, due, cur, method),
                                          _invoice_paid(inv, due, "open"))
        elif plan == "overpaid":
            j.step("billing", "payment.charge", _charge(j.next_pay(), inv, cus, due, cur, method),
                   _invoice_paid(inv, due, "paid"))
            extra = due if rng.random() < 0.5 else _share(due, 0.05, 0.5, rng)
            dup = j.next_pay()
            record["fault_step"] = j.step("billing", "payment.duplicate", _charge(dup, inv, cus, extra, cur, method),
                                          _invoice_paid(inv, due + extra, "paid"))
            record["duplicate"], record["extra"] = dup, extra
        elif plan == "orphan":
            pid = j.next_pay()
            record["fault_step"] = j.step("billing", "payment.orphan",
                                          _charge(pid, j.ghost("invoice"), cus, due, cur, method))
            record["orphan"] = pid
        elif plan == "foreign_payer":
            pid = j.next_pay()
            record["fault_step"] = j.step("billing", "payment.foreign_payer",
                                          _charge(pid, inv, k.payer_customer, due, cur, "wire"),
                                          _invoice_paid(inv, due, "paid"))
            record["payment"] = pid
        else:
            raise ValueError(f"unknown payment plan {plan!r}")

    def _amend(self, j: _Journey, r: dict) -> None:
        """An upsell: billing raises the quantity and invoices the difference against the same order in one
        transaction; ERP follows (one delay later) with the order total and the posting of that invoice.
        Until ERP follows, the sources briefly disagree (subscription vs order total, invoices vs order
        total): the one healthy window of that kind, and what the spec describes as an amendment."""
        rng = j.rng
        extra = rng.randint(1, 5)
        sub, so, cus, cno = r["subscription"], r["sales_order"], r["billing_customer"], r["erp_customer"]
        cur = r["currency"]
        new_qty = r["quantity"] + extra
        delta = (r["unit"] * extra).quantize(CENT)
        inv, ar = j.next_inv(), j.next_ar()
        j.step("billing", "subscription.amend", _upd("subscriptions", "id", sub, quantity=new_qty),
               _invoice(inv, cus, sub, so, delta, cur))
        j.step("erp", "sales_order.amend",
               _upd("sales_orders", "order_no", so, total_amount=(r["unit"] * new_qty).quantize(CENT)),
               _posting(ar, inv, so, cno, delta, cur))
        if rng.random() < 0.6:
            j.step("billing", "payment.charge", _charge(j.next_pay(), inv, cus, delta, cur, "card"),
                   _invoice_paid(inv, delta, "paid"))

    # ---- faults --------------------------------------------------------------------------------------
    # Each builder writes one journey that carries exactly one fault and marks the write that makes it
    # true. Records a fault takes away are not replaced by anything else that could point at them.

    def _fault_opportunity_without_subscription(self, j: _Journey, variant: str) -> None:
        # Won deal; billing onboards the customer but never creates the subscription. ERP still books the
        # order (else opportunity_without_sales_order too) with no billing_subscription_id (a link to a
        # subscription that never appears would be a dangling_reference). No invoice: it would name the
        # missing subscription, and an order no invoice names is not compared with invoices.
        r = self._won(j, _Knobs(healthy=False, skip_subscription=True, skip_invoice=True))
        j.mark("opportunity_without_subscription", variant,
               [("opportunity_without_subscription", "opportunity", r["opportunity"])],
               {"opportunity": r["opportunity"], "subscription": r["subscription"],
                "billing_customer": r["billing_customer"], "sales_order": r["sales_order"],
                "quantity": r["quantity"], "unit_amount": str(r["unit"]), "currency": r["currency"],
                "product": list(r["product"])}, r["steps"]["won"])

    def _fault_opportunity_without_sales_order(self, j: _Journey, variant: str) -> None:
        # Won deal with its subscription; ERP onboards the customer but never books the order. No invoice:
        # it would name the missing order (dangling_reference). A subscription without an order of its
        # opportunity is not compared with anything.
        r = self._won(j, _Knobs(healthy=False, skip_order=True, skip_invoice=True))
        j.mark("opportunity_without_sales_order", variant,
               [("opportunity_without_sales_order", "opportunity", r["opportunity"])],
               {"opportunity": r["opportunity"], "sales_order": r["sales_order"], "erp_customer": r["erp_customer"],
                "subscription": r["subscription"], "total": str(r["total"]), "currency": r["currency"],
                "country": r["company"].country}, r["steps"]["won"])

    def _fault_invoice_not_posted(self, j: _Journey, variant: str) -> None:
        # One invoice that never reaches ERP (so the order is never marked billed either); payments are
        # healthy, the invoice total still matches the order.
        r = self._won(j, _Knobs(healthy=False, skip_posting=True, after="none"))
        inv = r["invoices"][0]
        j.mark("invoice_not_posted", variant, [("invoice_not_posted", "invoice", inv["id"])],
               {"invoice": inv["id"], "posting": inv["posting"], "sales_order": r["sales_order"],
                "erp_customer": r["erp_customer"], "amount": str(inv["amount"]), "currency": inv["currency"]},
               inv["step"])

    def _fault_posting_mismatch(self, j: _Journey, variant: str) -> None:
        # The posting exists (so not invoice_not_posted) but ERP booked it net of VAT, or in another
        # currency; the invoice itself matches the order and its payments.
        co = j.company()
        if variant == "amount":
            def posted(amount: Decimal, currency: str) -> tuple[Decimal, str]:
                return (amount / Decimal("1.19")).quantize(CENT, ROUND_HALF_UP), currency
        else:
            def posted(amount: Decimal, currency: str) -> tuple[Decimal, str]:
                return amount, "USD" if currency != "USD" else "EUR"
        # The override needs the invoice amount, known only once the deal is priced: price first.
        r = self._won_with(j, co, lambda total, cur: _Knobs(healthy=False, posting_override=posted(total, cur),
                                                            after="none"))
        inv = r["invoices"][0]
        j.mark("posting_mismatch", variant, [("posting_mismatch", "invoice", inv["id"])],
               {"invoice": inv["id"], "posting": inv["posting"], "amount": str(inv["amount"]),
                "currency": inv["currency"]}, inv["posting_step"])

    def _fault_order_invoice_total_mismatch(self, j: _Journey, variant: str) -> None:
        # Billing invoices a discounted amount (or in another currency) against the order; the posting
        # mirrors the invoice (no posting_mismatch), the subscription still matches the order (no
        # subscription_order_mismatch), and the invoice stays unpaid so its status is consistent.
        co = j.company()
        if variant == "amount":
            def invoiced(total: Decimal, currency: str) -> tuple[Decimal, str]:
                return (total * Decimal("0.9")).quantize(CENT, ROUND_HALF_UP), currency
        else:
            def invoiced(total: Decimal, currency: str) -> tuple[Decimal, str]:
                return total, "USD" if currency != "USD" else "EUR"
        r = self._won_with(j, co, lambda total, cur: _Knobs(healthy=False, invoice_override=invoiced(total, cur),
                                                            payment_plan="unpaid", after="none"))
        inv = r["invoices"][0]
        j.mark("order_invoice_total_mismatch", variant,
               [("order_invoice_total_mismatch", "sales_order", r["sales_order"])],
               {"sales_order": r["sales_order"], "invoice": inv["id"], "posting": inv["posting"],
                "total": str(r["total"]), "currency": r["currency"]}, inv["step"])

    def _fault_orphan_payment(self, j: _Journey, variant: str) -> None:
        # The customer's payment is recorded against a mistyped invoice id that never exists. The real
        # invoice stays open and unpaid, which is consistent (no invoice_status_mismatch); the payment's
        # customer is real (the FK demands it) and matches the real invoice's.
        r = self._won(j, _Knobs(healthy=False, payment_plan="orphan", after="none"))
        inv = r["invoices"][0]
        j.mark("orphan_payment", variant, [("orphan_payment", "payment", inv["orphan"])],
               {"payment": inv["orphan"], "ghost_invoice": j.ghost("invoice"), "invoice": inv["id"],
                "amount": str(inv["amount"]), "currency": inv["currency"]}, inv["fault_step"])

    def _fault_payment_customer_mismatch(self, j: _Journey, variant: str) -> None:
        # The parent company pays its subsidiary's invoice from its own billing customer. The parent is a
        # healthy account with its own billing customer; the invoice is paid in full and marked paid, so
        # only the payer differs.
        parent_co = j.company(slot=1)
        parent, parent_cus = j.acc("P"), j.cus("p")
        j.step("crm", "account.create", _account(j, parent_co, parent, "active"))
        j.step("billing", "billing.onboard", _billing_customer(parent_co, parent_cus, parent))
        j.step("crm", "account.link_billing", _upd("accounts", "id", parent, billing_customer_id=parent_cus))
        r = self._won(j, _Knobs(healthy=False, parent_account=parent, payment_plan="foreign_payer",
                                payer_customer=parent_cus, after="none"))
        inv = r["invoices"][0]
        j.mark("payment_customer_mismatch", variant, [("payment_customer_mismatch", "payment", inv["payment"])],
               {"payment": inv["payment"], "invoice": inv["id"], "customer": r["billing_customer"],
                "payer": parent_cus}, inv["fault_step"])

    def _fault_invoice_status_mismatch(self, j: _Journey, variant: str) -> None:
        # amount_paid always equals the net of the payments; only the status (or an overpayment) is wrong.
        r = self._won(j, _Knobs(healthy=False, payment_plan=variant, after="none"))
        inv = r["invoices"][0]
        details = {"invoice": inv["id"], "amount_due": str(inv["amount"]), "currency": inv["currency"],
                   "customer": r["billing_customer"]}
        if variant == "paid_but_underpaid":
            details.update(remainder=str(inv["remainder"]), fix_payment=j.fix_id("py"))
        elif variant == "overpaid":
            details.update(duplicate=inv["duplicate"], extra=str(inv["extra"]), fix_refund=j.fix_id("re"))
        j.mark("invoice_status_mismatch", variant, [("invoice_status_mismatch", "invoice", inv["id"])], details,
               inv["fault_step"])

    def _fault_subscription_order_mismatch(self, j: _Journey, variant: str) -> None:
        # amendment_not_propagated: billing raises the quantity without invoicing the difference (so the
        # invoices still sum to the order total) and ERP never updates the order.
        # canceled_order_active: billing cancels, ERP leaves the order billed.
        after = "amend_unpropagated" if variant == "amendment_not_propagated" else "cancel_order_active"
        r = self._won(j, _Knobs(healthy=False, after=after))
        j.mark("subscription_order_mismatch", variant,
               [("subscription_order_mismatch", "subscription", r["subscription"])],
               {"subscription": r["subscription"], "sales_order": r["sales_order"], "quantity": r["quantity"],
                "amended_quantity": r.get("amended_quantity"), "total": str(r["total"])},
               r["steps"]["after"])

    def _fault_account_attribute_mismatch(self, j: _Journey, variant: str) -> None:
        # One attribute keyed differently when billing or ERP onboards the customer; everything else
        # healthy. A mistyped name / tax id stays unique, so nothing else matches it.
        co = j.company()
        knobs = _Knobs(healthy=False, after="none")
        if variant == "billing_name":
            knobs.billing_name = bad = _typo(co.name)
            source, table, key_col, column, right = "billing", "customers", "id", "name", co.name
        else:
            column = variant.removeprefix("erp_")
            right = getattr(co, column)
            if column == "name":
                bad = _typo(co.name)
            elif column == "country":
                bad = j.rng.choice([c for c in COUNTRY_CODES if c != co.country])
            else:
                bad = _other_tax_id(co.tax_id)
            knobs.erp_overrides = {column: bad}
            source, table, key_col = "erp", "customers", "customer_no"
        r = self._won(j, knobs, co)
        key = r["billing_customer"] if source == "billing" else r["erp_customer"]
        j.mark("account_attribute_mismatch", variant, [("account_attribute_mismatch", "account", r["account"])],
               {"account": r["account"], "source": source, "table": table, "key_column": key_col, "key": key,
                "column": column, "crm_value": right, "bad_value": bad},
               r["steps"]["billing" if source == "billing" else "erp"])

    def _fault_duplicate_account(self, j: _Journey, variant: str) -> None:
        # A healthy customer journey, then a sales rep creates the same company again as a prospect with
        # an open opportunity: same domain written differently ("www.", capitals), or same tax id under
        # another domain. The duplicate has no billing or ERP customer and nothing won, so it is otherwise
        # healthy.
        co = j.company()
        r = self._won(j, _Knobs(healthy=False, after="none"), co)
        dup, dup_opp = j.acc("D"), j.opp("D")
        other = j.company(slot=2)
        bare = co.domain.lower().removeprefix("www.")
        if variant == "domain":
            domain = bare.capitalize() if co.domain.lower().startswith("www.") else "www." + bare.capitalize()
            twin = _Company(co.name.rsplit(" ", 1)[0], domain, co.country, co.currency, other.tax_id, co.city,
                            co.postal, other.mail_domain)
        else:
            twin = _Company(co.name.rsplit(" ", 1)[0], other.domain.lower().removeprefix("www."), co.country,
                            co.currency, co.tax_id, co.city, co.postal, other.mail_domain)
        step = j.step("crm", "account.create_duplicate", _account(j, twin, dup, "prospect"),
                      _opportunity(j, dup_opp, dup, r["total"], co.currency, r["product"][0], twin.name))
        j.mark("duplicate_account", variant,
               [("duplicate_account", "account", r["account"]), ("duplicate_account", "account", dup)],
               {"account": r["account"], "duplicate": dup, "duplicate_opportunity": dup_opp,
                "domain": twin.domain, "tax_id": twin.tax_id}, step)

    def _fault_credit_hold_violation(self, j: _Journey, variant: str) -> None:
        co = j.company()
        if variant == "opportunity":
            # A returning customer already on credit hold in ERP wins a new deal. Billing and ERP still
            # provision it (no SLA alert) but billing holds the invoice: an invoice would be a second
            # credit_hold_violation. An order no invoice names is not compared with invoices.
            r = self._won(j, _Knobs(healthy=False, pre_customers=True, hold_before_won=True, skip_invoice=True), co)
            j.mark("credit_hold_violation", variant, [("credit_hold_violation", "opportunity", r["opportunity"])],
                   {"erp_customer": r["erp_customer"], "opportunity": r["opportunity"], "account": r["account"]},
                   r["steps"]["won"])
            return
        # An existing customer (no opportunity in CRM, so no closed_won to confuse the rule) goes on credit
        # hold, then billing issues a one-off services invoice anyway (no subscription, no order: nothing to
        # compare it with), which ERP posts in full. The invoice stays unpaid (consistent).
        acc, cus, cno = j.acc(), j.cus(), j.cno()
        inv, ar = j.next_inv(), j.next_ar()
        amount = _money(j.rng.randint(50_000, 900_000))
        j.step("crm", "account.create", _account(j, co, acc, "active"))
        j.step("billing", "billing.onboard", _billing_customer(co, cus, acc))
        j.step("erp", "erp.onboard", _erp_customer(co, cno, acc))
        j.step("crm", "account.link", _upd("accounts", "id", acc, billing_customer_id=cus, erp_customer_no=cno))
        j.step("erp", "erp_customer.credit_hold", _upd("customers", "customer_no", cno, credit_hold=True))
        step = j.step("billing", "invoice.issue", _invoice(inv, cus, None, None, amount, co.currency))
        j.step("erp", "ar_posting.post", _posting(ar, inv, None, cno, amount, co.currency))
        j.mark("credit_hold_violation", variant, [("credit_hold_violation", "invoice", inv)],
               {"erp_customer": cno, "invoice": inv, "account": acc}, step)

    def _fault_dangling_reference(self, j: _Journey, variant: str) -> None:
        # Each variant is a small self-contained story whose only problem is the one bad link; the
        # holder carries no other link that could fail, and nothing else points at the ghost.
        holder, _, column = variant.partition(".")
        co = j.company()
        acc, cus, cno = j.acc(), j.cus(), j.cno()
        if holder == "account":
            # A lost deal whose account got a billing id / ERP number pasted in by hand that exists nowhere.
            info = self._lost(j, co)
            target = "billing_customer" if column == "billing_customer_id" else "erp_customer"
            ghost = j.ghost(target)
            step = j.step("crm", "account.link", _upd("accounts", "id", info["account"], **{column: ghost}))
            key = info["account"]
            source, table, key_col = "crm", "accounts", "id"
        elif holder == "billing_customer":
            # A self-serve sign-up carrying the id of a CRM account that does not exist.
            ghost = j.ghost("account")
            step = j.step("billing", "billing.onboard", _billing_customer(co, cus, ghost))
            key, source, table, key_col = cus, "billing", "customers", "id"
        elif holder == "erp_customer":
            ghost = j.ghost("account")
            step = j.step("erp", "erp.onboard", _erp_customer(co, cno, ghost))
            key, source, table, key_col = cno, "erp", "customers", "customer_no"
        elif holder == "subscription":
            # A self-serve subscription quoting an opportunity id that CRM never had; no order, no invoice.
            ghost = j.ghost("opportunity")
            product = j.rng.choice(PRODUCTS)
            sub = j.sub()
            j.step("crm", "account.create", _account(j, co, acc, "active"))
            step = j.step("billing", "billing.provision", _billing_customer(co, cus, acc),
                          _subscription(sub, cus, ghost, j.rng.randint(1, 10),
                                        _money(j.rng.randint(product[2], product[3])), co.currency, product))
            j.step("crm", "account.link_billing", _upd("accounts", "id", acc, billing_customer_id=cus))
            key, source, table, key_col = sub, "billing", "subscriptions", "id"
        elif holder == "sales_order":
            # A manual ERP order naming an opportunity (or subscription) that does not exist; its other
            # link is empty, and no invoice names it.
            so = j.so()
            ghost = j.ghost("opportunity" if column == "crm_opportunity_id" else "subscription")
            total = _money(j.rng.randint(50_000, 900_000))
            j.step("crm", "account.create", _account(j, co, acc, "active"))
            step = j.step("erp", "erp.book", _erp_customer(co, cno, acc),
                          _order(j, so, cno, ghost if column == "crm_opportunity_id" else None,
                                 ghost if column == "billing_subscription_id" else None, total, co.currency,
                                 co.country))
            j.step("crm", "account.link_erp", _upd("accounts", "id", acc, erp_customer_no=cno))
            key, source, table, key_col = so, "erp", "sales_orders", "order_no"
        elif holder == "invoice":
            # A one-off invoice naming an ERP order that does not exist; ERP posts it without an order
            # (posting order_no is empty, so the ERP foreign key holds), the invoice stays unpaid.
            inv, ar = j.next_inv(), j.next_ar()
            ghost = j.ghost("sales_order")
            amount = _money(j.rng.randint(50_000, 900_000))
            j.step("crm", "account.create", _account(j, co, acc, "active"))
            j.step("billing", "billing.onboard", _billing_customer(co, cus, acc))
            j.step("erp", "erp.onboard", _erp_customer(co, cno, acc))
            j.step("crm", "account.link", _upd("accounts", "id", acc, billing_customer_id=cus, erp_customer_no=cno))
            step = j.step("billing", "invoice.issue", _invoice(inv, cus, None, ghost, amount, co.currency))
            j.step("erp", "ar_posting.post", _posting(ar, inv, None, cno, amount, co.currency))
            key, source, table, key_col = inv, "billing", "invoices", "id"
        else:  # pragma: no cover - VARIANTS lists the holders above
            raise ValueError(variant)
        j.mark("dangling_reference", variant, [("dangling_reference", holder, key)],
               {"holder": holder, "key": key, "column": column, "target": ghost, "source": source,
                "table": table, "key_column": key_col}, step)

    def _won_with(self, j: _Journey, co: _Company, knobs_for) -> dict:
        """A won journey whose knobs depend on the deal's total and currency (priced before it is built)."""
        # Price with a copy of the journey's random state so the real build draws the same numbers.
        probe = _Journey(j.n, j.t, 0, j.tag, j.max_delay, j.tax_base)
        probe.rng.setstate(j.rng.getstate())
        probe._k = dict(j._k)
        priced = self._won(probe, _Knobs(healthy=False, after="none"), co)
        return self._won(j, knobs_for(priced["total"], priced["currency"]), co)


def build_plan(seed: int, rate: float, duration_s: float, faults: float, max_delay_s: float = 2.0) -> Plan:
    """Everything a run writes, in order, and the faults it injects: a pure function of its arguments."""
    return _Planner(seed, rate, duration_s, faults, max_delay_s).plan()


# ---------------------------------------------------------------------------------------------------
# Running a plan
# ---------------------------------------------------------------------------------------------------


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class Simulator:
    """Runs a seeded plan of quote-to-cash traffic against the crm, billing and erp databases.

    dsns: {"crm": DSN, "billing": DSN, "erp": DSN}; rate: business changes (row writes) per second overall,
    approximately; duration_s: journeys start during this many seconds; seed: the plan (and the ids, so a
    seed can be written into the same databases once); faults: the share of journeys (0..1) that carry an
    injected fault, every kind at least once in the first half of the run when > 0; max_delay_s: the longest
    pause between two writes of a journey; ground_truth: where to write the ground-truth JSON (rewritten
    atomically as faults complete, and at the end).
    """

    def __init__(self, dsns: Mapping[str, str], rate: float, duration_s: float, seed: int, faults: float,
                 max_delay_s: float = 2.0, ground_truth: Path | str | None = None) -> None:
        missing = [s for s in SOURCES if s not in dsns]
        if missing:
            raise SimulatorError(f"no DSN for source(s) {', '.join(missing)}")
        self.dsns = {s: dsns[s] for s in SOURCES}
        self.rate, self.duration_s, self.seed, self.faults, self.max_delay_s = (
            rate, duration_s, seed, faults, max_delay_s)
        self.ground_truth_path = Path(ground_truth) if ground_truth else None
        self.plan = build_plan(seed, rate, duration_s, faults, max_delay_s)
        self._stop = threading.Event()
        self._drain = True
        self._lock = threading.Lock()
        self._done_faults: list[dict] = []
        self._changes = dict.fromkeys(SOURCES, 0)
        self._started: set[int] = set()
        self._ran = False

    # ---- control ----
    def stop(self, drain: bool = True) -> None:
        """End early (any thread): no new journey starts; with drain (default) the writes left of journeys
        already under way are flushed at once, otherwise nothing more is written."""
        self._drain = drain
        self._stop.set()

    # ---- results ----
    def progress(self) -> dict:
        """Source row changes written so far and faults completed (any thread)."""
        with self._lock:
            return {"changes": sum(self._changes.values()), "faults": len(self._done_faults)}

    def ground_truth(self) -> dict:
        with self._lock:
            faults = list(self._done_faults)
        counts = dict.fromkeys(FAULT_KINDS, 0)
        for f in faults:
            counts[f["kind"]] += 1
        return {"seed": self.seed, "rate": self.rate, "duration_s": self.duration_s, "fault_rate": self.faults,
                "max_delay_s": self.max_delay_s, "faults": faults, "counts": counts}

    def _write_ground_truth(self) -> None:
        if self.ground_truth_path is None:
            return
        path = self.ground_truth_path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.ground_truth(), indent=2) + "\n")
        os.replace(tmp, path)

    # ---- the run ----
    def run(self) -> dict:
        """Write the plan on schedule; return a summary. Blocks until done (or stopped and drained)."""
        import psycopg

        if self._ran:
            raise SimulatorError("a Simulator runs once; create another for a new run")
        self._ran = True
        plan = self.plan
        faults_by_journey: dict[int, list[PlannedFault]] = {}
        for f in plan.faults:
            faults_by_journey.setdefault(f.journey, []).append(f)
        executed_at: dict[int, str] = {}
        conns: dict[str, psycopg.Connection] = {}
        began = time.monotonic()
        try:
            for source in SOURCES:
                conns[source] = psycopg.connect(self.dsns[source], autocommit=True)
            self._refuse_reused_seed(conns["crm"])
            draining = False
            for index, w in enumerate(plan.writes):
                if not draining:
                    if w.at >= self.duration_s or self._stop.is_set():
                        draining = True
                    else:
                        wait = began + w.at - time.monotonic()
                        if wait > 0 and self._stop.wait(wait):
                            draining = True
                if draining and not self._drain:
                    break
                if draining and w.journey not in self._started:
                    continue
                conn = conns[w.source]
                with conn.transaction():
                    for statement, params in w.statements:
                        conn.execute(statement, params)
                with self._lock:
                    self._started.add(w.journey)
                    self._changes[w.source] += w.rows
                executed_at[index] = _now_iso()
                if index == plan.journeys[w.journey]["last"] and w.journey in faults_by_journey:
                    with self._lock:
                        for f in faults_by_journey[w.journey]:
                            self._done_faults.append(f.ground_truth(executed_at[f.write]))
                    self._write_ground_truth()
        finally:
            for conn in conns.values():
                conn.close()
            self._write_ground_truth()
        elapsed = time.monotonic() - began
        truth = self.ground_truth()
        return {
            "seed": self.seed,
            "rate": self.rate,
            "duration_s": self.duration_s,
            "elapsed_s": round(elapsed, 3),
            "stopped_early": self._stop.is_set(),
            "journeys": len(self._started),
            "changes": dict(self._changes),
            "changes_total": sum(self._changes.values()),
            "faults": truth["counts"],
            "faults_total": len(truth["faults"]),
            "ground_truth": str(self.ground_truth_path) if self.ground_truth_path else None,
        }

    def _refuse_reused_seed(self, crm) -> None:
        first = next((w for w in self.plan.writes if w.source == "crm"), None)
        if first is None:
            return
        probe = f"ACC-S{self.plan.tag}-%"
        if crm.execute("SELECT 1 FROM accounts WHERE id LIKE %s LIMIT 1", (probe,)).fetchone():
            raise SimulatorError(
                f"seed {self.seed} was already simulated into this CRM database (accounts {probe} exist); "
                "ids derive from the seed, so choose another seed")


# ---------------------------------------------------------------------------------------------------
# Repairs
# ---------------------------------------------------------------------------------------------------


def fix(conn_by_source: Mapping[str, Any], fault: Mapping[str, Any]) -> None:
    """Repair one injected fault (a ground-truth entry) in the sources so that its alerts resolve.

    conn_by_source maps crm/billing/erp to psycopg connections (or DSNs). Each source's changes are one
    transaction, committed before returning.
    """
    import psycopg

    opened: dict[str, Any] = {}

    def conn(source: str):
        value = conn_by_source[source]
        if isinstance(value, str):
            if source not in opened:
                opened[source] = psycopg.connect(value, autocommit=True)
            return opened[source]
        return value

    def run(source: str, *statements: Statement) -> None:
        c = conn(source)
        with c.transaction():
            for statement, params in statements:
                c.execute(statement, params)
        if not c.autocommit:
            c.commit()

    kind, variant, d = fault["kind"], fault.get("variant"), fault["details"]
    try:
        if kind == "opportunity_without_subscription":
            # Billing creates the subscription the deal called for; ERP links the order to it.
            product = tuple(d["product"])
            run("billing", _subscription(d["subscription"], d["billing_customer"], d["opportunity"], d["quantity"],
                                         Decimal(d["unit_amount"]), d["currency"], product))
            run("erp", _upd("sales_orders", "order_no", d["sales_order"], billing_subscription_id=d["subscription"]))
        elif kind == "opportunity_without_sales_order":
            j = _Journey(0, 0.0, 0, "0", 0.0, 0)
            run("erp", _order(j, d["sales_order"], d["erp_customer"], d["opportunity"], d["subscription"],
                              Decimal(d["total"]), d["currency"], d["country"]))
        elif kind == "invoice_not_posted":
            run("erp", _posting(d["posting"], d["invoice"], d["sales_order"], d["erp_customer"],
                                Decimal(d["amount"]), d["currency"]))
        elif kind == "posting_mismatch":
            run("erp", _upd("ar_postings", "id", d["posting"], amount=Decimal(d["amount"]), currency=d["currency"]))
        elif kind == "order_invoice_total_mismatch":
            # Billing re-issues the amount of the order (the invoice is unpaid); ERP corrects the posting.
            run("billing", _upd("invoices", "id", d["invoice"], amount_due=Decimal(d["total"]), currency=d["currency"]))
            run("erp", _upd("ar_postings", "id", d["posting"], amount=Decimal(d["total"]), currency=d["currency"]))
        elif kind == "orphan_payment":
            # The payment is re-applied to the invoice it was meant for, which becomes paid.
            run("billing", _upd("payments", "id", d["payment"], invoice_id=d["invoice"]),
                _invoice_paid(d["invoice"], Decimal(d["amount"]), "paid"))
        elif kind == "payment_customer_mismatch":
            run("billing", _upd("payments", "id", d["payment"], customer_id=d["customer"]))
        elif kind == "invoice_status_mismatch":
            due = Decimal(d["amount_due"])
            if variant == "paid_but_underpaid":
                run("billing", _charge(d["fix_payment"], d["invoice"], d["customer"], Decimal(d["remainder"]),
                                       d["currency"], "bank_transfer"), _invoice_paid(d["invoice"], due, "paid"))
            elif variant == "fully_paid_but_open":
                run("billing", _invoice_paid(d["invoice"], due, "paid"))
            else:  # overpaid: the duplicate charge is refunded
                extra = Decimal(d["extra"])
                statements = [_refund(d["fix_refund"], d["invoice"], d["customer"], extra, d["currency"],
                                      d["duplicate"])]
                if extra == due:
                    statements.append(_upd("payments", "id", d["duplicate"], status="refunded"))
                statements.append(_invoice_paid(d["invoice"], due, "paid"))
                run("billing", *statements)
        elif kind == "subscription_order_mismatch":
            if variant == "amendment_not_propagated":
                run("billing", _upd("subscriptions", "id", d["subscription"], quantity=d["quantity"]))
            else:
                run("erp", _upd("sales_orders", "order_no", d["sales_order"], status="closed"))
        elif kind == "account_attribute_mismatch":
            run(d["source"], _upd(d["table"], d["key_column"], d["key"], **{d["column"]: d["crm_value"]}))
        elif kind == "duplicate_account":
            # Merge: the duplicate's opportunities move to the surviving account, the duplicate goes.
            run("crm", ("UPDATE opportunities SET account_id = %s WHERE account_id = %s",
                        (d["account"], d["duplicate"])),
                ("DELETE FROM accounts WHERE id = %s", (d["duplicate"],)))
        elif kind == "credit_hold_violation":
            run("erp", _upd("customers", "customer_no", d["erp_customer"], credit_hold=False))
        elif kind == "dangling_reference":
            run(d["source"], _upd(d["table"], d["key_column"], d["key"], **{d["column"]: None}))
        else:
            raise SimulatorError(f"unknown fault kind {kind!r}")
    finally:
        for c in opened.values():
            c.close()
