"""Queries over ClickHouse's ``system`` tables; values are bound as parameters."""

from __future__ import annotations

import re

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
#: per table and column: rows, the column's bytes, parts, the whole table's bytes (each
#: part's row carries its part's total; compact parts report no bytes per column) and type
COLUMN_SIZES = _parse(
    "SELECT database, table, column, sum(rows), sum(column_data_uncompressed_bytes), count(), "
    "sum(data_uncompressed_bytes), any(type) "
    "FROM system.parts_columns WHERE active AND database IN {dbs: Array(String)} "
    "GROUP BY database, table, column"
)
PING = _parse("SELECT 1")
PARTS = _parse(
    "SELECT partition_id, name, rows FROM system.parts WHERE database = {db: String} "
    "AND table = {name: String} AND active ORDER BY partition_id, name"
)
#: what changes when any writer changes a table: its active parts and their latest change
PARTS_FINGERPRINT = _parse(
    "SELECT database, table, count(), sum(rows), max(modification_time) FROM system.parts "
    "WHERE active AND database IN {dbs: Array(String)} GROUP BY database, table "
    "ORDER BY database, table"
)
TABLE_KEYS = _parse(
    "SELECT database, name, sorting_key, partition_key, engine, primary_key FROM system.tables "
    "WHERE database IN {dbs: Array(String)}"
)


def row_count(table: str) -> exp.Select:
    """``SELECT count() FROM table``."""
    return exp.select(exp.Count(this=exp.Star())).from_(exp.to_table(table))


def bucket_bounds(table: str, bucket: str) -> exp.Select:
    """``SELECT min(bucket), max(bucket), count() FROM table``: where a rollup's data lies."""
    column = exp.column(bucket)
    return exp.select(exp.Min(this=column), exp.Max(this=column.copy()),
                      exp.Count(this=exp.Star())).from_(exp.to_table(table))


def explain_estimate(statement: exp.Select) -> exp.Command:
    """``EXPLAIN ESTIMATE <select>``: ClickHouse's estimate of the parts, rows and marks the
    statement reads per table, without running it. sqlglot has no node for ClickHouse's
    ``EXPLAIN`` kinds, so the built statement is wrapped in a command; its ``{pN:Type}``
    placeholders stay placeholders.

    >>> explain_estimate(exp.select("a").from_("t")).sql(dialect="clickhouse")
    'EXPLAIN ESTIMATE SELECT a FROM t'
    """
    return exp.Command(this="EXPLAIN", expression=exp.Literal.string(
        "ESTIMATE " + statement.sql(dialect="clickhouse")))


def leads_with(key: str, column: str) -> bool:
    """Whether a key's first comma-separated element uses ``column`` (callers pass a sorting
    key, or each element of a partition key): then a range on ``column`` prunes.

    >>> leads_with("event_ts, event_id", "event_ts"), leads_with("toYYYYMM(ts)", "ts")
    (True, True)
    >>> leads_with("region, ts", "ts")
    False
    """
    first = key.split(",", 1)[0]
    return re.search(rf"\b{re.escape(column)}\b", first) is not None


def table_fingerprints(tables: list[str]) -> exp.Select:
    """``(db.table, fingerprint)`` of each of ``tables``, which changes when its rows do and
    not when background merges rewrite its parts: its UUID (a swap by EXCHANGE changes it),
    its rows, the newest block inserted and the newest mutation applied (from the active
    parts). A table without parts to read this from (a view, Memory, Log) cannot be versioned:
    its fingerprint differs every time, so what stores its values is never served."""
    names = exp.Array(expressions=[exp.Literal.string(t) for t in tables])
    databases = exp.Array(expressions=[exp.Literal.string(d)
                                       for d in sorted({t.split(".", 1)[0] for t in tables})])
    parts = _parse(
        "SELECT database, table, concat(toString(sum(rows)), ':', "
        "toString(max(max_block_number)), ':', "
        "toString(max(toUInt64OrZero(splitByChar('_', name)[5])))) AS version "
        "FROM system.parts GROUP BY database, table")
    parts.set("where", exp.Where(this=exp.and_(
        exp.column("active"), exp.In(this=exp.column("database"), field=databases.copy()))))
    full = exp.func("concat", exp.column("database", "t"), exp.Literal.string("."),
                    exp.column("name", "t"))
    versioned = exp.func("concat", exp.func("toString", exp.column("uuid", "t")),
                         exp.Literal.string(":"),
                         exp.func("ifNull", exp.column("version", "p"),
                                  exp.Literal.string("empty")))
    unversioned = exp.func("concat", exp.Literal.string("unversioned:"),
                           exp.func("toString", exp.func("now64", exp.Literal.number(6))),
                           exp.Literal.string(":"),
                           exp.func("toString", exp.func("rand")))
    fingerprint = exp.If(this=exp.Like(this=exp.column("engine", "t"),
                                       expression=exp.Literal.string("%MergeTree")),
                         true=versioned, false=unversioned)
    return (exp.select(exp.alias_(full, "input"), exp.alias_(fingerprint, "fingerprint"))
            .from_(exp.table_("tables", db="system", alias="t"))
            .join(parts.subquery("p"), on=exp.and_(
                exp.EQ(this=exp.column("database", "t"), expression=exp.column("database", "p")),
                exp.EQ(this=exp.column("name", "t"), expression=exp.column("table", "p"))),
                join_type="LEFT")
            .where(exp.In(this=full.copy(), field=names)))
