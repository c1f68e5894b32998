"""ClickHouse functions the engine writes: calls kept verbatim, the function that truncates a
time column to each grain, the grains a stored grain derives, and the table engines."""

from __future__ import annotations

from sqlglot import exp

from semantic.model import GRAINS


def call(name: str, *args: exp.Expr) -> exp.Anonymous:
    """A ClickHouse function call, kept verbatim (camelCase names survive generation).

    >>> call("uniqMerge", exp.column("u")).sql(dialect="clickhouse")
    'uniqMerge(u)'
    """
    return exp.Anonymous(this=name, expressions=list(args))


#: time grain -> the function that truncates a Date/DateTime to it.
GRAIN_FUNCTIONS: dict[str, str] = {
    "minute": "toStartOfMinute",
    "hour": "toStartOfHour",
    "day": "toDate",
    "week": "toMonday",
    "month": "toStartOfMonth",
    "quarter": "toStartOfQuarter",
    "year": "toStartOfYear",
}

#: grain -> type of its buckets (day and coarser are Dates, so JSON shows "2026-01-01").
GRAIN_TYPES: dict[str, str] = {
    "minute": "DateTime",
    "hour": "DateTime",
    "day": "Date",
    "week": "Date",
    "month": "Date",
    "quarter": "Date",
    "year": "Date",
}

#: stored grain -> the grains a query can get from it by truncating buckets again.
#: ISO weeks straddle months and years, so only week itself comes from a week rollup.
DERIVABLE_GRAINS: dict[str, frozenset[str]] = {
    "minute": frozenset(GRAINS),
    "hour": frozenset(GRAINS) - {"minute"},
    "day": frozenset({"day", "week", "month", "quarter", "year"}),
    "week": frozenset({"week"}),
    "month": frozenset({"month", "quarter", "year"}),
    "quarter": frozenset({"quarter", "year"}),
    "year": frozenset({"year"}),
}


ROLLUP_ENGINE = "AggregatingMergeTree"
SOURCE_ENGINE = "MergeTree"
