"""Which bucket feeds which: the cross-system links of the reference model, as plain functions.

Entity buckets (one per entity, holding its latest canonical state) feed the join buckets:
  invoice view  INV[invoice id]    <- invoice, its payments (invoice_id), its AR postings (invoice_ref)
  subscription  SUB[subscription]  <- subscription, summaries of invoices naming it
  sales order   ORD[order no]      <- sales order, summaries of invoices naming it, postings by order_no
  opportunity   OPP[opportunity]   <- opportunity, subscription and order summaries naming it
  billing link  BCL[customer id]   <- billing customer, CRM accounts naming it (billing_customer_id)
  ERP link      ECL[customer no]   <- ERP customer, CRM accounts naming it (erp_customer_no)
  account       ACC[account id]    <- CRM account, the billing and ERP customers linked to it (the billing
                                      customer with its invoices), its opportunities, its duplicates
  domain        DOM[domain]        <- CRM accounts by normalised web domain
  tax id        TAX[tax id]        <- CRM accounts by normalised tax id
A bucket whose own record is missing still gathers what names it, which is how dangling references show.
Links are read from whichever side names the other: a billing customer reaches its account through its own
crm_account_id or, failing that, through the account that names it.
"""

from __future__ import annotations

import functools

from streams.identity_keys import domain_key, tax_key
from streams.joins import Message, bucket_key
from streams.mapping import entity_fields
from streams.values import epoch_ms, timestamp_of_ms

INV, SUB, ORD, OPP, BCL, ECL, ACC = "INV", "SUB", "ORD", "OPP", "BCL", "ECL", "ACC"
DOM, TAX = "DOM", "TAX"
VFY = "VFY"  # verification findings per entity, "entity_type:entity_id", written by `trueup verify`
DUPLICATE_BY = {DOM: "domain", TAX: "tax_id"}
# The most link hops any change takes from its entity's own bucket to a bucket of each type (entity -> INV is
# one, entity -> INV -> SUB -> OPP three): a rule judged there waits for the watermark after that many hops,
# not the deepest. A unit test holds it to what `emits` sends. Unlisted types (verify findings) take the most.
HOPS = {INV: 1, BCL: 1, ECL: 1, DOM: 1, TAX: 1, SUB: 2, ORD: 2, ACC: 2, OPP: 3}


def hops_to(bucket_type: str, deepest: int) -> int:
    return HOPS.get(bucket_type, deepest)


def entity_message(event: dict) -> Message:
    """A canonical event as a write of the entity's own bucket (member "self").

    The same message whether the event is the normalizer's own dict or its Avro decoding: fields in the entity
    record's order, every one present, and source_ts as the datetime Avro's timestamp-millis decodes to, so a
    bucket never mixes two forms of a value. (Equal, not identical: the normalizer's dict may share one string
    object between fields, which a pickle, and so a digest, writes differently; an upgrade re-sends such links
    and projections once.)
    """
    deleted = event["op"] == "delete" or event["after"] is None
    data = None
    if not deleted:
        data = {
            "fields": {name: event["after"].get(name) for name in _field_order(event["entity_type"])},
            "system": event["system"],
            "table": event["source_table"],
            "position": _position_text(event["position"]),
            "source_ts": timestamp_of_ms(event["source_ts"]),
            "correlation_id": event["correlation_id"],
        }
    return Message(
        bucket=bucket_key(event["entity_type"], event["entity_id"]),
        member=("self", event["entity_id"]),
        order=list(event["position"]["order"]),
        deleted=deleted,
        data=data,
        at_ms=epoch_ms(event["source_ts"]) if deleted else None,
        cause=event["correlation_id"],
    )


@functools.cache
def _field_order(entity_type: str) -> tuple[str, ...]:
    return tuple(entity_fields(entity_type))


def _position_text(position: dict) -> str:
    if position.get("lsn") is not None:
        return f"lsn:{position['lsn']}" + (f" tx:{position['tx_id']}" if position.get("tx_id") is not None else "")
    if position.get("cursor"):
        return f"cursor:{position['cursor']}"
    return "order:" + ".".join(map(str, position["order"]))


