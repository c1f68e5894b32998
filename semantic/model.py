"""The validated semantic model: frozen dataclasses, every node with its source location."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from semantic.errors import Issue
from semantic.location import Location

GRAINS: tuple[str, ...] = ("minute", "hour", "day", "week", "month", "quarter", "year")
#: grains of the fiscal calendar (``fiscal_year_start``): queries and endpoints may ask for
#: them; rollups keep calendar grains (a month rollup serves every fiscal calendar)
FISCAL_GRAINS: tuple[str, ...] = ("fiscal_quarter", "fiscal_year")
QUERY_GRAINS: tuple[str, ...] = GRAINS + FISCAL_GRAINS
WEEKDAYS: tuple[str, ...] = ("monday", "tuesday", "wednesday", "thursday", "friday",
                             "saturday", "sunday")
MONTH_NAMES: tuple[str, ...] = ("january", "february", "march", "april", "may", "june",
                                "july", "august", "september", "october", "november",
                                "december")
AGGREGATIONS: tuple[str, ...] = (
    "count",
    "sum",
    "min",
    "max",
    "avg",
    "count_distinct",
    "count_distinct_approx",
    "quantile",
    "median",
)
#: how quantile/median states are kept: a t-digest (small, approximate) or every value (exact)
QUANTILE_METHODS: tuple[str, ...] = ("tdigest", "exact")
#: ``method`` choices per aggregation, the default first
METHODS: dict[str, tuple[str, ...]] = {
    "quantile": QUANTILE_METHODS,
    "median": QUANTILE_METHODS,
    "count_distinct": ("exact", "bitmap"),
    "count_distinct_approx": ("uniq", "hll12", "combined"),
}
RETURNS: tuple[str, ...] = ("object", "list")
#: how many rows of the joined source match one row of the joining source: at most one, so a
#: join never multiplies a measure (``one_to_many`` would, and is refused)
RELATIONSHIPS: tuple[str, ...] = ("many_to_one", "one_to_one")
#: filter operators of queries; each takes one value, a list, or none (``is_null``)
FILTER_OPS: tuple[str, ...] = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte",
                               "contains", "starts_with", "ilike", "not_ilike", "is_null",
                               "is_not_null")
LIST_OPS: tuple[str, ...] = ("in", "not_in")
NULLARY_OPS: tuple[str, ...] = ("is_null", "is_not_null")
DEFAULT_TIMEZONE = "UTC"
#: derived time measures (``metrics:`` entries): at a bucket B of the query's grain,
#: ``rolling`` aggregates the window ending where B ends, ``to_date`` the period containing B
#: up to B's end, ``cumulative`` everything up to B's end, ``offset`` the bucket ``by`` earlier
TIME_FUNCTIONS: tuple[str, ...] = ("rolling", "to_date", "cumulative", "offset")
#: the periods a ``to_date`` measure restarts at
PERIODS: tuple[str, ...] = ("week", "month", "quarter", "year", "fiscal_quarter",
                            "fiscal_year")
_DURATION = re.compile(r"\s*(\d{1,6})\s+([a-z]+?)s?\s*")


@dataclass(frozen=True, slots=True)
class Duration:
    """``count`` units of time (a unit is a grain name): a window, an offset."""

    count: int
    unit: str

    def __str__(self) -> str:
        return f"{self.count} {self.unit}{'' if self.count == 1 else 's'}"


def parse_duration(text: str) -> Duration:
    """``'7 days'``, ``'1 year'``, ``'4 weeks'``: a positive count and a unit (a grain name,
    singular or plural). Raises ``ValueError`` saying what is expected."""
    match = _DURATION.fullmatch(text.lower()) if isinstance(text, str) else None
    if match is None or match[2] not in GRAINS or not 1 <= int(match[1]) <= 100_000:
        raise ValueError(f"expected 'N unit' with N from 1 to 100000 and a unit of "
                         f"{', '.join(GRAINS)} (e.g. '7 days', '1 year')")
    return Duration(int(match[1]), match[2])


@dataclass(frozen=True, slots=True)
class Ref:
    """A reference by name to another node, located where the reference is written."""

    name: str
    location: Location = field(compare=False)


@dataclass(frozen=True, slots=True)
class Dimension:
    """A groupable attribute: a source column (``column``) or a SQL expression (``sql``)."""

    name: str
    column: str | None
    sql: str | None
    description: str
    location: Location = field(compare=False)
    #: where the ``column`` or ``sql`` value is written (the member itself if implicit)
    expression_location: Location | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Measure:
    """An aggregation over a column or SQL expression (``count`` may have neither)."""

    name: str
    agg: str
    column: str | None
    sql: str | None
    description: str
    location: Location = field(compare=False)
    #: where the ``column`` or ``sql`` value is written (the member itself if implicit)
    expression_location: Location | None = field(default=None, compare=False)
    #: SQL condition: only rows where it holds are aggregated (``countIf`` and friends)
    filter: str | None = None
    filter_location: Location | None = field(default=None, compare=False)
    #: quantile level in (0, 1) for ``quantile`` (0.5 for ``median``)
    level: float | None = None
    #: ``tdigest`` or ``exact`` for quantile/median
    method: str | None = None


@dataclass(frozen=True, slots=True)
class TimeFunction:
    """A measure aggregated over other buckets than the one a row shows (``TIME_FUNCTIONS``):
    ``window`` for ``rolling``, ``period`` for ``to_date``, ``by`` for ``offset``."""

    kind: str
    measure: Ref
    location: Location = field(compare=False)
    window: Duration | None = None
    period: str | None = None
    by: Duration | None = None

    def describe(self) -> str:
        what = {"rolling": f"over the {self.window} ending with each bucket",
                "to_date": f"from the start of the {self.period} to the end of each bucket",
                "cumulative": "over everything up to the end of each bucket",
                "offset": f"at the bucket {self.by} earlier"}[self.kind]
        return f"{self.measure.name} {what}"


@dataclass(frozen=True, slots=True)
class Metric:
    """A derived metric: an arithmetic expression over measures and other metrics, or a time
    function of one measure (``time``; ``sql`` is then that measure's name)."""

    name: str
    sql: str
    description: str
    location: Location = field(compare=False)
    expression_location: Location | None = field(default=None, compare=False)
    time: TimeFunction | None = None


@dataclass(frozen=True, slots=True)
class Rollup:
    """A pre-aggregation: the measures grouped by the dimensions at a time grain."""

    name: str
    dimensions: tuple[Ref, ...]
    grain: str | None
    measures: tuple[Ref, ...]
    location: Location = field(compare=False)


@dataclass(frozen=True, slots=True)
class SecurityClaim:
    """Row-level security: a caller sees only the rows whose ``dimension`` holds the value (or
    one of the values) of its credential's ``claim``; a caller without the claim sees nothing."""

    claim: str
    dimension: Ref
    location: Location = field(compare=False)


@dataclass(frozen=True, slots=True)
class Join:
    """A LEFT JOIN from a source to another source by its primary key: ``keys`` maps this
    source's columns to the joined source's key columns. Its dimensions are then addressed as
    ``<join name>.<dimension>`` (and through its own joins, ``<join>.<join>.<dimension>``)."""

    name: str
    source: Ref
    keys: tuple[tuple[str, str], ...]
    relationship: str
    location: Location = field(compare=False)
    keys_location: Location | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Source:
    """A raw table with its time column, dimensions, measures and rollups."""

    name: str
    table: str
    time_column: str | None
    dimensions: tuple[Dimension, ...]
    measures: tuple[Measure, ...]
    rollups: tuple[Rollup, ...]
    location: Location = field(compare=False)
    time_location: Location | None = field(default=None, compare=False)
    metrics: tuple[Metric, ...] = ()
    #: IANA zone in which rollup time buckets are cut (and the default zone of queries)
    timezone: str = DEFAULT_TIMEZONE
    timezone_location: Location | None = field(default=None, compare=False)
    #: on a cluster: the local (Replicated) table under the Distributed ``table``
    local_table: str | None = None
    #: row-level security: claims of the caller's credential -> dimensions they restrict
    security: tuple[SecurityClaim, ...] = ()
    description: str = ""
    #: the columns that identify a row (a source others join to names them)
    primary_key: tuple[str, ...] = ()
    primary_key_location: Location | None = field(default=None, compare=False)
    joins: tuple[Join, ...] = ()
    #: the day weeks start on (week grain, week rollups, to-date weeks), a ``WEEKDAYS`` name
    week_start: str = "monday"
    #: the month fiscal years start in (grains fiscal_quarter and fiscal_year), ``MONTH_NAMES``
    fiscal_year_start: str = "january"

    @property
    def database(self) -> str:
        return self.table.split(".", 1)[0]

    @property
    def table_name(self) -> str:
        return self.table.split(".", 1)[1]

    def dimension(self, name: str) -> Dimension | None:
        return next((d for d in self.dimensions if d.name == name), None)

    def measure(self, name: str) -> Measure | None:
        return next((m for m in self.measures if m.name == name), None)

    def metric(self, name: str) -> Metric | None:
        return next((m for m in self.metrics if m.name == name), None)

    def join(self, name: str) -> Join | None:
        return next((j for j in self.joins if j.name == name), None)

    def is_aggregate(self, name: str) -> bool:
        """Whether ``name`` is a measure or a metric (an aggregated member)."""
        return self.measure(name) is not None or self.metric(name) is not None

    def member_names(self) -> tuple[str, ...]:
        time = (self.time_column,) if self.time_column else ()
        return (time + tuple(d.name for d in self.dimensions)
                + tuple(m.name for m in self.measures) + tuple(m.name for m in self.metrics))


def default_source(sources: list[tuple[str, bool]]) -> str | None:
    """The source a query naming none asks, from ``(name, has measures or metrics)`` pairs:
    the only source, else the only one with measures (the dimension tables a star schema's
    facts join have none); None when that is ambiguous."""
    if len(sources) == 1:
        return sources[0][0]
    measured = [name for name, aggregated in sources if aggregated]
    return measured[0] if len(measured) == 1 else None


@dataclass(frozen=True, slots=True)
class Field:
    """One JSON field of an endpoint: its name in the response and the member it shows."""

    name: str
    member: Ref


@dataclass(frozen=True, slots=True)
class OrderItem:
    """Sort by a field (endpoint) or member (query), ascending unless ``descending``."""

    name: Ref
    descending: bool = False


@dataclass(frozen=True, slots=True)
class EndpointFilter:
    """A fixed filter applied to every call of an endpoint."""

    dimension: Ref
    op: str
    values: tuple[object, ...]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A generated ``GET`` endpoint: a saved query with JSON names and a response shape."""

    path: str
    source: Ref
    returns: str
    grain: str | None
    fields: tuple[Field, ...]
    order: tuple[OrderItem, ...]
    filters: tuple[EndpointFilter, ...]
    limit: int | None
    description: str
    location: Location = field(compare=False)


@dataclass(frozen=True, slots=True)
class Model:
    """The whole validated model."""

    file: str
    rollup_database: str
    sources: tuple[Source, ...]
    endpoints: tuple[Endpoint, ...]
    #: ClickHouse cluster the rollups are created on (``ON CLUSTER``), if any
    cluster: str | None = None
    #: issues that do not stop the model from loading (``severity`` "warning")
    warnings: tuple[Issue, ...] = field(default=(), compare=False)

    def source(self, name: str) -> Source | None:
        return next((s for s in self.sources if s.name == name), None)
