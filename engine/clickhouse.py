"""Everything the engine knows about ClickHouse, kept in one table-like module.

Aggregations decompose into *components*: the partial aggregates a rollup stores. Each
component says how a rollup column is typed, how the materialized view fills it, how a serving
query merges it, and whether merging its states equals one pass over the raw rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlglot import exp

from semantic.model import GRAINS


def call(name: str, *args: exp.Expression) -> exp.Anonymous:
    """A ClickHouse function call, kept verbatim (camelCase names survive generation).

    >>> call("uniqMerge", exp.column("u")).sql(dialect="clickhouse")
    'uniqMerge(u)'
    """
    return exp.Anonymous(this=name, expressions=list(args))


def data_type(text: str) -> exp.DataType:
    """Parse a ClickHouse type; built with the dialect so ``String`` stays non-nullable.

    >>> data_type("AggregateFunction(uniq, String)").sql(dialect="clickhouse")
    'AggregateFunction(uniq, String)'
    """
    return exp.DataType.build(text, dialect="clickhouse")


@dataclass(frozen=True, slots=True)
class ComponentKind:
    """How one partial aggregate is stored, filled and merged.

    ``simple`` components are stored as ``SimpleAggregateFunction(merge, T)`` of the plain
    aggregate's result; the others as ``AggregateFunction(name, ArgType)`` states.
    """

    name: str
    short: str
    simple: bool
    merge: str
    exact: bool
    note: str

    def column_type(self, arg_type: str, result_type: str) -> str:
        if self.simple:
            return f"SimpleAggregateFunction({self.merge}, {result_type})"
        return f"AggregateFunction({self.name}, {arg_type})"

    def fill(self, arg: exp.Expression | None) -> exp.Expression:
        """The expression a materialized view or backfill uses to fill the column."""
        args = [arg] if arg is not None else []
        return call(self.name if self.simple else f"{self.name}State", *args)

    def combine(self, column: exp.Expression) -> exp.Expression:
        """The expression a serving query uses to merge stored partials."""
        return call(self.merge if self.simple else f"{self.name}Merge", column)

    def raw(self, arg: exp.Expression | None) -> exp.Expression:
        """The same aggregate computed in one pass over raw rows."""
        return call(self.name, *([arg] if arg is not None else []))


COMPONENTS: dict[str, ComponentKind] = {
    kind.name: kind
    for kind in (
        ComponentKind("count", "count", True, "sum", True, "count of rows, exact"),
        ComponentKind("sum", "sum", True, "sum", True,
                      "exact for integers; Float64 sums may differ in the last bits by order"),
        ComponentKind("min", "min", True, "min", True, "exact"),
        ComponentKind("max", "max", True, "max", True, "exact"),
        ComponentKind("uniq", "uniq", False, "uniqMerge", True,
                      "uniq(): adaptive sampling, about 1-2 % error, deterministic: merged "
                      "states equal one pass over the raw rows"),
        ComponentKind("uniqExact", "uniqexact", False, "uniqExactMerge", True, "exact"),
    )
}


@dataclass(frozen=True, slots=True)
class Aggregation:
    """A measure aggregation: the components it needs and how to finish it from them."""

    name: str
    components: tuple[str, ...]
    finish: Callable[[list[exp.Expression]], exp.Expression]
    raw: Callable[[exp.Expression | None], exp.Expression]
    exact: bool
    note: str


def _single(parts: list[exp.Expression]) -> exp.Expression:
    return parts[0]


def _ratio(parts: list[exp.Expression]) -> exp.Expression:
    # ClickHouse float division: 0/0 is nan, the same value avg() gives over no rows.
    return exp.Div(this=parts[0], expression=parts[1])


def _raw(name: str) -> Callable[[exp.Expression | None], exp.Expression]:
    def build(arg: exp.Expression | None) -> exp.Expression:
        return call(name, *([arg] if arg is not None else []))

    return build


AGGREGATIONS: dict[str, Aggregation] = {
    a.name: a
    for a in (
        Aggregation("count", ("count",), _single, _raw("count"), True, "exact"),
        Aggregation("sum", ("sum",), _single, _raw("sum"), True,
                    "exact for integer values; Float64 sums may differ in the last bits"),
        Aggregation("min", ("min",), _single, _raw("min"), True, "exact"),
        Aggregation("max", ("max",), _single, _raw("max"), True, "exact"),
        Aggregation("avg", ("sum", "count"), _ratio, _raw("avg"), True,
                    "served as sum / count from stored partials; float rounding only"),
        Aggregation("count_distinct", ("uniqExact",), _single, _raw("uniqExact"), True,
                    "exact (uniqExact)"),
        Aggregation("count_distinct_approx", ("uniq",), _single, _raw("uniq"), False,
                    "approximate: uniq(), about 1-2 % error; rollups equal raw uniq() exactly"),
    )
}

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
