"""Queries over ClickHouse's ``system`` tables; values are bound as parameters."""

from __future__ import annotations

import sqlglot
from sqlglot import exp


def _parse(sql: str) -> exp.Select:
    select = sqlglot.parse_one(sql, dialect="clickhouse")
    assert isinstance(select, exp.Select)
    return select


COLUMNS = _parse(
    "SELECT name, type FROM system.columns WHERE database = {db: String} "
    "AND table = {name: String} ORDER BY position"
)
TABLES = _parse("SELECT database, name FROM system.tables WHERE database IN {dbs: Array(String)}")
COLUMN_SIZES = _parse(
    "SELECT database, table, column, sum(rows), sum(column_data_uncompressed_bytes) "
    "FROM system.parts_columns WHERE active AND database IN {dbs: Array(String)} "
    "GROUP BY database, table, column"
)
PING = _parse("SELECT 1")


def row_count(table: str) -> exp.Select:
    """``SELECT count() FROM table``."""
    return exp.select(exp.Count(this=exp.Star())).from_(exp.to_table(table))


def bucket_bounds(table: str, bucket: str) -> exp.Select:
    """``SELECT min(bucket), max(bucket), count() FROM table``: where a rollup's data lies."""
    column = exp.column(bucket)
    return exp.select(exp.Min(this=column), exp.Max(this=column.copy()),
                      exp.Count(this=exp.Star())).from_(exp.to_table(table))
