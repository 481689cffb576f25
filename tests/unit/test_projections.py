"""Corrected projections: invoice status and totals, account survivorship with provenance, account links in
either direction, and quote-to-cash reachability, totals and status."""

from __future__ import annotations

from decimal import Decimal

import pytest

from streams.projections import account_projection, invoice_projection, quote_to_cash_projection
from streams.values import epoch_ms
from tests.unit.histories import World, a_date, data_of, driver_of, money


def totals(projection: dict, name: str) -> dict[str, Decimal]:
    return {m["currency"]: m["amount"] for m in projection["totals"][name]}


def provenance(ev: dict) -> dict:
    d = data_of(ev)
    return {"system": d["system"], "table": d["table"], "position": d["position"]}


# --- invoice -------------------------------------------------------------------------------------------


def invoice(w: World, payments=(), postings=(), invoice_id="in_1", **values):
    inv = w.upsert("invoice", invoice_id, **values)
    members = {("invoice", invoice_id): data_of(inv)}
    for i, p in enumerate(payments):
        members[("payment", f"py_{i}")] = data_of(w.upsert("payment", f"py_{i}", invoice_id=invoice_id, **p))
    for i, p in enumerate(postings):
        members[("posting", f"ar_{i}")] = data_of(w.upsert("ar_posting", f"ar_{i}", invoice_ref=invoice_id, **p))
    return inv, invoice_projection(invoice_id, members)


def charge(amount, currency="EUR", status="succeeded"):
    return {"amount": money(amount, currency), "kind": "charge", "status": status}


def refund(amount, currency="EUR", status="succeeded"):
    return {"amount": money(amount, currency), "kind": "refund", "status": status}


def test_no_invoice_member_no_projection():
    w = World()
    pay = data_of(w.upsert("payment", "py_1", invoice_id="in_1", amount=money("1.00")))
    assert invoice_projection("in_1", {("payment", "py_1"): pay}) is None


def test_void_as_billing_says_even_if_paid():
    _, p = invoice(World(), [charge("100.00")], amount_due=money("100.00"), status="void")
    assert p["status"] == "void"
    assert p["fields"]["status"]["value"] == "void"
    assert p["fields"]["status"]["alternatives"] == []
    assert totals(p, "paid") == {"EUR": Decimal("100.00")}


@pytest.mark.parametrize("payments, expected_paid, status", [
    ([charge("100.00")], "100.00", "paid"),
    ([charge("60.00"), charge("40.00")], "100.00", "paid"),
    ([charge("120.00")], "120.00", "paid"),
    ([charge("99.99")], "99.99", "open"),
    ([charge("60.00"), charge("40.00", status="pending"), charge("40.00", status="failed")], "60.00", "open"),
    ([charge("100.00"), refund("0.01")], "99.99", "open"),
    ([charge("100.00"), refund("30.00", status="pending"), refund("30.00", status="failed")], "100.00", "paid"),
    ([charge("100.00", status="refunded"), refund("100.00")], "0.00", "open"),
    ([charge("100.00", status="refunded")], "100.00", "paid"),
    ([], "0.00", "open"),
])
def test_paid_when_net_paid_covers_the_amount_due(payments, expected_paid, status):
    _, p = invoice(World(), payments, amount_due=money("100.00"), status="open")
    assert p["status"] == status
    assert p["fields"]["status"]["value"] == status
    assert p["fields"]["amount_paid"]["value"] == money(expected_paid)
    assert totals(p, "outstanding") == {"EUR": Decimal("100.00") - Decimal(expected_paid)}


def test_payments_in_another_currency_do_not_count():
    _, p = invoice(World(), [charge("100.00", "USD"), charge("10.00")], amount_due=money("100.00", "EUR"))
    assert p["status"] == "open"
    assert p["fields"]["amount_paid"]["value"] == money("10.00", "EUR")
    assert totals(p, "paid") == {"EUR": Decimal("10.00"), "USD": Decimal("100.00")}
    assert totals(p, "billed") == {"EUR": Decimal("100.00")}
    assert totals(p, "outstanding")["EUR"] == Decimal("90.00")


