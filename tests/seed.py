"""Rows the tests write straight into the sources with SQL (never through trueup's code)."""

from __future__ import annotations

import psycopg

# (source, table, key column, key) of rows present before the connectors' initial snapshot.
SNAPSHOT_ROWS = [
    ("crm", "accounts", "id", "ACC-SNAP01"),
    ("crm", "opportunities", "id", "OPP-SNAP01"),
    ("billing", "customers", "id", "cus_snap01"),
    ("billing", "invoices", "id", "in_snap01"),
    ("erp", "customers", "customer_no", "C900001"),
    ("erp", "sales_orders", "order_no", "SO900001"),
]

SEED_SQL = {
    "crm": [
        "INSERT INTO accounts (id, name, domain, country, status) VALUES "
        "('ACC-SNAP01', 'Snapshot GmbH', 'snapshot.example', 'DE', 'active')",
        "INSERT INTO opportunities (id, account_id, stage, amount, currency) VALUES "
        "('OPP-SNAP01', 'ACC-SNAP01', 'closed_won', 1200.00, 'EUR')",
    ],
    "billing": [
        "INSERT INTO customers (id, crm_account_id, name, currency) VALUES "
        "('cus_snap01', 'ACC-SNAP01', 'Snapshot GmbH', 'EUR')",
        "INSERT INTO invoices (id, customer_id, amount_due, currency, status) VALUES "
        "('in_snap01', 'cus_snap01', 1200.00, 'EUR', 'open')",
    ],
    "erp": [
        "INSERT INTO customers (customer_no, crm_account_id, name, country) VALUES "
        "('C900001', 'ACC-SNAP01', 'Snapshot GmbH', 'DE')",
        "INSERT INTO sales_orders (order_no, customer_no, total_amount, currency) VALUES "
        "('SO900001', 'C900001', 1200.00, 'EUR')",
    ],
}


def seed_snapshot_rows(stack, state) -> None:
    for source, statements in SEED_SQL.items():
        with psycopg.connect(stack.dsn(source, state)) as conn:
            for statement in statements:
                conn.execute(statement)


def execute(dsn: str, statement: str, params: tuple = ()) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute(statement, params)
