"""streams.mapping: the shipped mapping, topic naming, and errors naming file, source, table and field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from streams.mapping import ENTITY_TYPES, HEARTBEAT_TABLE, SIGNAL_TABLE, MappingError, load_mapping

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "mapping.yaml"

EXPECTED_TABLES = {
    ("crm", "accounts"): ("account", ["id"]),
    ("crm", "opportunities"): ("opportunity", ["id"]),
    ("billing", "customers"): ("billing_customer", ["id"]),
    ("billing", "subscriptions"): ("subscription", ["id"]),
    ("billing", "invoices"): ("invoice", ["id"]),
    ("billing", "payments"): ("payment", ["id"]),
    ("erp", "customers"): ("erp_customer", ["customer_no"]),
    ("erp", "sales_orders"): ("sales_order", ["order_no"]),
    ("erp", "ar_postings"): ("ar_posting", ["id"]),
}


@pytest.fixture(scope="module")
def mapping():
    return load_mapping(SHIPPED)


REFERENCE = ("crm", "billing", "erp")


def test_shipped_mapping_has_the_nine_reference_tables(mapping):
    assert list(mapping.sources) == [*REFERENCE, "billing_poll", "billing_api"]
    found = {
        (name, table): (spec.entity, spec.key)
        for name, source in mapping.sources.items() if name in REFERENCE
        for table, spec in source.tables.items()
    }
    assert found == EXPECTED_TABLES


def test_every_entity_type_mapped_exactly_once_by_the_reference_sources(mapping):
    entities = [spec.entity for name in REFERENCE for spec in mapping.sources[name].tables.values()]
    assert sorted(entities) == sorted(ENTITY_TYPES)
    assert len(ENTITY_TYPES) == 9


def test_the_polled_billing_sources_map_billing_tables_under_their_own_prefix(mapping):
    for name in ("billing_poll", "billing_api"):
        source = mapping.sources[name]
        assert source.system == "billing" and source.topic_prefix == name
        assert source.tables == mapping.sources["billing"].tables


def test_data_topics_follow_debezium_naming(mapping):
    for name, source in mapping.sources.items():
        assert source.topic_prefix == name
        assert source.schema_ == "public"
        assert source.data_topics == [f"{name}.public.{table}" for table in source.tables]


def test_control_topics(mapping):
    for name, source in mapping.sources.items():
        assert source.control_topics == [
            f"{name}.public.{HEARTBEAT_TABLE}",
            f"{name}.public.{SIGNAL_TABLE}",
            f"__debezium-heartbeat.{name}",
        ]
    assert HEARTBEAT_TABLE == "trueup_heartbeat"
    assert SIGNAL_TABLE == "debezium_signal"


def test_source_of_topic_roundtrips_every_data_topic(mapping):
    for (name, table) in EXPECTED_TABLES:
        assert mapping.source_of_topic(f"{name}.public.{table}") == (name, table)


def test_same_table_name_in_two_sources_is_told_apart(mapping):
    assert mapping.source_of_topic("billing.public.customers") == ("billing", "customers")
    assert mapping.source_of_topic("erp.public.customers") == ("erp", "customers")


@pytest.mark.parametrize(
    "topic",
    [
        "crm.public.trueup_heartbeat",
        "billing.public.debezium_signal",
        "__debezium-heartbeat.erp",
        "crm.public.unknown_table",
        "crm.other.accounts",
        "crm.accounts",
        "trueup.events.account",
        "",
    ],
)
def test_source_of_topic_is_none_for_non_data_topics(mapping, topic):
    assert mapping.source_of_topic(topic) is None


def test_custom_prefix_and_schema(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump({"sources": {"sf": {
        "system": "crm", "topic_prefix": "salesforce", "schema": "sales",
        "tables": {"account": {"entity": "account", "key": ["Id"],
                               "columns": {"Id": "text", "Name": "text", "BillingCountry": "text"},
                               "rename": {"Id": "id", "Name": "name", "BillingCountry": "country"}}},
    }}}))
    m = load_mapping(path)
    assert m.sources["sf"].data_topics == ["salesforce.sales.account"]
    assert m.source_of_topic("salesforce.sales.account") == ("sf", "account")
    assert "__debezium-heartbeat.salesforce" in m.sources["sf"].control_topics


# ---- errors -----------------------------------------------------------------------------------


def _shipped_data() -> dict:
    return yaml.safe_load(SHIPPED.read_text())


def _write(tmp_path: Path, data) -> Path:
    path = tmp_path / "bad-mapping.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_unknown_entity_type_names_file_source_table_and_field(tmp_path):
    data = _shipped_data()
    data["sources"]["billing"]["tables"]["invoices"]["entity"] = "bill"
    path = _write(tmp_path, data)
    with pytest.raises(MappingError) as exc:
        load_mapping(path)
    message = str(exc.value)
    assert str(path) in message
    assert "source billing" in message
    assert "table invoices" in message
    assert "field entity" in message


def test_missing_key_list_names_file_source_table_and_field(tmp_path):
    data = _shipped_data()
    del data["sources"]["erp"]["tables"]["sales_orders"]["key"]
    path = _write(tmp_path, data)
    with pytest.raises(MappingError) as exc:
        load_mapping(path)
    message = str(exc.value)
    assert str(path) in message
    assert "source erp" in message
    assert "table sales_orders" in message
    assert "field key" in message


def test_empty_key_list_is_rejected(tmp_path):
    data = _shipped_data()
    data["sources"]["crm"]["tables"]["accounts"]["key"] = []
    path = _write(tmp_path, data)
    with pytest.raises(MappingError) as exc:
        load_mapping(path)
    assert "table accounts" in str(exc.value)
    assert "field key" in str(exc.value)


def test_unknown_table_field_is_rejected(tmp_path):
    data = _shipped_data()
    data["sources"]["crm"]["tables"]["opportunities"]["colour"] = "red"
    path = _write(tmp_path, data)
    with pytest.raises(MappingError) as exc:
        load_mapping(path)
    assert "table opportunities" in str(exc.value)
    assert "colour" in str(exc.value)


def test_bad_topic_prefix_names_source_and_field(tmp_path):
    data = _shipped_data()
    data["sources"]["crm"]["topic_prefix"] = "has space"
    path = _write(tmp_path, data)
    with pytest.raises(MappingError) as exc:
        load_mapping(path)
    assert str(path) in str(exc.value)
    assert "crm" in str(exc.value)
    assert "topic_prefix" in str(exc.value)


def test_missing_mapping_file(tmp_path):
    path = tmp_path / "absent.yaml"
    with pytest.raises(MappingError) as exc:
        load_mapping(path)
    assert str(path) in str(exc.value)
    assert "not found" in str(exc.value)


def test_invalid_yaml_names_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("sources:\n  crm: {system: crm\n  - ][\n")
    with pytest.raises(MappingError) as exc:
        load_mapping(path)
    assert str(path) in str(exc.value)
    assert "YAML" in str(exc.value)


def test_a_user_schema_maps_by_renames(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump({"sources": {"stripe": {
        "system": "billing", "topic_prefix": "stripe", "schema": "public",
        "tables": {"charges": {"entity": "payment", "key": ["charge_id"],
                               "columns": {"charge_id": "text", "amount_cents": "numeric", "ccy": "text"},
                               "rename": {"charge_id": "id"}, "scales": {"amount_cents": 0},
                               "money": {"amount": ["amount_cents", "ccy"]}}},
    }}}))
    m = load_mapping(path)
    assert m.sources["stripe"].tables["charges"].scale_of("amount_cents") == 0


@pytest.mark.parametrize(
    "table_patch,field",
    [
        ({"columns": {"nickname": "text"}}, "columns.nickname"),
        ({"columns": {"id": "texty"}}, "columns.id"),
        ({"columns": {"stage": "integer"}}, "columns.stage"),
        ({"key": ["missing"]}, "key"),
        ({"money": {"amount": ["nope", "currency"]}}, "money.amount"),
        ({"references": {"account_id": "galaxy"}}, "references.account_id"),
    ],
)
def test_mapping_errors_name_file_table_and_field(tmp_path, table_patch, field):
    data = _shipped_data()
    table = data["sources"]["crm"]["tables"]["opportunities"]
    for name, value in table_patch.items():
        if name == "columns":
            table["columns"].update(value)
        else:
            table[name] = value
    path = _write(tmp_path, data)
    with pytest.raises(MappingError) as exc:
        load_mapping(path)
    message = str(exc.value)
    assert str(path) in message and "table opportunities" in message and field in message, message


def test_catalog_check_names_unknown_and_retyped_columns():
    from streams.mapping import catalog_problems

    m = load_mapping(SHIPPED)
    catalog = {t: {c: {"text": "text", "numeric": "numeric", "integer": "integer", "boolean": "boolean",
                       "date": "date", "timestamptz": "timestamp with time zone"}[k]
                   for c, k in spec.columns.items()}
               for t, spec in m.sources["crm"].tables.items()}
    assert catalog_problems("crm", m.sources["crm"], catalog) == []
    del catalog["accounts"]["tax_id"]
    catalog["opportunities"]["amount"] = "double precision"
    problems = catalog_problems("crm", m.sources["crm"], catalog)
    assert any("table accounts, field columns.tax_id: unknown column" in p for p in problems)
    assert any("table opportunities, field columns.amount: bad type" in p for p in problems)


def test_control_kinds_name_each_sources_heartbeat_signal_and_transaction_topics(mapping):
    kinds = mapping.control_kinds
    assert kinds["__debezium-heartbeat.crm"] == ("heartbeat_topic", "crm")
    assert kinds[f"erp.public.{HEARTBEAT_TABLE}"] == ("heartbeat_table", "erp")
    assert kinds[f"billing.public.{SIGNAL_TABLE}"] == ("signal", "billing")
    assert kinds["billing_poll.transaction"] == ("transaction", "billing_poll")
    assert len(kinds) == 4 * len(mapping.sources)
    assert "crm.public.accounts" not in kinds