def test_refund_in_another_currency_does_not_reduce_the_invoice_currency():
    _, p = invoice(World(), [charge("100.00"), refund("50.00", "GBP")], amount_due=money("100.00"))
    assert p["status"] == "paid"
    assert totals(p, "paid")["EUR"] == Decimal("100.00")
    assert totals(p, "paid")["GBP"] == Decimal("-50.00")


def test_invoice_totals_per_currency_and_links():
    w = World()
    _, p = invoice(w, [charge("10.10"), charge("5.05", "USD")],
                   [{"amount": money("100.00")}, {"amount": money("0.01")}, {"amount": money("7.00", "USD")}],
                   amount_due=money("100.00"), subscription_id="sub_1", erp_order_no="SO1", customer_id="cus_1")
    assert totals(p, "billed") == {"EUR": Decimal("100.00")}
    assert totals(p, "paid") == {"EUR": Decimal("10.10"), "USD": Decimal("5.05")}
    assert totals(p, "posted") == {"EUR": Decimal("100.01"), "USD": Decimal("7.00")}
    assert totals(p, "outstanding")["EUR"] == Decimal("89.90")
    assert [m["currency"] for m in p["totals"]["billed"] + p["totals"]["paid"]] == ["EUR", "EUR", "USD"]
    assert all(m["amount"].as_tuple().exponent == -2 for t in p["totals"].values() for m in t)
    assert p["links"] == {"payments": ["py_0", "py_1"], "postings": ["ar_0", "ar_1", "ar_2"],
                          "sales_order": ["SO1"], "subscription": ["sub_1"]}
    assert p["fields"]["customer_id"]["value"] == "cus_1"
    assert p["fields"]["customer_id"]["system"] == "billing"
    assert p["projection"] == "invoice" and p["id"] == "in_1"


def test_invoice_without_links():
    _, p = invoice(World(), amount_due=money("1.00"))
    assert p["links"] == {"payments": [], "postings": [], "sales_order": [], "subscription": []}
    assert totals(p, "posted") == {} and totals(p, "paid") == {}


def test_billings_differing_amount_paid_and_status_kept_as_alternatives():
    inv, p = invoice(World(), [charge("40.00")], amount_due=money("100.00"),
                     amount_paid=money("100.00"), status="paid")
    assert p["status"] == "open"
    status = p["fields"]["status"]
    assert status["value"] == "open" and status["system"] == "trueup"
    assert status["alternatives"] == [{**provenance(inv), "value": "paid"}]
    paid = p["fields"]["amount_paid"]
    assert paid["value"] == money("40.00") and paid["system"] == "trueup"
    assert paid["alternatives"] == [{**provenance(inv), "value": money("100.00")}]
    assert provenance(inv)["system"] == "billing" and provenance(inv)["table"] == "invoices"


def test_agreeing_billing_values_leave_no_alternatives():
    inv, p = invoice(World(), [charge("100.00")], amount_due=money("100.00"),
                     amount_paid=money("100.00"), status="paid")
    assert p["status"] == "paid"
    assert p["fields"]["status"]["alternatives"] == []
    assert p["fields"]["amount_paid"]["alternatives"] == []
    due = p["fields"]["amount_due"]
    assert due["value"] == money("100.00")
    assert {k: due[k] for k in ("system", "table", "position")} == provenance(inv)
    assert epoch_ms(due["source_ts"]) == inv["source_ts"]  # as Avro decodes it: a UTC datetime
    assert p["correlation_id"] == inv["correlation_id"]


# --- account survivorship ------------------------------------------------------------------------------


def account_members(w: World, acc: dict | None = None, cus: dict | None = None, erp: dict | None = None):
    events = {}
    if acc is not None:
        events["account"] = w.upsert("account", "ACC-1", **acc)
    if cus is not None:
        events["billing_customer"] = w.upsert("billing_customer", "cus_1", **cus)
    if erp is not None:
        events["erp_customer"] = w.upsert("erp_customer", "C100", **erp)
    member_id = {"account": "ACC-1", "billing_customer": "cus_1", "erp_customer": "C100"}
    members = {(t, member_id[t]): data_of(ev) for t, ev in events.items()}
    return events, members


