"""The SQL twin of streams/verify_core.py: the same row text, row hash and key bucket, computed in PostgreSQL."""

from __future__ import annotations

from psycopg import sql

from streams.mapping import TableMapping
from streams.verify_core import NULL


def _rendered(column: str, kind: str, scale: int) -> sql.Composable:
    col = sql.Identifier(column)
    if kind == "numeric":
        expr = sql.SQL("round({}::numeric, {})::text").format(col, sql.Literal(scale))
    elif kind == "boolean":
        expr = sql.SQL("CASE WHEN {} THEN 'true' ELSE 'false' END").format(col)
    elif kind == "integer":
        expr = sql.SQL("{}::bigint::text").format(col)
    elif kind == "date":
        expr = sql.SQL("({} - DATE '1970-01-01')::text").format(col)
    elif kind in ("timestamp", "timestamptz"):
        expr = sql.SQL("(extract(epoch FROM {}) * 1000000)::bigint::text").format(col)
    else:
        expr = sql.SQL("{}::text").format(col)
    return sql.SQL("coalesce({}, {})").format(expr, sql.Literal(NULL))


def row_text(spec: TableMapping) -> sql.Composable:
    parts = [_rendered(c, spec.columns[c], spec.scale_of(c)) for c in sorted(spec.columns)]
    return sql.SQL("concat_ws(chr(31), {})").format(sql.SQL(", ").join(parts))


def row_hash(spec: TableMapping) -> sql.Composable:
    return sql.SQL("('x' || substr(md5({}), 1, 16))::bit(64)::bigint").format(row_text(spec))


def entity_id(spec: TableMapping) -> sql.Composable:
    return sql.SQL("concat_ws('|', {})").format(sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(k))
                                                                   for k in spec.key))


def bucket(spec: TableMapping, buckets: int) -> sql.Composable:
    return sql.SQL("((('x' || substr(md5({}), 1, 8))::bit(32)::bigint) %% {})").format(entity_id(spec),
                                                                                      sql.Literal(buckets))


SINCE_COLUMN = "updated_at"


def since_filter(spec: TableMapping) -> sql.Composable:
    """Rows changed at or after %s (a timestamptz), or every row when it is NULL or the table has no such column."""
    if SINCE_COLUMN not in spec.columns:
        return sql.SQL("%s::timestamptz IS NULL OR TRUE")
    return sql.SQL("(%s::timestamptz IS NULL OR {} >= %s::timestamptz)").format(sql.Identifier(SINCE_COLUMN))


def since_params(spec: TableMapping, since) -> list:
    return [since] if SINCE_COLUMN not in spec.columns else [since, since]


def sums_query(schema: str, table: str, spec: TableMapping, buckets: int,
               parent_level: int | None = None) -> sql.Composable:
    """One row per key bucket: (bucket, rows, sum of row hashes); the table is never fetched row by row.

    With parent_level, a parameter follows the since filter's: the buckets at that coarser count to split.
    """
    where = since_filter(spec)
    if parent_level is not None:
        where = sql.SQL("{} AND {} = ANY(%s)").format(where, bucket(spec, parent_level))
    return sql.SQL("SELECT b, count(*), sum(h) FROM (SELECT {} AS b, {} AS h FROM {}.{} WHERE {}) t GROUP BY b").format(
        bucket(spec, buckets), row_hash(spec), sql.Identifier(schema), sql.Identifier(table), where)


def rows_query(schema: str, table: str, spec: TableMapping, buckets: int) -> sql.Composable:
    """A page of the rows of some buckets, in key order after a key: (id, hash, mapped columns...)."""
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in sorted(spec.columns))
    return sql.SQL("SELECT {} AS id, {} AS h, {} FROM {}.{} WHERE {} AND {} = ANY(%s) AND {} > %s "
                   "ORDER BY 1 LIMIT %s").format(
        entity_id(spec), row_hash(spec), columns, sql.Identifier(schema), sql.Identifier(table), since_filter(spec),
        bucket(spec, buckets), entity_id(spec))
