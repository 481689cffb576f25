"""Corrected projections with provenance, built from a bucket's live members. Pure: no Kafka, no Faust.

Survivorship follows the ownership table: CRM owns account name, domain, country, status and the
opportunity; billing owns subscriptions, invoices, payments and delinquency; ERP owns customer number,
tax id, credit hold, orders and postings. Each field records the system and source position it came from;
values other systems hold for the same field, where they differ, are kept beside it.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

from streams.join_topology import ACC, INV, OPP, members_of

ZERO = Decimal("0.00")


def _plain(value):
    """Dates travel as ISO text in projections; everything else as it is."""
    return value.isoformat() if isinstance(value, date) else value


def field_value(value, member: dict | None, alternatives: list[tuple[str, dict | None]] = ()) -> dict:
    """One projected field: the surviving value, where it came from, and differing values elsewhere."""
    value = _plain(value)
    others = []
    for name, other in alternatives:
        if other is None:
            continue
        if other["value"] is not None and other["value"] != value:
            others.append({"system": other["system"], "table": other["table"], "value": _plain(other["value"]),
                           "position": other["position"]})
    return {
        "value": value,
        "system": member["system"] if member else None,
        "table": member["table"] if member else None,
        "position": member["position"] if member else None,
        "source_ts": member["source_ts"] if member else None,
        "alternatives": others,
    }


def derived(value, basis: str) -> dict:
    """A field trueup computed from other facts (basis says from what)."""
    return {"value": value, "system": "trueup", "table": None, "position": basis, "source_ts": None,
            "alternatives": []}


def _claim(member: dict | None, field: str) -> dict | None:
    if member is None:
        return None
    return {"value": member["fields"].get(field), "system": member["system"], "table": member["table"],
            "position": member["position"]}


def survive(field: str, owner: dict | None, others: list[dict | None], owner_field: str | None = None) -> dict:
    """The owner's value wins; without the owner the first other system holding one stands in."""
    own = _claim(owner, owner_field or field)
    claims = [_claim(m, field) for m in others]
    if own is not None and own["value"] is not None:
        return field_value(own["value"], owner, [("", c) for c in claims])
    for member, claim in zip(others, claims):
        if claim is not None and claim["value"] is not None:
            rest = [("", c) for c in claims if c is not claim] + [("", own)]
            return field_value(claim["value"], member, rest)
    return field_value(None, owner)


def sum_by_currency(amounts) -> dict[str, Decimal]:
    """Money amounts added up per currency (None amounts skipped)."""
    out: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for money in amounts:
        if money is not None:
            out[money["currency"]] += money["amount"]
    return dict(out)


def money_list(totals: dict[str, Decimal]) -> list[dict]:
    return [{"amount": amount.quantize(Decimal("0.01")), "currency": currency}
            for currency, amount in sorted(totals.items())]


def net_paid(payments: dict) -> dict[str, Decimal]:
    """Succeeded (or later refunded) charges minus succeeded refunds, per currency."""
    charges = [p["fields"].get("amount") for p in payments.values()
               if p["fields"].get("kind", "charge") != "refund" and p["fields"].get("status") in ("succeeded", "refunded")]
    refunds = [p["fields"].get("amount") for p in payments.values()
               if p["fields"].get("kind") == "refund" and p["fields"].get("status") == "succeeded"]
    paid = sum_by_currency(charges)
    for currency, amount in sum_by_currency(refunds).items():
        paid[currency] = paid.get(currency, ZERO) - amount
    return paid


def corrected_invoice_status(invoice: dict, paid: dict[str, Decimal]) -> str:
    """void as billing says; paid when payments cover the amount due; open otherwise."""
    fields = invoice["fields"]
    if fields.get("status") == "void":
        return "void"
    due = fields.get("amount_due")
    if due is not None and paid.get(due["currency"], ZERO) >= due["amount"]:
        return "paid"
    return "open"


def invoice_projection(invoice_id: str, members: dict) -> dict | None:
    invoice = members.get(("invoice", invoice_id))
    if invoice is None:
        return None
    payments = members_of(members, "payment")
    postings = members_of(members, "posting")
    f = invoice["fields"]
    paid = net_paid(payments)
    posted = sum_by_currency(p["fields"].get("amount") for p in postings.values())
    due = f.get("amount_due")
    status = corrected_invoice_status(invoice, paid)
    billed = {} if status == "void" else sum_by_currency([due])  # a voided invoice bills nothing
    outstanding = {c: billed.get(c, ZERO) - paid.get(c, ZERO) for c in set(billed) | set(paid)}
    billing_paid = f.get("amount_paid")
    computed_paid = {"amount": paid.get(due["currency"], ZERO), "currency": due["currency"]} if due else None
    fields = {
        "invoice_id": field_value(invoice_id, invoice),
        "customer_id": field_value(f.get("customer_id"), invoice),
        "subscription_id": field_value(f.get("subscription_id"), invoice),
        "erp_order_no": field_value(f.get("erp_order_no"), invoice),
        "amount_due": field_value(due, invoice),
        "amount_paid": {**derived(computed_paid, "succeeded payments minus refunds"),
                        "alternatives": [] if billing_paid == computed_paid or billing_paid is None else [
                            {"system": invoice["system"], "table": invoice["table"], "value": billing_paid,
                             "position": invoice["position"]}]},
        "status": {**derived(status, "payments against amount due; void as billing says"),
                   "alternatives": [] if f.get("status") == status else [
                       {"system": invoice["system"], "table": invoice["table"], "value": f.get("status"),
                        "position": invoice["position"]}]},
    }
    return {
        "projection": "invoice",
        "id": invoice_id,
        "fields": fields,
        "totals": {"billed": money_list(billed), "paid": money_list(paid), "posted": money_list(posted),
                   "outstanding": money_list(outstanding)},
        "links": {"payments": sorted(payments), "postings": sorted(postings),
                  "sales_order": [f["erp_order_no"]] if f.get("erp_order_no") else [],
                  "subscription": [f["subscription_id"]] if f.get("subscription_id") else []},
        "status": status,
        "correlation_id": invoice["correlation_id"],
    }