def alt(ev: dict, value) -> dict:
    return {**provenance(ev), "value": value}


def origin(field: dict) -> dict:
    return {k: field[k] for k in ("system", "table", "position")}


def test_crm_wins_name_domain_country_status():
    ev, members = account_members(
        World(),
        acc={"name": "Acme", "domain": "acme.example", "country": "DE", "status": "active",
             "billing_customer_id": "cus_1", "erp_customer_no": "C100"},
        cus={"name": "ACME Inc", "delinquent": True, "crm_account_id": "ACC-1"},
        erp={"name": "Acme", "country": "AT", "tax_id": "ATU1", "credit_hold": True, "crm_account_id": "ACC-1"})
    p = account_projection("ACC-1", members)
    f = p["fields"]
    assert f["name"]["value"] == "Acme" and origin(f["name"]) == provenance(ev["account"])
    assert f["name"]["alternatives"] == [alt(ev["billing_customer"], "ACME Inc")]  # erp agrees: not listed
    assert f["domain"]["value"] == "acme.example"
    assert f["country"]["value"] == "DE" and f["country"]["alternatives"] == [alt(ev["erp_customer"], "AT")]
    assert f["status"]["value"] == "active" and p["status"] == "active"
    assert f["status"]["system"] == "crm"


def test_erp_wins_tax_id_credit_hold_customer_number_and_billing_wins_delinquent():
    ev, members = account_members(
        World(),
        acc={"name": "Acme", "tax_id": "DE111", "erp_customer_no": "C999", "billing_customer_id": "cus_9"},
        cus={"delinquent": True},
        erp={"tax_id": "DE222", "credit_hold": True})
    f = account_projection("ACC-1", members)["fields"]
    assert f["tax_id"]["value"] == "DE222" and origin(f["tax_id"]) == provenance(ev["erp_customer"])
    assert f["tax_id"]["alternatives"] == [alt(ev["account"], "DE111")]
    assert f["credit_hold"]["value"] is True and f["credit_hold"]["system"] == "erp"
    assert f["erp_customer_no"]["value"] == "C100" and f["erp_customer_no"]["system"] == "erp"
    assert f["erp_customer_no"]["alternatives"] == [alt(ev["account"], "C999")]
    assert f["billing_customer_id"]["value"] == "cus_1" and f["billing_customer_id"]["system"] == "billing"
    assert f["billing_customer_id"]["alternatives"] == [alt(ev["account"], "cus_9")]
    assert f["delinquent"]["value"] is True and origin(f["delinquent"]) == provenance(ev["billing_customer"])


def test_owner_missing_the_other_systems_value_stands_in_with_its_provenance():
    ev, members = account_members(World(), acc={"name": None, "country": None, "tax_id": "DE111",
                                                 "erp_customer_no": "C100"},
                                  cus={"name": "From Billing"})
    f = account_projection("ACC-1", members)["fields"]
    # no ERP customer: the account's tax id and customer number stand in, with CRM provenance
    assert f["tax_id"]["value"] == "DE111" and origin(f["tax_id"]) == provenance(ev["account"])
    assert f["erp_customer_no"]["value"] == "C100" and f["erp_customer_no"]["system"] == "crm"
    # the account has no name: billing's stands in, with billing provenance
    assert f["name"]["value"] == "From Billing" and origin(f["name"]) == provenance(ev["billing_customer"])
    assert epoch_ms(f["name"]["source_ts"]) == ev["billing_customer"]["source_ts"]
    # nobody holds a value: none, and no provenance
    assert f["country"]["value"] is None and f["credit_hold"]["value"] is None
    assert f["credit_hold"]["system"] is None

    ev2, members2 = account_members(World(), acc={"name": None, "country": None},
                                    erp={"name": "From ERP", "country": "FR"})
    f2 = account_projection("ACC-1", members2)["fields"]
    assert f2["name"]["value"] == "From ERP" and origin(f2["name"]) == provenance(ev2["erp_customer"])
    assert f2["country"]["value"] == "FR" and f2["country"]["system"] == "erp"
    assert f2["delinquent"]["value"] is None and f2["delinquent"]["system"] is None