def _self(members: dict) -> dict | None:
    for (kind, _), data in members.items():
        if kind == "self":
            return data
    return None


def members_of(members: dict, kind: str) -> dict:
    """{member id: data} of the live members of one kind."""
    return {mid: data for (k, mid), data in members.items() if k == kind}


def emits(bucket_type: str, bucket_id: str, members: dict) -> dict:
    """{target bucket key: (member key, data)} this bucket contributes, from its live members alone."""
    out: dict = {}
    me = _self(members)
    f = me["fields"] if me else {}

    def to(target_type: str, target_id, kind: str, data) -> None:
        if target_id:
            out[bucket_key(target_type, str(target_id))] = ((kind, bucket_id), data)

    if bucket_type == "invoice" and me:
        to(INV, bucket_id, "invoice", me)
        to(BCL, f.get("customer_id"), "invoice", me)
    elif bucket_type == "payment" and me:
        to(INV, f.get("invoice_id"), "payment", me)
    elif bucket_type == "ar_posting" and me:
        if f.get("invoice_ref"):
            to(INV, f["invoice_ref"], "posting", me)
        else:
            to(ORD, f.get("order_no"), "posting", me)
    elif bucket_type == "subscription" and me:
        to(SUB, bucket_id, "subscription", me)
    elif bucket_type == "sales_order" and me:
        to(ORD, bucket_id, "order", me)
    elif bucket_type == "opportunity" and me:
        to(OPP, bucket_id, "opportunity", me)
        to(ACC, f.get("account_id"), "opportunity", me)
    elif bucket_type == "account" and me:
        to(ACC, bucket_id, "account", me)
        claim = {**me, "account_id": bucket_id}
        to(BCL, f.get("billing_customer_id"), "claim", claim)
        to(ECL, f.get("erp_customer_no"), "claim", claim)
        to(DOM, domain_key(f.get("domain")), "account", me)
        to(TAX, tax_key(f.get("tax_id")), "account", me)
    elif bucket_type == "billing_customer" and me:
        to(BCL, bucket_id, "customer", me)
    elif bucket_type == "erp_customer" and me:
        to(ECL, bucket_id, "customer", me)
    elif bucket_type == INV:
        invoice = members_of(members, "invoice").get(bucket_id)
        if invoice:
            summary = {"invoice": invoice, "payments": members_of(members, "payment"), "postings": members_of(members, "posting")}
            inv = invoice["fields"]
            # Both paths: the order checks its invoice totals; quote-to-cash counts each invoice id once.
            to(SUB, inv.get("subscription_id"), "invoice", summary)
            to(ORD, inv.get("erp_order_no"), "invoice", summary)
    elif bucket_type == SUB:
        sub = members_of(members, "subscription").get(bucket_id)
        if sub:
            to(OPP, sub["fields"].get("crm_opportunity_id"), "subscription",
               {"subscription": sub, "invoices": members_of(members, "invoice")})
    elif bucket_type == ORD:
        order = members_of(members, "order").get(bucket_id)
        if order:
            to(OPP, order["fields"].get("crm_opportunity_id"), "order",
               {"order": order, "invoices": members_of(members, "invoice"), "postings": members_of(members, "posting")})
            to(SUB, order["fields"].get("billing_subscription_id"), "order", order)
    elif bucket_type in (BCL, ECL):
        customer = members_of(members, "customer").get(bucket_id)
        if customer:
            kind = "billing_customer" if bucket_type == BCL else "erp_customer"
            named = customer["fields"].get("crm_account_id")
            accounts = [named] if named else sorted(c["account_id"] for c in members_of(members, "claim").values())
            if bucket_type == BCL:
                # The credit-hold rule, judged in the account, needs what billing invoiced this customer.
                customer = {**customer, "invoices": members_of(members, "invoice")}
            for account_id in accounts:
                to(ACC, account_id, kind, customer)
    elif bucket_type in DUPLICATE_BY:
        accounts = members_of(members, "account")
        if len(accounts) > 1:
            for account_id in accounts:
                to(ACC, account_id, f"duplicate_{DUPLICATE_BY[bucket_type]}", {"value": bucket_id, "accounts": accounts})
    return out