def account_projection(account_id: str, members: dict) -> dict | None:
    account = members.get(("account", account_id))
    if account is None:
        return None
    billing = [d for (k, _), d in sorted(members.items()) if k == "billing_customer"]
    erp = [d for (k, _), d in sorted(members.items()) if k == "erp_customer"]
    b0, e0 = (billing[0] if billing else None), (erp[0] if erp else None)
    fields = {
        "account_id": field_value(account_id, account),
        "name": survive("name", account, [b0, e0]),
        "domain": survive("domain", account, []),
        "country": survive("country", account, [e0]),
        "status": survive("status", account, []),
        "tax_id": survive("tax_id", e0, [account]),
        "credit_hold": survive("credit_hold", e0, []),
        "delinquent": survive("delinquent", b0, []),
        "erp_customer_no": survive("erp_customer_no", e0, [account], owner_field="customer_no"),
        "billing_customer_id": survive("billing_customer_id", b0, [account], owner_field="id"),
        "parent_account_id": survive("parent_account_id", account, []),
    }
    return {
        "projection": "account",
        "id": account_id,
        "fields": fields,
        "totals": {},
        "links": {"billing_customers": sorted(d["fields"]["id"] for d in billing),
                  "erp_customers": sorted(d["fields"]["customer_no"] for d in erp)},
        "status": account["fields"].get("status") or "unknown",
        "correlation_id": account["correlation_id"],
    }


def quote_to_cash_projection(opportunity_id: str, members: dict) -> dict | None:
    opportunity = members.get(("opportunity", opportunity_id))
    if opportunity is None or opportunity["fields"].get("stage") != "closed_won":
        return None
    subs = members_of(members, "subscription")
    orders = members_of(members, "order")
    invoices: dict = {}
    postings: dict = {}
    for summary in subs.values():
        for inv_id, inv in summary["invoices"].items():
            invoices[inv_id] = inv
            postings.update(inv["postings"])
    for summary in orders.values():
        # An order sees every invoice naming it; those with a subscription count through the subscription.
        for inv_id, inv in summary["invoices"].items():
            if not inv["invoice"]["fields"].get("subscription_id"):
                invoices[inv_id] = inv
                postings.update(inv["postings"])
        postings.update(summary.get("postings", {}))
    payments = {pid: p for inv in invoices.values() for pid, p in inv["payments"].items()}
    billed = sum_by_currency(inv["invoice"]["fields"].get("amount_due") for inv in invoices.values()
                  if inv["invoice"]["fields"].get("status") != "void")
    paid = net_paid(payments)
    posted = sum_by_currency(p["fields"].get("amount") for p in postings.values())
    outstanding = {c: billed.get(c, ZERO) - paid.get(c, ZERO) for c in set(billed) | set(paid)}
    if not subs and not orders:
        status = "awaiting_provisioning"
    elif not invoices:
        status = "provisioned"
    elif any(v > ZERO for v in outstanding.values()):
        status = "invoiced"
    else:
        status = "paid"
    o = opportunity["fields"]
    return {
        "projection": "quote_to_cash",
        "id": opportunity_id,
        "fields": {
            "opportunity_id": field_value(opportunity_id, opportunity),
            "account_id": field_value(o.get("account_id"), opportunity),
            "stage": field_value(o.get("stage"), opportunity),
            "amount": field_value(o.get("amount"), opportunity),
            "close_date": field_value(o.get("close_date"), opportunity),
        },
        "totals": {"billed": money_list(billed), "paid": money_list(paid), "posted": money_list(posted),
                   "outstanding": money_list(outstanding)},
        "links": {"subscriptions": sorted(subs), "sales_orders": sorted(orders), "invoices": sorted(invoices),
                  "payments": sorted(payments), "postings": sorted(postings)},
        "status": status,
        "correlation_id": opportunity["correlation_id"],
    }


def projector(bucket_type: str, bucket_id: str, members: dict) -> list:
    """The projections a bucket maintains (None when the root is gone: a tombstone)."""
    if bucket_type == INV:
        return [("invoice", bucket_id, invoice_projection(bucket_id, members))]
    if bucket_type == ACC:
        return [("account", bucket_id, account_projection(bucket_id, members))]
    if bucket_type == OPP:
        return [("quote_to_cash", bucket_id, quote_to_cash_projection(bucket_id, members))]
    return []
