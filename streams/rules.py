"""Consistency rules: pure functions of a join bucket's live members that return candidate findings.

A candidate names the source systems whose watermark must pass a commit time before it may be raised:
the time by which a missing record was due (SLA rules), or the time of the newest record the comparison
depends on, so that ordinary replication lag never raises an alert (no wall-clock grace stands in).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from streams.alert_lifecycle import Evidence, Finding
from streams.join_topology import ACC, BCL, DUPLICATE_BY, ECL, INV, OPP, ORD, SUB, VFY, members_of
from streams.projections import ZERO, net_paid, sum_by_currency
from streams.values import epoch_ms as ms


@dataclass(frozen=True)
class Candidate:
    finding: Finding
    waits_for: tuple[tuple[str, int], ...] = ()  # (system, commit time ms) its watermark must reach

    def due(self, watermarks: dict[str, int]) -> bool:
        return all(watermarks.get(system, -1) >= at for system, at in self.waits_for)


@dataclass(frozen=True)
class RuleConfig:
    subscription_sla_ms: int
    sales_order_sla_ms: int
    posting_sla_ms: int
    orphan_payment_sla_ms: int
    dangling_reference_sla_ms: int
    tolerance: Decimal
    sync_sla_ms: int = 0

    @classmethod
    def from_settings(cls, rules) -> RuleConfig:
        return cls(
            subscription_sla_ms=int(rules.subscription_sla_s * 1000),
            sales_order_sla_ms=int(rules.sales_order_sla_s * 1000),
            posting_sla_ms=int(rules.posting_sla_s * 1000),
            orphan_payment_sla_ms=int(rules.orphan_payment_sla_s * 1000),
            dangling_reference_sla_ms=int(rules.dangling_reference_sla_s * 1000),
            tolerance=rules.money_tolerance,
            sync_sla_ms=int(rules.sync_sla_s * 1000),
        )


CATALOG = {
    "opportunity_without_subscription": ("high", "closed-won opportunity with no billing subscription within SLA"),
    "opportunity_without_sales_order": ("high", "closed-won opportunity with no ERP sales order within SLA"),
    "invoice_not_posted": ("high", "billing invoice not posted to ERP (no AR posting) within SLA"),
    "posting_mismatch": ("critical", "AR posting amount or currency differs from the invoice"),
    "order_invoice_total_mismatch": ("high", "invoice totals for a sales order differ from the order total or currency"),
    "orphan_payment": ("high", "payment for an invoice that does not exist, after SLA"),
    "payment_customer_mismatch": ("high", "payment belongs to another customer than its invoice"),
    "invoice_status_mismatch": ("medium", "invoice status disagrees with its payments"),
    "subscription_order_mismatch": ("high", "subscription value or state differs from its sales order"),
    "account_attribute_mismatch": ("medium", "account attributes differ between CRM and ERP or billing"),
    "duplicate_account": ("low", "two CRM accounts share a normalised domain or tax id"),
    "credit_hold_violation": ("critical", "ERP credit hold while billing invoices or CRM wins new business"),
    "dangling_reference": ("medium", "a cross-system link points at a record that never appears, after SLA"),
    "state_drift": ("high", "trueup's state of an entity differs from its source (found by verify)"),
}


def fmt(money: dict | None) -> str:
    if money is None:
        return "nothing"
    return f"{money['amount']:,.2f} {money['currency']}"


def _ev(member: dict, key: str, field: str, value) -> Evidence:
    text = fmt(value) if isinstance(value, dict) else (None if value is None else str(value))
    return Evidence(member["system"], member["table"], key, field, text, member["position"])


def _missing(system: str, table: str, key: str, field: str) -> Evidence:
    return Evidence(system, table, key, field, None, None)


def _finding(rule_id: str, entity_type: str, entity_id: str, message: str, evidence, member: dict,
             deadline_ms: int | None = None) -> Finding:
    return Finding(rule_id, CATALOG[rule_id][0], entity_type, entity_id, message, tuple(evidence),
                   deadline_ms, member.get("correlation_id", ""))


def _differs(a: Decimal, b: Decimal, tol: Decimal) -> bool:
    return abs(a - b) > tol


# ---- invoice view: the invoice, its payments and postings ----------------------------------------


def invoice_rules(invoice_id: str, members: dict, cfg: RuleConfig) -> list[Candidate]:
    out: list[Candidate] = []
    invoice = members.get(("invoice", invoice_id))
    payments, postings = members_of(members, "payment"), members_of(members, "posting")
    if invoice is None:
        for pid, pay in payments.items():
            due_at = ms(pay["source_ts"]) + cfg.orphan_payment_sla_ms
            out.append(Candidate(_finding(
                "orphan_payment", "payment", pid,
                f"Payment {pid} of {fmt(pay['fields'].get('amount'))} names invoice {invoice_id}, "
                "which billing does not have",
                [_ev(pay, pid, "invoice_id", invoice_id), _missing("billing", "invoices", invoice_id, "id")],
                pay, due_at), (("billing", due_at),)))
        return out
    f = invoice["fields"]
    inv_ts = ms(invoice["source_ts"])
    due = f.get("amount_due")
    status = f.get("status")
    if status not in ("draft", "void") and not postings:
        due_at = inv_ts + cfg.posting_sla_ms
        out.append(Candidate(_finding(
            "invoice_not_posted", "invoice", invoice_id,
            f"Invoice {invoice_id} for {fmt(due)} has no AR posting in ERP",
            [_ev(invoice, invoice_id, "amount_due", due), _missing("erp", "ar_postings", invoice_id, "invoice_ref")],
            invoice, due_at), (("erp", due_at),)))
    if postings and due is not None and status != "void":
        posted = sum_by_currency(p["fields"].get("amount") for p in postings.values())
        other_currencies = set(posted) - {due["currency"]}
        if other_currencies or _differs(posted.get(due["currency"], ZERO), due["amount"], cfg.tolerance):
            shown = ", ".join(f"{amount:,.2f} {currency}" for currency, amount in sorted(posted.items()))
            latest = max(ms(p["source_ts"]) for p in postings.values())
            out.append(Candidate(_finding(
                "posting_mismatch", "invoice", invoice_id,
                f"Invoice {invoice_id} for {fmt(due)} was posted to ERP as {shown}",
                [_ev(invoice, invoice_id, "amount_due", due)]
                + [_ev(p, pid, "amount", p["fields"].get("amount")) for pid, p in sorted(postings.items())],
                invoice), (("erp", inv_ts), ("billing", latest))))
    latest_billing = max([inv_ts] + [ms(p["source_ts"]) for p in payments.values()])
    for pid, pay in sorted(payments.items()):
        if pay["fields"].get("customer_id") != f.get("customer_id"):
            out.append(Candidate(_finding(
                "payment_customer_mismatch", "payment", pid,
                f"Payment {pid} is from customer {pay['fields'].get('customer_id')} but invoice {invoice_id} "
                f"belongs to {f.get('customer_id')}",
                [_ev(pay, pid, "customer_id", pay["fields"].get("customer_id")),
                 _ev(invoice, invoice_id, "customer_id", f.get("customer_id"))],
                pay), (("billing", latest_billing),)))
    if due is not None and status not in ("draft", "void"):
        paid = net_paid(payments).get(due["currency"], ZERO)
        problem = None
        if status == "paid" and paid < due["amount"] - cfg.tolerance:
            problem = f"is marked paid but only {paid:,.2f} {due['currency']} of {fmt(due)} was paid"
        elif paid > due["amount"] + cfg.tolerance:
            problem = f"is overpaid: {paid:,.2f} {due['currency']} paid against {fmt(due)}"
        elif status == "open" and paid >= due["amount"] - cfg.tolerance:
            problem = f"is fully paid ({paid:,.2f} {due['currency']}) but still open"
        if problem:
            out.append(Candidate(_finding(
                "invoice_status_mismatch", "invoice", invoice_id, f"Invoice {invoice_id} {problem}",
                [_ev(invoice, invoice_id, "status", status), _ev(invoice, invoice_id, "amount_due", due)]
                + [_ev(p, pid, "amount", p["fields"].get("amount")) for pid, p in sorted(payments.items())],
                invoice), (("billing", latest_billing),)))
    return out


# ---- opportunity: subscriptions and orders ----------------------------------------------------------


def opportunity_rules(opp_id: str, members: dict, cfg: RuleConfig) -> list[Candidate]:
    out: list[Candidate] = []
    opp = members.get(("opportunity", opp_id))
    subs, orders = members_of(members, "subscription"), members_of(members, "order")
    if opp is not None and opp["fields"].get("stage") == "closed_won":
        won = ms(opp["source_ts"])
        amount = opp["fields"].get("amount")
        if not subs:
            due_at = won + cfg.subscription_sla_ms
            out.append(Candidate(_finding(
                "opportunity_without_subscription", "opportunity", opp_id,
                f"Opportunity {opp_id} won for {fmt(amount)} has no billing subscription",
                [_ev(opp, opp_id, "stage", "closed_won"),
                 _missing("billing", "subscriptions", opp_id, "crm_opportunity_id")],
                opp, due_at), (("billing", due_at),)))
        if not orders:
            due_at = won + cfg.sales_order_sla_ms
            out.append(Candidate(_finding(
                "opportunity_without_sales_order", "opportunity", opp_id,
                f"Opportunity {opp_id} won for {fmt(amount)} has no ERP sales order",
                [_ev(opp, opp_id, "stage", "closed_won"),
                 _missing("erp", "sales_orders", opp_id, "crm_opportunity_id")],
                opp, due_at), (("erp", due_at),)))
    for sub_id, summary in sorted(subs.items()):
        sub = summary["subscription"]
        named = [o for o in orders.values() if o["order"]["fields"].get("billing_subscription_id") == sub_id]
        candidates = named or (list(orders.values()) if len(orders) == 1 else [])
        for order_summary in candidates:
            order = order_summary["order"]
            out.extend(_subscription_vs_order(sub_id, sub, order, cfg))
    return out


def _subscription_vs_order(sub_id: str, sub: dict, order: dict, cfg: RuleConfig) -> list[Candidate]:
    sf, of = sub["fields"], order["fields"]
    order_no = of.get("order_no")
    unit, quantity, total = sf.get("unit_amount"), sf.get("quantity"), of.get("total_amount")
    # An amendment reaches one system first: the other gets the sync SLA to follow.
    due_at = max(ms(sub["source_ts"]), ms(order["source_ts"])) + cfg.sync_sla_ms
    waits = (("erp", due_at), ("billing", due_at))
    problem = None
    if sf.get("status") == "canceled" and of.get("status") not in ("closed", "cancelled"):
        problem = f"is canceled while sales order {order_no} is still {of.get('status')}"
    elif unit is not None and quantity is not None and total is not None:
        value = unit["amount"] * quantity
        if unit["currency"] != total["currency"] or _differs(value, total["amount"], cfg.tolerance):
            problem = (f"is worth {value:,.2f} {unit['currency']} ({quantity} x {fmt(unit)}) but sales order "
                       f"{order_no} totals {fmt(total)}")
    if problem is None:
        return []
    return [Candidate(_finding(
        "subscription_order_mismatch", "subscription", sub_id, f"Subscription {sub_id} {problem}",
        [_ev(sub, sub_id, "quantity", quantity), _ev(sub, sub_id, "unit_amount", unit),
         _ev(sub, sub_id, "status", sf.get("status")), _ev(order, order_no, "total_amount", total),
         _ev(order, order_no, "status", of.get("status"))],
        sub, due_at), waits)]


# ---- sales order: the invoices that name it ------------------------------------------------------


def order_rules(order_no: str, members: dict, cfg: RuleConfig) -> list[Candidate]:
    order = members.get(("order", order_no))
    invoices = {iid: s["invoice"] for iid, s in members_of(members, "invoice").items()
                if s["invoice"]["fields"].get("status") != "void"}
    if order is None or not invoices:
        return []
    total = order["fields"].get("total_amount")
    if total is None:
        return []
    billed = sum_by_currency(inv["fields"].get("amount_due") for inv in invoices.values())
    if not (set(billed) - {total["currency"]}) and not _differs(billed.get(total["currency"], ZERO),
                                                                  total["amount"], cfg.tolerance):
        return []
    shown = ", ".join(f"{amount:,.2f} {currency}" for currency, amount in sorted(billed.items()))
    due_at = max([ms(order["source_ts"])] + [ms(inv["source_ts"]) for inv in invoices.values()]) + cfg.sync_sla_ms
    return [Candidate(_finding(
        "order_invoice_total_mismatch", "sales_order", order_no,
        f"Sales order {order_no} totals {fmt(total)} but its invoices total {shown}",
        [_ev(order, order_no, "total_amount", total)]
        + [_ev(inv, iid, "amount_due", inv["fields"].get("amount_due")) for iid, inv in sorted(invoices.items())],
        order, due_at), (("billing", due_at), ("erp", due_at)))]


# ---- account: CRM against the linked billing and ERP customers ------------------------------------


def account_rules(account_id: str, members: dict, cfg: RuleConfig) -> list[Candidate]:
    account = members.get(("account", account_id))
    if account is None:
        return dangling_references(ACC, account_id, members, cfg)
    return (_attribute_mismatch(account_id, account, members)
            + _duplicates(account_id, account, members)
            + _credit_hold(account_id, members))


def _attribute_mismatch(account_id: str, account: dict, members: dict) -> list[Candidate]:
    af = account["fields"]
    evidence: list[Evidence] = []
    differences: list[str] = []
    waits: list[tuple[str, int]] = []
    for kind, system, fields in (("billing_customer", "billing", ("name",)),
                                 ("erp_customer", "erp", ("name", "country", "tax_id"))):
        for cid, customer in sorted(members_of(members, kind).items()):
            cf = customer["fields"]
            for field in fields:
                ours, theirs = af.get(field), cf.get(field)
                if ours is not None and theirs is not None and ours != theirs:
                    differences.append(f"{field} {ours!r} in CRM but {theirs!r} in {system}")
                    evidence += [_ev(account, account_id, field, ours), _ev(customer, cid, field, theirs)]
                    waits += [(system, ms(account["source_ts"])), ("crm", ms(customer["source_ts"]))]
    if not differences:
        return []
    return [Candidate(_finding(
        "account_attribute_mismatch", "account", account_id,
        f"Account {account_id} has " + "; ".join(differences), evidence, account), tuple(waits))]


def _duplicates(account_id: str, account: dict, members: dict) -> list[Candidate]:
    shared: list[str] = []
    evidence: list[Evidence] = []
    others: dict[str, dict] = {}
    for field in DUPLICATE_BY.values():
        for value, group in sorted(members_of(members, f"duplicate_{field}").items()):
            twins = {aid: a for aid, a in group["accounts"].items() if aid != account_id}
            if not twins:
                continue
            shared.append(f"{'domain' if field == 'domain' else 'tax id'} {value} with "
                          + ", ".join(sorted(twins)))
            evidence.append(_ev(account, account_id, field, account["fields"].get(field)))
            evidence += [_ev(a, aid, field, a["fields"].get(field)) for aid, a in sorted(twins.items())]
            others.update(twins)
    if not shared:
        return []
    # The pair became duplicates with the newer of its changes: the alert names that change, not always its own.
    # Ties (one millisecond) go to the greater account id, so every account of the group names the same change.
    _, newest = max([(account_id, account), *others.items()], key=lambda pair: (ms(pair[1]["source_ts"]), pair[0]))
    return [Candidate(_finding(
        "duplicate_account", "account", account_id,
        f"Account {account_id} looks like a duplicate: it shares " + "; ".join(shared), evidence, newest),
        (("crm", ms(newest["source_ts"])),))]


def _credit_hold(account_id: str, members: dict) -> list[Candidate]:
    """Business won or invoiced after the ERP put the customer on hold (the hold's latest commit time)."""
    out: list[Candidate] = []
    holds = {cno: c for cno, c in members_of(members, "erp_customer").items() if c["fields"].get("credit_hold")}
    if not holds:
        return out
    since_cno, hold = min(holds.items(), key=lambda item: ms(item[1]["source_ts"]))
    held_at = ms(hold["source_ts"])
    hold_ev = _ev(hold, since_cno, "credit_hold", "true")
    for opp_id, opp in sorted(members_of(members, "opportunity").items()):
        won_at = ms(opp["source_ts"])
        if opp["fields"].get("stage") == "closed_won" and won_at > held_at:
            out.append(Candidate(_finding(
                "credit_hold_violation", "opportunity", opp_id,
                f"Opportunity {opp_id} was won for {fmt(opp['fields'].get('amount'))} while ERP customer "
                f"{since_cno} is on credit hold",
                [hold_ev, _ev(opp, opp_id, "stage", "closed_won")], opp), (("erp", won_at),)))
    for customer in members_of(members, "billing_customer").values():
        for inv_id, inv in sorted(customer.get("invoices", {}).items()):
            f = inv["fields"]
            issued = f.get("issued_at")
            if f.get("status") in ("draft", "void") or issued is None or ms(issued) <= held_at:
                continue
            out.append(Candidate(_finding(
                "credit_hold_violation", "invoice", inv_id,
                f"Invoice {inv_id} for {fmt(f.get('amount_due'))} was issued while ERP customer {since_cno} "
                "is on credit hold",
                [hold_ev, _ev(inv, inv_id, "issued_at", issued), _ev(inv, inv_id, "amount_due", f.get("amount_due"))],
                inv), (("erp", ms(inv["source_ts"])),)))
    return out


# ---- dangling references: a bucket gathers what names its record; the record never came --------------

# bucket type -> (the bucket's own member kind, the system that owns it, its table, [(kind naming it, holder
# entity type, the holder's column)])
_TARGETS = {
    ACC: ("account", "crm", "accounts", [("billing_customer", "billing_customer", "crm_account_id"),
                                         ("erp_customer", "erp_customer", "crm_account_id")]),
    BCL: ("customer", "billing", "customers", [("claim", "account", "billing_customer_id")]),
    ECL: ("customer", "erp", "customers", [("claim", "account", "erp_customer_no")]),
    OPP: ("opportunity", "crm", "opportunities", [("subscription", "subscription", "crm_opportunity_id"),
                                                  ("order", "sales_order", "crm_opportunity_id")]),
    SUB: ("subscription", "billing", "subscriptions", [("order", "sales_order", "billing_subscription_id")]),
    ORD: ("order", "erp", "sales_orders", [("invoice", "invoice", "erp_order_no")]),
}


def dangling_references(bucket_type: str, bucket_id: str, members: dict, cfg: RuleConfig) -> list[Candidate]:
    own, system, table, holders = _TARGETS[bucket_type]
    if members.get((own, bucket_id)) is not None:
        return []
    out: list[Candidate] = []
    for kind, entity_type, column in holders:
        for holder_id, data in sorted(members_of(members, kind).items()):
            holder = data.get(kind, data)  # summaries (a subscription in OPP, an invoice in ORD) wrap the record
            if holder["fields"].get(column) != bucket_id:
                continue  # reached us another way (an account naming this customer, not named by it)
            due_at = ms(holder["source_ts"]) + cfg.dangling_reference_sla_ms
            out.append(Candidate(_finding(
                "dangling_reference", entity_type, holder_id,
                f"{entity_type.replace('_', ' ').capitalize()} {holder_id} names {system} {table} {bucket_id} "
                f"in {column}, which {system} does not have",
                [_ev(holder, holder_id, column, bucket_id), _missing(system, table, bucket_id, "id")],
                holder, due_at), ((system, due_at),)))
    return out


def state_drift(bucket_id: str, members: dict) -> list[Candidate]:
    """Drift that `trueup verify` recorded for one entity (bucket id "entity_type:entity_id")."""
    drift = members.get(("drift", "verify"))
    if drift is None:
        return []
    entity_type, _, entity_id = bucket_id.partition(":")
    what = {"missing_in_trueup": "is missing in trueup", "extra_in_trueup": "is in trueup but not in the source",
            "field_differs": "differs from the source"}[drift["kind"]]
    differing = [c for c in sorted(set(drift["source"] or {}) | set(drift["trueup"] or {}))
                 if (drift["source"] or {}).get(c) != (drift["trueup"] or {}).get(c)]
    detail = f" ({', '.join(differing)})" if drift["kind"] == "field_differs" and differing else ""
    evidence = [Evidence(drift["system"], drift["table"], entity_id, column,
                         None if (drift["source"] or {}).get(column) is None else str(drift["source"][column]),
                         f"snapshot:{drift['snapshot_ms']}")
                for column in (differing or sorted(drift["source"] or {}))[:12]]
    finding = Finding("state_drift", CATALOG["state_drift"][0], entity_type, entity_id,
                      f"{entity_type.replace('_', ' ').capitalize()} {entity_id} {what}{detail}", tuple(evidence),
                      None, drift.get("correlation_id", f"verify-{drift['snapshot_ms']}"))
    return [Candidate(finding)]


def evaluate(bucket_type: str, bucket_id: str, members: dict, cfg: RuleConfig) -> list[Candidate]:
    """Every candidate finding a join bucket holds evidence for."""
    if bucket_type == VFY:
        return state_drift(bucket_id, members)
    out: list[Candidate] = []
    if bucket_type == INV:
        out = invoice_rules(bucket_id, members, cfg)
    elif bucket_type == OPP:
        out = opportunity_rules(bucket_id, members, cfg)
    elif bucket_type == ORD:
        out = order_rules(bucket_id, members, cfg)
    elif bucket_type == ACC:
        return account_rules(bucket_id, members, cfg)  # judges its missing account itself
    if bucket_type in _TARGETS:
        out = out + dangling_references(bucket_type, bucket_id, members, cfg)
    return out


RULE_BUCKETS = frozenset({INV, OPP, ORD, ACC, SUB, BCL, ECL, VFY})