def test_stand_in_keeps_other_differing_values_as_alternatives():
    ev, members = account_members(World(), acc={"name": None}, cus={"name": "B"}, erp={"name": "E"})
    name = account_projection("ACC-1", members)["fields"]["name"]
    assert name["value"] == "B" and name["system"] == "billing"
    assert name["alternatives"] == [alt(ev["erp_customer"], "E")]


def test_account_projection_needs_the_account():
    _, members = account_members(World(), cus={"name": "x"})
    assert account_projection("ACC-1", members) is None


def test_account_status_unknown_when_crm_has_none():
    _, members = account_members(World(), acc={"status": None})
    assert account_projection("ACC-1", members)["status"] == "unknown"


# --- account links, either direction (through the driver) ----------------------------------------------


def links(driver, account_id="ACC-1"):
    return driver.projections[("account", account_id)]["links"]


def test_customer_names_the_account():
    w = World()
    driver = driver_of([w.upsert("account", "ACC-1", name="Acme"),
                        w.upsert("billing_customer", "cus_1", crm_account_id="ACC-1", delinquent=True),
                        w.upsert("erp_customer", "C100", crm_account_id="ACC-1", credit_hold=True)])
    assert links(driver) == {"billing_customers": ["cus_1"], "erp_customers": ["C100"]}
    f = driver.projections[("account", "ACC-1")]["fields"]
    assert f["delinquent"]["value"] is True and f["credit_hold"]["value"] is True


def test_account_names_the_customer():
    w = World()
    driver = driver_of([w.upsert("billing_customer", "cus_1", delinquent=True),
                        w.upsert("erp_customer", "C100", tax_id="T1"),
                        w.upsert("account", "ACC-1", billing_customer_id="cus_1", erp_customer_no="C100")])
    assert links(driver) == {"billing_customers": ["cus_1"], "erp_customers": ["C100"]}
    assert driver.projections[("account", "ACC-1")]["fields"]["tax_id"]["value"] == "T1"


def test_links_follow_changes_on_either_side():
    w = World()
    driver = driver_of([w.upsert("account", "ACC-1", billing_customer_id="cus_1"),
                        w.upsert("billing_customer", "cus_1"),
                        w.upsert("billing_customer", "cus_2"),
                        w.upsert("erp_customer", "C100", crm_account_id="ACC-1")])
    assert links(driver) == {"billing_customers": ["cus_1"], "erp_customers": ["C100"]}
    driver.feed(w.upsert("account", "ACC-1", billing_customer_id="cus_2"))
    assert links(driver)["billing_customers"] == ["cus_2"]
    driver.feed(w.upsert("erp_customer", "C100", crm_account_id=None))
    assert links(driver)["erp_customers"] == []
    driver.feed(w.upsert("account", "ACC-1", billing_customer_id=None))
    assert links(driver)["billing_customers"] == []
    driver.feed(w.upsert("billing_customer", "cus_1", crm_account_id="ACC-1"))
    assert links(driver)["billing_customers"] == ["cus_1"]
    driver.feed(w.delete("billing_customer", "cus_1"))
    assert links(driver)["billing_customers"] == []


def test_customers_own_link_beats_an_account_naming_it():
    w = World()
    driver = driver_of([w.upsert("account", "ACC-1", billing_customer_id="cus_1"),
                        w.upsert("account", "ACC-2"),
                        w.upsert("billing_customer", "cus_1", crm_account_id="ACC-2")])
    assert links(driver, "ACC-1")["billing_customers"] == []
    assert links(driver, "ACC-2")["billing_customers"] == ["cus_1"]
    # the account's own claim still shows as a disagreeing value on the account
    f = driver.projections[("account", "ACC-1")]["fields"]["billing_customer_id"]
    assert f["value"] == "cus_1" and f["system"] == "crm"


