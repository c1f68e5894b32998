"""Aggregations and the partial aggregates (components) a rollup stores for them.

Aggregations decompose into *components*: the partial aggregates a rollup stores. Each
component says how a rollup column is typed, how the materialized view fills it, how a serving
query merges it, and whether merging its states equals one pass over the raw rows.

The model format names the aggregations and their methods (``semantic.model.AGGREGATIONS`` and
``METHODS``); this table says how each of those compiles, keyed by them, and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlglot import exp

from engine.dialect.functions import call
from semantic.model import AGGREGATIONS as MODEL_AGGREGATIONS
from semantic.model import METHODS


def _aggregate(name: str, args: list[exp.Expr],
               params: tuple[float, ...] = ()) -> exp.Expr:
    """``name(args)`` or, for parametric aggregates, ``name(params)(args)``."""
    if params:
        return exp.ParameterizedAgg(this=name, expressions=[exp.Literal.number(p) for p in params],
                                    params=args)
    return call(name, *args)


@dataclass(frozen=True, slots=True)
class ComponentKind:
    """How one partial aggregate is stored, filled and merged.

    ``simple`` components are stored as ``SimpleAggregateFunction(merge, T)`` of the plain
    aggregate's result; the others as ``AggregateFunction(name, ArgType)`` states. A measure
    ``filter`` becomes the ``-If`` combinator everywhere (``countIf``, ``uniqStateIf``).
    ``state_params`` are the parameters a parametric state is stored with; the level a
    quantile is read at is given when merging, so p50, p90 and p99 share one stored digest.
    """

    name: str
    short: str
    simple: bool
    merge: str
    exact: bool
    note: str
    state_params: tuple[float, ...] = ()
    #: estimated nanoseconds per stored byte to merge and finish at read time, and per byte
    #: of the argument to aggregate raw rows (routing's cost model; see PLAIN_BYTE_NS)
    read_ns: float = 1.5
    raw_ns: float = 1.5

    def column_type(self, arg_type: str, result_type: str) -> str:
        if self.simple:
            return f"SimpleAggregateFunction({self.merge}, {result_type})"
        if self.state_params:
            params = ", ".join(str(p) for p in self.state_params)
            return f"AggregateFunction({self.name}({params}), {arg_type})"
        return f"AggregateFunction({self.name}, {arg_type})"

    def _args(self, arg: exp.Expr | None,
              condition: exp.Expr | None) -> list[exp.Expr]:
        args = [arg] if arg is not None else []
        if condition is not None and self.name in ("min", "max") and arg is not None:
            # minIf over no matching rows gives 0, which would win when merged: keep NULL.
            args = [call("toNullable", arg)]
        return args + ([condition] if condition is not None else [])

    def fill(self, arg: exp.Expr | None,
             condition: exp.Expr | None = None) -> exp.Expr:
        """The expression a materialized view or backfill uses to fill the column."""
        suffix = "If" if condition is not None else ""
        if self.simple:
            return call(self.name + suffix, *self._args(arg, condition))
        return _aggregate(f"{self.name}State{suffix}", self._args(arg, condition),
                          self.state_params)

    def combine(self, column: exp.Expr, params: tuple[float, ...] = ()) -> exp.Expr:
        """The expression a serving query uses to merge stored partials (``params``: the level
        of a quantile)."""
        if self.simple:
            return call(self.merge, column)
        return _aggregate(f"{self.name}Merge", [column], params)

    def merge_state(self, column: exp.Expr) -> exp.Expr:
        """Stored partials merged but kept partial, to combine with partials of raw rows."""
        if self.simple:
            return call(self.merge, column)
        return _aggregate(f"{self.name}MergeState", [column], self.state_params)

    def raw(self, arg: exp.Expr | None, condition: exp.Expr | None = None,
            params: tuple[float, ...] = ()) -> exp.Expr:
        """The same aggregate computed in one pass over raw rows."""
        suffix = "If" if condition is not None else ""
        return _aggregate(self.name + suffix, self._args(arg, condition),
                          params if not self.simple else ())


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
                      "states equal one pass over the raw rows", read_ns=20.0, raw_ns=3.0),
        ComponentKind("uniqExact", "uniqexact", False, "uniqExactMerge", True, "exact",
                      read_ns=20.0, raw_ns=8.0),
        ComponentKind("quantileTDigest", "tdigest", False, "quantileTDigestMerge", False,
                      "t-digest: about 1 % rank error; merged digests differ from a one-pass "
                      "digest by about as much", (0.5,), read_ns=10.0, raw_ns=10.0),
        ComponentKind("quantileExact", "qexact", False, "quantileExactMerge", True,
                      "every value is kept: exact, but as large as the column", (0.5,),
                      read_ns=5.0, raw_ns=5.0),
        ComponentKind("groupBitmap", "bitmap", False, "groupBitmapMerge", True,
                      "a roaring bitmap of integer ids: exact", read_ns=3.0, raw_ns=3.0),
        ComponentKind("uniqHLL12", "hll12", False, "uniqHLL12Merge", True,
                      "HyperLogLog, 4,096 cells (2.5 KiB)", read_ns=3.0, raw_ns=3.0),
        ComponentKind("uniqCombined", "ucombined", False, "uniqCombinedMerge", True,
                      "array, hash set, then HyperLogLog of 2^17 cells", read_ns=5.0,
                      raw_ns=4.0),

    )
}


@dataclass(frozen=True, slots=True)
class Aggregation:
    """A measure aggregation: the components it needs and how to finish it from them."""

    name: str
    components: tuple[str, ...]
    finish: Callable[[list[exp.Expr]], exp.Expr]
    exact: bool
    note: str


def _single(parts: list[exp.Expr]) -> exp.Expr:
    return parts[0]


def _ratio(parts: list[exp.Expr]) -> exp.Expr:
    # ClickHouse float division: 0/0 is nan, the same value avg() gives over no rows.
    return exp.Div(this=parts[0], expression=parts[1])


TDIGEST_NOTE = ("approximate: t-digest (quantileTDigest), about 1 % rank error and Float32 "
                "values; a rollup's merged digests may differ from a one-pass digest over raw "
                "rows by about as much")

#: aggregation name (``quantile``/``median`` suffixed with their method) -> how it decomposes
AGGREGATIONS: dict[str, Aggregation] = {
    a.name: a
    for a in (
        Aggregation("count", ("count",), _single, True, "exact"),
        Aggregation("sum", ("sum",), _single, True,
                    "exact for integer values; Float64 sums may differ in the last bits"),
        Aggregation("min", ("min",), _single, True, "exact"),
        Aggregation("max", ("max",), _single, True, "exact"),
        Aggregation("avg", ("sum", "count"), _ratio, True,
                    "served as sum / count from stored partials; float rounding only"),
        Aggregation("count_distinct", ("uniqExact",), _single, True, "exact (uniqExact)"),
        Aggregation("count_distinct_approx", ("uniq",), _single, False,
                    "approximate: uniq(), about 1-2 % error; rollups equal raw uniq() exactly"),
        Aggregation("count_distinct:bitmap", ("groupBitmap",), _single, True,
                    "exact (groupBitmap of integer ids); small states, fast to merge"),
        Aggregation("count_distinct_approx:hll12", ("uniqHLL12",), _single, False,
                    "approximate: uniqHLL12(), about 1.6 % standard error (exact below 16 "
                    "values); 2.5 KiB states, the fastest to merge; rollups equal raw "
                    "uniqHLL12() exactly"),
        Aggregation("count_distinct_approx:combined", ("uniqCombined",), _single, False,
                    "approximate: uniqCombined(), about 0.3 % standard error, exact for small "
                    "counts; rollups equal raw uniqCombined() exactly"),

        Aggregation("quantile:tdigest", ("quantileTDigest",), _single, False, TDIGEST_NOTE),
        Aggregation("quantile:exact", ("quantileExact",), _single, True,
                    "exact (quantileExact): rollups keep every value"),
    )
}


#: aggregations whose value over no rows is 0 (the others' is null)
ZERO_WHEN_EMPTY: tuple[str, ...] = ("count", "sum", "count_distinct", "count_distinct_approx")


def zero_when_empty(aggregation: Aggregation) -> bool:
    """Whether an aggregation is 0 over no rows (counts and sums), not null."""
    return aggregation.name.split(":")[0] in ZERO_WHEN_EMPTY


def aggregation_for(agg: str, method: str | None) -> Aggregation:
    """The aggregation of a measure (``median`` is the 0.5 quantile; ``method`` picks a
    distinct-count or quantile algorithm)."""
    if agg in ("quantile", "median"):
        return AGGREGATIONS[f"quantile:{method or 'tdigest'}"]
    if method is not None and method not in ("exact", "uniq"):  # the defaults
        return AGGREGATIONS[f"{agg}:{method}"]
    return AGGREGATIONS[agg]


def _compiled_names() -> set[str]:
    """The table's key of every aggregation and method the model format names."""
    return {aggregation_for(agg, method).name for agg in MODEL_AGGREGATIONS
            for method in METHODS.get(agg, (None,))}


if _compiled_names() != set(AGGREGATIONS):  # one vocabulary: the model format's
    raise ImportError("engine.dialect.aggregations and semantic.model.AGGREGATIONS/METHODS "
                      f"disagree: {sorted(_compiled_names() ^ set(AGGREGATIONS))}")
