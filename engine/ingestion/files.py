"""Bringing your own data: a source table from a file's schema, and a model scaffolded from a
table's columns.

ClickHouse infers the schema (``DESCRIBE format(...)``); this module only builds statements and
text. The time column orders and partitions the table (by month), so rollups of it are
partitioned the same way and ranges on it prune.
"""

from __future__ import annotations

import json
import re
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
NUMBER_TYPES = ("Int", "UInt", "Float", "Decimal")
#: string columns with at most this many distinct values become dimensions
DIMENSION_CARDINALITY = 1000
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _file_table(fmt: str) -> exp.Table:
    placeholder = exp.Placeholder(this=DATA_PARAMETER, kind=data_type("String"))
    return exp.Table(this=call("format", exp.var(fmt), placeholder))


def describe_file(fmt: str) -> exp.Describe:
    """The columns ClickHouse infers for a file's bytes, bound as the ``data`` parameter.

    >>> describe_file("Parquet").sql(dialect="clickhouse")
    'DESCRIBE format(Parquet, {data: String})'
    """
    return exp.Describe(this=_file_table(fmt))


def distinct_counts(columns: Sequence[str], table: str | None, fmt: str | None = None,
                    sample_rows: int = 100_000) -> exp.Select:
    """Rows and distinct values of ``columns`` over a sample of a table (or of a file)."""
    source: exp.Expression = exp.to_table(table) if table else _file_table(fmt or "")
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


def _quoted(text: str) -> str:
    """A YAML double-quoted scalar (a column named ``yes`` or ``null`` stays a string)."""
    return json.dumps(text)


def _member_name(column: str, prefix: str = "") -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", f"{prefix}{column}")
    return name if _IDENTIFIER.match(name) else f"c_{name}"


def scaffold_model(source: str, table: str, columns: Mapping[str, str],
                   distinct: Mapping[str, int], rows: int) -> str:
    """A ``metrics.yaml`` for a table: its time column, dimensions from low-cardinality text
    columns, a count, a sum per numeric column, one rollup and one endpoint; with comments
    saying what to edit."""
    time = time_column(columns)
    dimensions = [c for c, kind in columns.items() if c != time
                  and base_type(kind).split("(")[0] in ("String", "FixedString", "Enum8",
                                                        "Enum16", "Bool")
                  and distinct.get(c, DIMENSION_CARDINALITY + 1) <= DIMENSION_CARDINALITY]
    numbers = [c for c, kind in columns.items() if c != time and c not in dimensions
               and base_type(kind).startswith(NUMBER_TYPES)]
    lines = [
        "# Scaffolded by `semantic init`: edit freely, then `semantic validate` and",
        "# `semantic plan` / `semantic apply`. Every key is described in docs/model.md.",
        "version: 1",
        "rollup_database: semantic",
        "",
        "sources:",
        f"  {source}:",
        f"    table: {table}",
    ]
    if time is not None:
        lines.append(f"    time: {_quoted(time)}   # rollups and ranges bucket this column")
    else:
        lines.append("    # no Date/DateTime column was found: add `time:` to get time grains")
    dimension_names = []
    lines.append(f"    dimensions:                  # text columns with at most "
                 f"{DIMENSION_CARDINALITY} distinct values in {rows:,} rows")
    for column in dimensions:
        name = _member_name(column)
        dimension_names.append(name)
        lines.append(f"      {name}: {{column: {_quoted(column)}}}   # {distinct.get(column, 0)} "
                     "values")
    if not dimensions:
        lines[-1] = "    dimensions: {}              # none found: add the columns you group by"
    lines.append("    measures:                    # a count, and a sum per numeric column")
    measure_names = ["row_count"]
    lines.append("      row_count: {agg: count}")
    for column in numbers:
        name = _member_name(column, "total_")
        measure_names.append(name)
        lines.append(f"      {name}: {{agg: sum, column: {_quoted(column)}}}   # or avg, min, max")
    rollup_dimensions = dimension_names[:1]
    grain = "day" if time is not None else None
    rollup_name = "daily" if grain else "summary"
    lines += ["    rollups:                     # what to precompute; add more as queries need",
              f"      {rollup_name}:",
              f"        dimensions: [{', '.join(rollup_dimensions)}]"]
    if grain:
        lines.append(f"        grain: {grain}")
    lines += [f"        measures: [{', '.join(measure_names)}]",
              "",
              "endpoints:                       # GET paths answering a saved query",
              f"  /api/{source}:"]
    if grain:
        lines.append(f"    grain: {grain}")
    fields = list(rollup_dimensions) + ([f"{grain}: {_quoted(time or '')}"] if grain else []) \
        + measure_names
    lines.append("    fields:")
    lines += [f"      {f}" if ":" in f else f"      {f}: {f}" for f in fields]
    return "\n".join(lines) + "\n"