# --- quote to cash -------------------------------------------------------------------------------------


def q2c(driver, opp="OPP-1"):
    return driver.projections.get(("quote_to_cash", opp))


def test_quote_to_cash_only_for_closed_won():
    w = World()
    opp = w.upsert("opportunity", "OPP-1", stage="negotiation", amount=money("500.00"), close_date=a_date(3))
    driver = driver_of([opp])
    assert q2c(driver) is None
    assert quote_to_cash_projection("OPP-1", {("opportunity", "OPP-1"): data_of(opp)}) is None
    won = w.upsert("opportunity", "OPP-1", stage="closed_won", amount=money("500.00"), close_date=a_date(3),
                   account_id="ACC-1")
    driver.feed(won)
    p = q2c(driver)
    assert p["status"] == "awaiting_provisioning"
    assert p["fields"]["stage"]["value"] == "closed_won" and p["fields"]["stage"]["system"] == "crm"
    assert p["fields"]["close_date"]["value"] == "2026-01-04"
    assert p["fields"]["amount"]["value"] == money("500.00")
    assert p["fields"]["account_id"]["value"] == "ACC-1"
    assert p["correlation_id"] == won["correlation_id"]
    driver.feed(w.upsert("opportunity", "OPP-1", stage="closed_lost"))
    assert q2c(driver) is None
    assert driver.emitted[-1] == ("quote_to_cash", "OPP-1", None)


def _q2c_world():
    w = World()
    events = [
        w.upsert("opportunity", "OPP-1", stage="closed_won"),
        w.upsert("subscription", "sub_1", crm_opportunity_id="OPP-1"),
        w.upsert("sales_order", "SO1", crm_opportunity_id="OPP-1", billing_subscription_id="sub_1"),
        # through the subscription (it also names the order: counted once)
        w.upsert("invoice", "in_1", subscription_id="sub_1", erp_order_no="SO1", amount_due=money("100.00")),
        # through the order: no subscription
        w.upsert("invoice", "in_2", erp_order_no="SO1", amount_due=money("50.00")),
        # a subscription the invoice names which belongs to another opportunity: not here
        w.upsert("subscription", "sub_9", crm_opportunity_id="OPP-9"),
        w.upsert("invoice", "in_9", subscription_id="sub_9", erp_order_no="SO1", amount_due=money("7.00")),
        w.upsert("payment", "py_1", invoice_id="in_1", amount=money("100.00")),
        w.upsert("payment", "py_2", invoice_id="in_2", amount=money("20.00")),
        w.upsert("payment", "py_3", invoice_id="in_2", amount=money("5.00"), kind="refund"),
        w.upsert("ar_posting", "ar_1", invoice_ref="in_1", order_no="SO1", amount=money("100.00")),
        w.upsert("ar_posting", "ar_2", order_no="SO1", amount=money("3.00")),
        w.upsert("ar_posting", "ar_3", invoice_ref="in_2", amount=money("50.00")),
    ]
    return w, events


def test_quote_to_cash_reaches_invoices_once_through_subscription_or_order():
    _, events = _q2c_world()
    p = q2c(driver_of(events))
    assert p["links"] == {"subscriptions": ["sub_1"], "sales_orders": ["SO1"], "invoices": ["in_1", "in_2"],
                          "payments": ["py_1", "py_2", "py_3"], "postings": ["ar_1", "ar_2", "ar_3"]}
    assert totals(p, "billed") == {"EUR": Decimal("150.00")}
    assert totals(p, "paid") == {"EUR": Decimal("115.00")}
    assert totals(p, "posted") == {"EUR": Decimal("153.00")}
    assert totals(p, "outstanding") == {"EUR": Decimal("35.00")}
    assert p["status"] == "invoiced"


