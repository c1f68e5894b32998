"""Bringing your own data: a source table from a file's schema, and the statements that
describe a file or table for ``semantic init`` (the model it writes is ``scaffold``'s).

ClickHouse infers the schema (``DESCRIBE format(...)``); this module only builds statements and
text. The time column orders and partitions the table (by month), so rollups of it are
partitioned the same way and ranges on it prune.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlglot import exp

from engine.dialect.functions import call
from engine.dialect.types import base_type, data_type

#: file suffix -> ClickHouse input format
FILE_FORMATS = {
    ".csv": "CSVWithNames",
    ".jsonl": "JSONEachRow",
    ".ndjson": "JSONEachRow",
    ".json": "JSONEachRow",
    ".parquet": "Parquet",
}
DATA_PARAMETER = "data"
TIME_TYPES = ("Date", "Date32", "DateTime", "DateTime64")


def file_table(fmt: str) -> exp.Table:
    """A file's rows, its bytes bound as the ``data`` parameter."""
    placeholder = exp.Placeholder(this=DATA_PARAMETER, kind=data_type("String"))
    return exp.Table(this=call("format", exp.var(fmt), placeholder))


def describe_file(fmt: str) -> exp.Describe:
    """The columns ClickHouse infers for a file's bytes, bound as the ``data`` parameter.

    >>> describe_file("Parquet").sql(dialect="clickhouse")
    'DESCRIBE format(Parquet, {data: String})'
    """
    return exp.Describe(this=file_table(fmt))


def distinct_counts(columns: Sequence[str], table: str | None, fmt: str | None = None,
                    sample_rows: int = 100_000) -> exp.Select:
    """Rows and distinct values of ``columns`` over a sample of a table (or of a file)."""
    source: exp.Expression = exp.to_table(table) if table else file_table(fmt or "")
    sample = exp.select("*").from_(source).limit(sample_rows).subquery("sample")
    return exp.select(call("count"), *[call("uniqExact", exp.column(c, quoted=True))
                                       for c in columns]).from_(sample)


def time_column(columns: Mapping[str, str]) -> str | None:
    """The first Date/DateTime column (the one rollups bucket and the table is ordered by)."""
    return next((name for name, kind in columns.items()
                 if base_type(kind).split("(")[0] in TIME_TYPES), None)


def create_source_table(table: str, columns: Mapping[str, str],
                        time: str | None) -> tuple[exp.Expression, ...]:
    """The database and a MergeTree table for ``columns``, ordered by ``time`` and partitioned
    by its month (the time column is made non-nullable: sorting keys cannot hold NULL).

    >>> [s.sql(dialect="clickhouse") for s in create_source_table(
    ...     "d.t", {"ts": "Nullable(DateTime)", "v": "Nullable(Int64)"}, "ts")][1]
    'CREATE TABLE d.t (ts DateTime, v Nullable(Int64)) ENGINE=MergeTree PARTITION BY \
toYYYYMM(ts) ORDER BY (ts)'
    """
    database, _ = table.split(".", 1)
    schema = exp.Schema(this=exp.to_table(table), expressions=[
        exp.ColumnDef(this=exp.to_identifier(name),
                      kind=data_type(base_type(kind) if name == time else kind))
        for name, kind in columns.items()])
    properties: list[exp.Expression] = [exp.EngineProperty(this=exp.var("MergeTree"))]
    if time is not None:
        properties.append(exp.PartitionedByProperty(this=call("toYYYYMM", exp.column(time))))
        order: exp.Expression = exp.Tuple(expressions=[exp.column(time)])
    else:
        order = call("tuple")
    properties.append(exp.Order(expressions=[exp.Ordered(this=order)]))
    create_database = exp.Create(this=exp.to_identifier(database), kind="DATABASE",
                                 exists=True)
    return create_database, exp.Create(this=schema, kind="TABLE",
                                       properties=exp.Properties(expressions=properties))
