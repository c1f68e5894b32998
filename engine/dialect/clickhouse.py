"""Everything the engine knows about ClickHouse, kept in one table-like module.

Aggregations decompose into *components*: the partial aggregates a rollup stores. Each
component says how a rollup column is typed, how the materialized view fills it, how a serving
query merges it, and whether merging its states equals one pass over the raw rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from sqlglot import exp

from semantic.model import GRAINS


def call(name: str, *args: exp.Expr) -> exp.Anonymous:
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
    return _parse_type(text).copy()


@lru_cache(maxsize=512)
def _parse_type(text: str) -> exp.DataType:
    # Types come from the model and the warehouse, so the cache stays small; parsing is the
    # dearest step of binding a filter value.
    return exp.DataType.build(text, dialect="clickhouse")


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


#: Routing's cost model, in estimated nanoseconds of engine time, measured on the embedded
#: engine with ``bench/calibrate_cost.py`` (2 cores; rounded, the ratios matter): reading a
#: plain column (keys, counts, sums, min/max) costs about 1.5 ns per uncompressed byte, and
#: grouping about 20 ns per row read, rollup rows and raw rows alike. Merging stored states
#: costs far more per byte than reading plain values (``read_ns`` of each kind below: uniq
#: states ~20 ns/byte), and aggregating raw rows costs ``raw_ns`` per argument byte.
PLAIN_BYTE_NS = 1.5
GROUP_ROW_NS = 20.0
#: each part read costs about 0.2 ms (GROUP BY over 1, 10 and 50 parts of a tiny table:
#: 1.5, 5.1 and 13.4 ms), which is why rollups are kept merged
PART_NS = 200_000.0

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


def aggregation_for(agg: str, method: str | None) -> Aggregation:
    """The aggregation of a measure (``median`` is the 0.5 quantile; ``method`` picks a
    distinct-count or quantile algorithm)."""
    if agg in ("quantile", "median"):
        return AGGREGATIONS[f"quantile:{method or 'tdigest'}"]
    if method is not None and method not in ("exact", "uniq"):  # the defaults
        return AGGREGATIONS[f"{agg}:{method}"]
    return AGGREGATIONS[agg]


FLOAT_TYPES = ("Float32", "Float64", "Nullable(Float32)", "Nullable(Float64)")


def base_type(type_name: str) -> str:
    """``LowCardinality(Nullable(DateTime))`` -> ``DateTime``, in any nesting order."""
    while type_name.startswith(("Nullable(", "LowCardinality(")):
        type_name = type_name[type_name.index("(") + 1:-1]
    return type_name


def is_date_type(type_name: str) -> bool:
    """A calendar-day type (``Date``/``Date32``), as opposed to an instant (``DateTime``)."""
    return base_type(type_name) in ("Date", "Date32")


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


#: integer types -> the values they hold (a bound filter value must fit its column's type)
INTEGER_RANGES: dict[str, tuple[int, int]] = {
    **{f"UInt{bits}": (0, 2**bits - 1) for bits in (8, 16, 32, 64, 128, 256)},
    **{f"Int{bits}": (-(2**(bits - 1)), 2**(bits - 1) - 1) for bits in (8, 16, 32, 64, 128, 256)},
}
#: types whose values a client writes as strings (a number compared with them is a mistake)
STRING_TYPE_PREFIXES = ("String", "FixedString(", "Enum8(", "Enum16(", "UUID", "IPv4", "IPv6")


def value_kind(type_name: str) -> str:
    """How a filter value for a column of this type is written: ``integer``, ``number``,
    ``string``, ``date`` (``YYYY-MM-DD``), ``datetime`` or ``other``.

    >>> [value_kind(t) for t in ("LowCardinality(String)", "UInt8", "Decimal(9, 2)", "Date32")]
    ['string', 'integer', 'number', 'date']
    """
    base = base_type(type_name)
    if base in INTEGER_RANGES:
        return "integer"
    if base.startswith(("Float", "Decimal", "BFloat16")):
        return "number"
    if base.startswith(STRING_TYPE_PREFIXES):
        return "string"
    if base in ("Date", "Date32"):
        return "date"
    if base.startswith("DateTime"):
        return "datetime"
    return "other"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def time_span(type_name: str) -> tuple[datetime, datetime]:
    """The instants ``[first, last)`` a time range may name on a time column of this type.

    ``DateTime64`` holds 1900 to 2299; ``DateTime`` (and days, which are compared as
    ``DateTime``) 1970 to 2106-02-07. The end is held back to a year boundary before the
    type's last instant, so rounding a range out to whole buckets never leaves the type.

    >>> [t.year for t in time_span("DateTime('UTC')")]
    [1970, 2106]
    """
    if base_type(type_name).startswith("DateTime64"):
        return datetime(1900, 1, 1, tzinfo=UTC), datetime(2299, 1, 1, tzinfo=UTC)
    return _EPOCH, datetime(2106, 1, 1, tzinfo=UTC)