def test_quote_to_cash_status_values():
    w = World()
    driver = driver_of([w.upsert("opportunity", "OPP-1", stage="closed_won")])
    assert q2c(driver)["status"] == "awaiting_provisioning"
    driver.feed(w.upsert("sales_order", "SO1", crm_opportunity_id="OPP-1"))
    assert q2c(driver)["status"] == "provisioned"
    driver.feed(w.upsert("invoice", "in_1", erp_order_no="SO1", amount_due=money("10.00")))
    assert q2c(driver)["status"] == "invoiced"
    driver.feed(w.upsert("payment", "py_1", invoice_id="in_1", amount=money("10.00"), status="pending"))
    assert q2c(driver)["status"] == "invoiced"
    driver.feed(w.upsert("payment", "py_1", invoice_id="in_1", amount=money("10.00"), status="succeeded"))
    assert q2c(driver)["status"] == "paid"
    assert totals(q2c(driver), "outstanding") == {"EUR": Decimal("0.00")}
    driver.feed(w.upsert("payment", "py_2", invoice_id="in_1", amount=money("10.00"), kind="refund"))
    assert q2c(driver)["status"] == "invoiced"
    driver.feed(w.delete("sales_order", "SO1"))
    assert q2c(driver)["status"] == "awaiting_provisioning"
    assert q2c(driver)["links"]["invoices"] == []


def test_invoice_gaining_a_subscription_moves_from_the_order_path():
    w = World()
    driver = driver_of([
        w.upsert("opportunity", "OPP-1", stage="closed_won"),
        w.upsert("opportunity", "OPP-2", stage="closed_won"),
        w.upsert("sales_order", "SO1", crm_opportunity_id="OPP-1"),
        w.upsert("subscription", "sub_2", crm_opportunity_id="OPP-2"),
        w.upsert("invoice", "in_1", erp_order_no="SO1", amount_due=money("10.00")),
    ])
    assert q2c(driver, "OPP-1")["links"]["invoices"] == ["in_1"]
    driver.feed(w.upsert("invoice", "in_1", erp_order_no="SO1", subscription_id="sub_2",
                         amount_due=money("10.00")))
    assert q2c(driver, "OPP-1")["links"]["invoices"] == []
    assert totals(q2c(driver, "OPP-1"), "billed") == {}
    assert q2c(driver, "OPP-2")["links"]["invoices"] == ["in_1"]
    assert totals(q2c(driver, "OPP-2"), "billed") == {"EUR": Decimal("10.00")}


def test_quote_to_cash_projection_directly_from_summaries():
    w = World()
    opp = data_of(w.upsert("opportunity", "OPP-1", stage="closed_won"))
    inv = data_of(w.upsert("invoice", "in_1", amount_due=money("5.00", "USD")))
    pay = data_of(w.upsert("payment", "py_1", invoice_id="in_1", amount=money("5.00", "USD")))
    post_i = data_of(w.upsert("ar_posting", "ar_1", invoice_ref="in_1", amount=money("5.00", "USD")))
    post_o = data_of(w.upsert("ar_posting", "ar_2", order_no="SO1", amount=money("1.00", "EUR")))
    summary = {"invoice": inv, "payments": {"py_1": pay}, "postings": {"ar_1": post_i}}
    order = data_of(w.upsert("sales_order", "SO1", crm_opportunity_id="OPP-1"))
    members = {("opportunity", "OPP-1"): opp,
               ("order", "SO1"): {"order": order, "invoices": {"in_1": summary}, "postings": {"ar_2": post_o}}}
    p = quote_to_cash_projection("OPP-1", members)
    assert totals(p, "billed") == {"USD": Decimal("5.00")}
    assert totals(p, "posted") == {"EUR": Decimal("1.00"), "USD": Decimal("5.00")}
    assert p["status"] == "paid"


def test_a_void_invoice_bills_nothing():
    from decimal import Decimal

    from streams.projections import invoice_projection

    invoice = {"fields": {"id": "in_v", "amount_due": {"amount": Decimal("50.00"), "currency": "EUR"},
                          "status": "void"},
               "system": "billing", "table": "invoices", "position": "lsn:1", "source_ts": 0, "correlation_id": "c"}
    proj = invoice_projection("in_v", {("invoice", "in_v"): invoice})
    assert proj["status"] == "void"
    assert proj["totals"]["billed"] == [] and proj["totals"]["outstanding"] == []
