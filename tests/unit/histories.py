"""Builders of canonical events and multi-system histories for the join engine's unit tests.

Events have the shape `streams.join_topology.entity_message` reads (the normalizer's output): entity_type,
entity_id, op, after (canonical fields per avro/trueup.entities.*.avsc), system, source_table, position,
source_ts, correlation_id. Each source system is a `Source` whose positions strictly increase, like a
PostgreSQL WAL: snapshot rows sort before streamed changes, streamed changes order by (commit, lsn).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

from streams.join_driver import JoinDriver
from streams.join_topology import entity_message
from streams.joins import live_members

CENT = Decimal("0.01")

# entity type -> (system, source table, key field)
ENTITIES: dict[str, tuple[str, str, str]] = {
    "account": ("crm", "accounts", "id"),
    "opportunity": ("crm", "opportunities", "id"),
    "billing_customer": ("billing", "customers", "id"),
    "subscription": ("billing", "subscriptions", "id"),
    "invoice": ("billing", "invoices", "id"),
    "payment": ("billing", "payments", "id"),
    "erp_customer": ("erp", "customers", "customer_no"),
    "sales_order": ("erp", "sales_orders", "order_no"),
    "ar_posting": ("erp", "ar_postings", "id"),
}
SYSTEMS = ("crm", "billing", "erp")

# Canonical fields of each entity (avro/trueup.entities.*.avsc), with neutral defaults.
DEFAULTS: dict[str, dict] = {
    "account": {"billing_customer_id": None, "erp_customer_no": None, "parent_account_id": None, "name": None,
                "domain": None, "country": None, "tax_id": None, "status": "active", "updated_at": None},
    "opportunity": {"account_id": None, "stage": "prospecting", "amount": None, "close_date": None,
                    "updated_at": None},
    "billing_customer": {"crm_account_id": None, "name": None, "email": None, "currency": "EUR",
                         "delinquent": False, "updated_at": None},
    "subscription": {"customer_id": None, "crm_opportunity_id": None, "quantity": 1, "unit_amount": None,
                     "status": "active", "updated_at": None},
    "invoice": {"customer_id": None, "subscription_id": None, "erp_order_no": None, "amount_due": None,
                "amount_paid": None, "status": "open", "updated_at": None},
    "payment": {"invoice_id": None, "customer_id": None, "amount": None, "kind": "charge",
                "status": "succeeded", "updated_at": None},
    "erp_customer": {"crm_account_id": None, "name": None, "tax_id": None, "country": None,
                     "credit_hold": False, "updated_at": None},
    "sales_order": {"customer_no": None, "crm_opportunity_id": None, "billing_subscription_id": None,
                    "total_amount": None, "status": "pending_fulfillment", "updated_at": None},
    "ar_posting": {"invoice_ref": None, "order_no": None, "customer_no": None, "amount": None,
                   "updated_at": None},
}


def money(amount, currency: str = "EUR") -> dict:
    """trueup.Money: an exact 2-place Decimal and an ISO currency."""
    return {"amount": Decimal(str(amount)).quantize(CENT), "currency": currency}


def fields(entity_type: str, entity_id: str, **values) -> dict:
    """The canonical `after` of one entity: defaults, the key field, then the given values."""
    unknown = set(values) - set(DEFAULTS[entity_type])
    assert not unknown, f"not a canonical field of {entity_type}: {unknown}"
    key = ENTITIES[entity_type][2]
    return {key: entity_id, **DEFAULTS[entity_type], **values}


def event(entity_type: str, entity_id: str, after: dict | None, *, order: list[int], op: str | None = None,
          lsn: int | None = None, tx_id: int | None = None, source_ts: int = 1_795_000_000_000,
          correlation_id: str | None = None) -> dict:
    """One canonical event with an explicit position (`after` None means a delete)."""
    system, table, _ = ENTITIES[entity_type]
    if op is None:
        op = "delete" if after is None else "update"
    return {
        "entity_type": entity_type,
        "entity_id": entity_id,
        "op": op,
        "after": after,
        "system": system,
        "source_table": table,
        "position": {"kind": "snapshot" if op == "snapshot" else "stream", "lsn": lsn, "tx_id": tx_id,
                     "sequence": None, "cursor": None, "order": list(order)},
        "source_ts": source_ts,
        "correlation_id": correlation_id or f"{system}-{entity_id}-{'.'.join(map(str, order))}",
    }


def data_of(ev: dict) -> dict:
    """The member data an entity bucket holds for this event (what projections read)."""
    return entity_message(ev).data


class Source:
    """One system's change stream: every event it makes is ordered after the previous one."""

    def __init__(self, system: str, lsn: int = 1000) -> None:
        self.system = system
        self.lsn = lsn
        self.ts = 1_795_000_000_000

    def _next(self, snapshot: bool) -> tuple[list[int], int]:
        self.lsn += 8
        self.ts += 1000
        order = [0, self.lsn, 0] if snapshot else [1, self.lsn - 4, self.lsn]
        return order, self.lsn

    def upsert(self, entity_type: str, entity_id: str, *, snapshot: bool = False, op: str | None = None,
               **values) -> dict:
        assert ENTITIES[entity_type][0] == self.system, (entity_type, self.system)
        order, lsn = self._next(snapshot)
        return event(entity_type, entity_id, fields(entity_type, entity_id, **values), order=order,
                     op=op or ("snapshot" if snapshot else "update"), lsn=lsn, tx_id=lsn // 8,
                     source_ts=self.ts)

    def delete(self, entity_type: str, entity_id: str) -> dict:
        assert ENTITIES[entity_type][0] == self.system, (entity_type, self.system)
        order, lsn = self._next(False)
        return event(entity_type, entity_id, None, order=order, op="delete", lsn=lsn, tx_id=lsn // 8,
                     source_ts=self.ts)

    def rewrite(self, ev: dict, *, same_position_text: bool = False) -> dict:
        """The same row written again, unchanged, at a later position (e.g. a no-op UPDATE)."""
        order, lsn = self._next(False)
        position = dict(ev["position"], order=order)
        if not same_position_text:
            position.update(lsn=lsn, tx_id=lsn // 8)
        return {**ev, "op": "update", "position": position,
                "source_ts": ev["source_ts"] if same_position_text else self.ts,
                "correlation_id": ev["correlation_id"] if same_position_text else f"re-{lsn}"}


class World:
    """The three reference sources side by side, for hand-written histories."""

    def __init__(self, start: int = 1000) -> None:
        self.sources = {s: Source(s, lsn=start * (i + 1)) for i, s in enumerate(SYSTEMS)}

    def upsert(self, entity_type: str, entity_id: str, **values) -> dict:
        return self.sources[ENTITIES[entity_type][0]].upsert(entity_type, entity_id, **values)

    def delete(self, entity_type: str, entity_id: str) -> dict:
        return self.sources[ENTITIES[entity_type][0]].delete(entity_type, entity_id)

    def rewrite(self, ev: dict, **kw) -> dict:
        return self.sources[ev["system"]].rewrite(ev, **kw)


def driver_of(events) -> JoinDriver:
    driver = JoinDriver()
    for ev in events:
        driver.feed(ev)
    return driver


def buckets(driver: JoinDriver) -> dict[str, dict]:
    """Live members of every bucket that has any (version, routes and tombstones left out)."""
    out = {}
    for key, state in driver.states.items():
        members = live_members(state)
        if members:
            out[key] = members
    return out


def latest(events) -> dict[tuple[str, str], dict]:
    """The newest event of each entity by order (deletes included)."""
    out: dict[tuple[str, str], dict] = {}
    for ev in events:
        key = (ev["entity_type"], ev["entity_id"])
        if key not in out or list(ev["position"]["order"]) > list(out[key]["position"]["order"]):
            out[key] = ev
    return out


def final_rows(events) -> dict[str, dict[str, dict]]:
    """{entity type: {id: after}} of the entities alive at the end of a history."""
    rows: dict[str, dict[str, dict]] = defaultdict(dict)
    for (entity_type, entity_id), ev in latest(events).items():
        if ev["op"] != "delete" and ev["after"] is not None:
            rows[entity_type][entity_id] = ev["after"]
    return rows


def a_date(day: int) -> date:
    return date(2026, 1, 1 + day % 28)
