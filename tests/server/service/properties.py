"""The rollup-equals-raw property's harness, shared by ``test_properties`` and
``test_properties_bulk``: the model and its source table, the data sets and queries hypothesis
draws, and the check that a routed answer equals the ``force_raw`` one row for row."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st
from sqlglot import exp

from engine.query.normalize import STRING_OPS
from engine.query.request import Filter, FilterGroup, FilterNode, Query, QueryError, TimeRange
from engine.serving.router import plan_query
from semantic import Model
from semantic.model import FILTER_OPS, GRAINS, LIST_OPS, NULLARY_OPS
from server.runtime.compiled import Runtime
from server.warehouse.statements import Warehouse
from tests.support import EVENTS_HEAD, build, fresh_database, insert_rows, model_text

COLUMNS = (
    ("ts", "DateTime"),
    ("region", "String"),
    ("user", "String"),
    ("amount", "Int64"),
    ("price", "Float64"),
    ("note", "Nullable(String)"),
)

# Dimensions mix plain columns, a Nullable column and SQL expressions; `user` is an expression
# that shadows the column its distinct-count measures read.
MODEL = EVENTS_HEAD + """\
    dimensions:
      region: {{}}
      note: {{}}
      region_upper: {{sql: upper(region)}}
      amount_bucket: {{sql: "intDiv(amount, 10)"}}
      user: {{sql: "left(user, 1)"}}
    measures:
      rows: {{agg: count}}
      amount_sum: {{agg: sum, column: amount}}
      amount_min: {{agg: min, column: amount}}
      amount_max: {{agg: max, column: amount}}
      amount_avg: {{agg: avg, column: amount}}
      abs_amount_sum: {{agg: sum, sql: abs(amount)}}
      price_sum: {{agg: sum, column: price}}
      price_min: {{agg: min, column: price}}
      price_max: {{agg: max, column: price}}
      price_avg: {{agg: avg, column: price}}
      users: {{agg: count_distinct, column: user}}
      users_approx: {{agg: count_distinct_approx, column: user}}
      notes: {{agg: count_distinct, column: note}}
      note_max: {{agg: max, column: note}}
      big_rows: {{agg: count, filter: amount > 0}}
      big_sum: {{agg: sum, column: amount, filter: "amount > 0 AND region != ''"}}
      big_price_min: {{agg: min, column: price, filter: amount > 0}}
      big_users: {{agg: count_distinct, column: user, filter: amount > 0}}
      amount_median: {{agg: median, column: amount, method: exact}}
      amount_p90: {{agg: quantile, level: 0.9, column: amount}}
    metrics:
      mean_amount: amount_sum / rows
      big_share: {{sql: big_rows / rows}}
      spread: amount_max - amount_min
      score: "big_share * 100 + spread - big_sum % 7"
    rollups:
      totals:
        measures: [rows, amount_sum, amount_min, amount_max, amount_avg, abs_amount_sum,
                   price_sum, price_min, price_max, price_avg, users, users_approx, notes,
                   note_max, score, big_price_min, big_users, amount_median, amount_p90]
      minutely:
        dimensions: [region]
        grain: minute
        measures: [rows, amount_sum, users_approx, mean_amount, big_rows, amount_p90]
      hourly:
        dimensions: [region, note]
        grain: hour
        measures: [rows, amount_sum, amount_min, price_sum, price_avg, users, big_sum,
                   big_users, amount_median]
      daily:
        dimensions: [region_upper, amount_bucket, user]
        grain: day
        measures: [rows, amount_avg, abs_amount_sum, price_min, price_max, users_approx,
                   notes, big_share, big_price_min, amount_p90]
      weekly:
        dimensions: [note, region_upper]
        grain: week
        measures: [rows, amount_max, users, note_max, spread]
      monthly:
        dimensions: [region, note, region_upper, amount_bucket, user]
        grain: month
        measures: [rows, amount_sum, amount_min, amount_max, amount_avg, abs_amount_sum,
                   price_sum, price_min, price_max, price_avg, users, users_approx, notes,
                   note_max, score, big_price_min, big_users, amount_median, amount_p90]
"""

DIMENSIONS = ("region", "note", "region_upper", "amount_bucket", "user")
MEASURES = ("rows", "amount_sum", "amount_min", "amount_max", "amount_avg", "abs_amount_sum",
            "price_sum", "price_min", "price_max", "price_avg", "users", "users_approx", "notes",
            "note_max", "big_rows", "big_sum", "big_price_min", "big_users", "amount_median",
            "amount_p90", "mean_amount", "big_share", "spread", "score")
#: measures whose merged states are approximate (t-digest): checked separately for their error
APPROXIMATE = {"amount_p90"}
#: measures HAVING may compare exactly (integer-valued)
HAVING_MEASURES = ("rows", "amount_sum", "amount_min", "users", "big_rows", "spread")
STRING_DIMENSIONS = ("region", "note", "region_upper", "user")
ZONES = ("UTC", "Europe/Berlin", "Asia/Kolkata", "America/New_York", "Australia/Lord_Howe")
#: the clock relative time ranges are resolved against
NOW = datetime(2025, 1, 1, 0, 30, tzinfo=UTC)
# Float64 sums and averages depend on summation order (measure -> column, and whether the
# error bound scales with the sum or the largest of the magnitudes); the rest match exactly.
FLOAT_MEASURES = {"price_sum": ("price", sum), "price_avg": ("price", max),
                  "amount_avg": ("amount", max)}

#: query grain -> the rollup grains whose buckets nest inside its buckets (ISO weeks straddle
#: months, so a week rollup serves only weeks).
NESTS_IN = {
    "minute": {"minute"},
    "hour": {"minute", "hour"},
    "day": {"minute", "hour", "day"},
    "week": {"minute", "hour", "day", "week"},
    "month": {"minute", "hour", "day", "month"},
    "quarter": {"minute", "hour", "day", "month", "quarter"},
    "year": {"minute", "hour", "day", "month", "quarter", "year"},
}


@dataclass(frozen=True, slots=True)
class Row:
    ts: datetime
    region: str
    user: str
    amount: int
    price: float
    note: str | None


@dataclass(frozen=True, slots=True)
class Dataset:
    """Rows; the first ``before`` are inserted before apply, the rest in parts cut at ``cuts``."""

    rows: tuple[Row, ...]
    before: int
    cuts: tuple[int, ...] = ()

    def parts(self) -> Iterator[tuple[Row, ...]]:
        bounds = [self.before, *sorted(c for c in self.cuts if self.before < c < len(self.rows)),
                  len(self.rows)]
        for start, end in zip(bounds, bounds[1:], strict=False):
            if start < end:
                yield self.rows[start:end]


@dataclass(frozen=True, slots=True)
class Pick:
    """A filter value taken from the data: the dimension's value in row ``index % len(rows)``."""

    index: int


FilterSpec = tuple[str, str, tuple[object, ...]]


@dataclass(frozen=True, slots=True)
class GroupSpec:
    op: str
    items: tuple[FilterSpec, ...]


@dataclass(frozen=True, slots=True)
class QuerySpec:
    measures: tuple[str, ...]
    dimensions: tuple[str, ...] = ()
    grain: str | None = None
    filters: tuple[FilterSpec | GroupSpec, ...] = ()
    time_range: TimeRange | None = None
    timezone: str | None = None

    def resolve(self, rows: Sequence[Row]) -> Query:
        def leaf(spec: FilterSpec) -> Filter:
            member, op, values = spec
            return Filter(member, op, tuple(_resolve(member, v, rows) for v in values))

        filters: list[FilterNode] = []
        for item in self.filters:
            if isinstance(item, GroupSpec):
                filters.append(FilterGroup(item.op, tuple(leaf(i) for i in item.items)))
            else:
                filters.append(leaf(item))
        return Query("events", self.measures, self.dimensions, self.grain, tuple(filters),
                     time_range=self.time_range, timezone=self.timezone)


def _ascii_upper(text: str) -> str:
    # ClickHouse upper() changes ASCII letters only.
    return "".join(c.upper() if "a" <= c <= "z" else c for c in text)


def dimension_value(name: str, row: Row) -> object:
    """What ClickHouse computes for a dimension of one row (None when it is NULL)."""
    if name == "region_upper":
        return _ascii_upper(row.region)
    if name == "amount_bucket":
        return -(-row.amount // 10) if row.amount < 0 else row.amount // 10  # rounds toward 0
    if name == "user":
        return row.user[:1]
    return getattr(row, name)


def _resolve(member: str, value: object, rows: Sequence[Row]) -> object:
    if not isinstance(value, Pick):
        return value
    if not rows:
        return 0 if member == "amount_bucket" else ""
    found = dimension_value(member, rows[value.index % len(rows)])
    return "" if found is None else found


# --- strategies -----------------------------------------------------------------------------

WORDS = ("", "eu", "EU", "us-east", "Zürich", "日本", "a'b\\c", " ")
# Instants on minute, hour, day, ISO-week, month, quarter and year boundaries.
INSTANTS = (
    datetime(2023, 12, 31, 23, 59, 59), datetime(2024, 1, 1), datetime(2024, 1, 1, 0, 0, 1),
    datetime(2024, 2, 29, 12, 1), datetime(2024, 3, 31, 23, 30), datetime(2024, 4, 1, 0, 0, 30),
    datetime(2024, 12, 29, 23, 59), datetime(2024, 12, 30, 8), datetime(2025, 1, 1, 0, 59, 59),
)
BIG = 2**40

texts = st.sampled_from(WORDS) | st.text(max_size=6)
amounts = st.sampled_from((0, 1, -1, 9, 10, -10, -11, BIG, -BIG)) | st.integers(-BIG, BIG)
prices = st.sampled_from((0.0, -0.0, 0.1, 1e15, -1e15)) | st.floats(
    -1e15, 1e15, allow_nan=False, allow_infinity=False)
# The ends of the DateTime range, where Date truncations clamp.
EXTREMES = (datetime(1970, 1, 1), datetime(1970, 1, 4, 23, 59, 59),
            datetime(2106, 2, 7, 6, 28, 15))
instants = st.sampled_from(INSTANTS) | st.sampled_from(EXTREMES) | st.datetimes(
    datetime(2023, 11, 20), datetime(2025, 2, 10)).map(lambda t: t.replace(microsecond=0))

# Few distinct values per column: many rows fall into few groups.
narrow_rows = st.builds(
    Row, st.sampled_from(INSTANTS[:4]), st.sampled_from(WORDS[:3]),
    st.sampled_from(("u1", "u2", "v1")), st.integers(-25, 25) | amounts,
    st.sampled_from((0.0, 1.25, -3.5, 1e12)), st.sampled_from((None, "x", "")),
)
# Values drawn freely: few rows per group.
wide_rows = st.builds(Row, instants, texts, texts, amounts, prices, st.none() | texts)


@st.composite
def datasets(draw: st.DrawFn) -> Dataset:
    rows = draw(st.lists(narrow_rows, max_size=300) | st.lists(wide_rows, max_size=60))
    before = draw(st.integers(0, len(rows)))
    cuts = draw(st.lists(st.integers(0, len(rows)), max_size=3))
    return Dataset(tuple(rows), before, tuple(cuts))


def _filter_values(member: str) -> st.SearchStrategy[object]:
    fresh = st.integers(-5, 5) if member == "amount_bucket" else texts
    return st.integers(0, 10_000).map(Pick) | fresh


@st.composite
def dimension_filters(draw: st.DrawFn) -> FilterSpec:
    member = draw(st.sampled_from(DIMENSIONS))
    ops = FILTER_OPS if member in STRING_DIMENSIONS else tuple(
        op for op in FILTER_OPS if op not in STRING_OPS)
    op = draw(st.sampled_from(ops))
    size = 0 if op in NULLARY_OPS else draw(st.integers(1, 3)) if op in LIST_OPS else 1
    values = draw(st.lists(_filter_values(member), min_size=size, max_size=size))
    return member, op, tuple(values)


@st.composite
def measure_filters(draw: st.DrawFn) -> FilterSpec:
    member = draw(st.sampled_from(HAVING_MEASURES))
    op = draw(st.sampled_from(("gt", "gte", "lt", "lte", "eq", "ne", "in", "is_not_null")))
    size = 0 if op in NULLARY_OPS else draw(st.integers(1, 2)) if op in LIST_OPS else 1
    values = draw(st.lists(st.sampled_from((0, 1, 2, 3, 10, -BIG)) | st.integers(-50, 50),
                           min_size=size, max_size=size))
    return member, op, tuple(values)


def _groups(leaves: st.SearchStrategy[FilterSpec]) -> st.SearchStrategy[GroupSpec]:
    return st.builds(GroupSpec, st.sampled_from(("and", "or")),
                     st.lists(leaves, min_size=1, max_size=3).map(tuple))


filters = (dimension_filters() | _groups(dimension_filters()) | measure_filters()
           | _groups(measure_filters()))

#: instants a range may start or end at: bucket boundaries of every grain and odd instants
BOUNDS = ("2024-01-01", "2024-01-01T00:00:00Z", "2024-02-29T12:00", "2024-03-31T22:00:00Z",
          "2024-04-01T00:00:30", "2024-12-30", "2025-01-01T00:59:59Z", "2023-12-31T23:59:59",
          "2024-02-29T12:01:30+05:30", "2010-06-01", "1970-01-02")
RELATIVE = ("last 2 years", "this year", "last 3 months", "last 20 quarters", "last 2 weeks",
            "yesterday", "last 30 days", "this month", "last 90 minutes", "last 48 hours")


@st.composite
def time_ranges(draw: st.DrawFn) -> TimeRange:
    if draw(st.booleans()):
        return TimeRange(relative=draw(st.sampled_from(RELATIVE)))
    stamps = st.sampled_from(BOUNDS) | instants.map(lambda t: t.isoformat())
    start, end = sorted(draw(st.lists(stamps, min_size=2, max_size=2, unique=True)),
                        key=lambda text: _instant(text))
    side = draw(st.sampled_from(("both", "from", "to")))
    return TimeRange(start if side != "to" else None, end if side != "from" else None)


def _instant(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


query_specs = st.builds(
    QuerySpec,
    st.lists(st.sampled_from(MEASURES), min_size=1, max_size=5, unique=True).map(tuple),
    st.lists(st.sampled_from(DIMENSIONS), max_size=3, unique=True).map(tuple),
    st.none() | st.sampled_from(GRAINS),
    st.lists(filters, max_size=2).map(tuple),
    st.none() | st.none() | time_ranges(),
    st.none() | st.sampled_from(ZONES),
)

# Queries every explicit example runs: each rollup's shape, and the raw-only ones.
EDGE_QUERIES = [
    QuerySpec(MEASURES),
    QuerySpec(MEASURES, grain="year"),
    QuerySpec(MEASURES, ("region", "note", "region_upper", "amount_bucket", "user"), "quarter"),
    QuerySpec(("rows", "amount_sum", "users_approx"), ("region",), "minute"),
    QuerySpec(("rows", "price_avg", "users"), ("note",), "day",
              (("region", "in", (Pick(0), "EU")),)),
    QuerySpec(("rows", "amount_avg", "notes", "price_max"), ("amount_bucket",), "week",
              (("user", "ne", (Pick(1),)), ("region_upper", "not_in", ("EU", Pick(2))))),
    QuerySpec(("rows", "note_max", "users"), ("region_upper",), "week",
              (("note", "eq", (Pick(0),)),)),
    QuerySpec(("price_sum", "amount_min"), ("user", "note"), "hour"),
    QuerySpec(("rows", "mean_amount", "big_rows"), ("region",), "hour",
              time_range=TimeRange("2024-01-01T00:00:30", "2024-03-31T23:30:00Z")),
    QuerySpec(("rows", "big_sum", "users", "amount_median"), ("note",), "day",
              (GroupSpec("or", (("region", "starts_with", ("e",)), ("note", "is_null", ()))),),
              TimeRange("2024-02-29T12:00", "2024-12-30T08:00"), "Europe/Berlin"),
    QuerySpec(("rows", "spread"), (), "week", (("rows", "gt", (1,)),),
              TimeRange(relative="last 2 years"), "Asia/Kolkata"),
    QuerySpec(("score", "big_share", "amount_p90"), ("region",), "month",
              (("region", "contains", ("u",)), GroupSpec("and", (("rows", "gte", (1,)),))),
              TimeRange(end="2024-12-29T23:59:30Z"), "America/New_York"),
]


def many_rows(count: int) -> tuple[Row, ...]:
    return tuple(
        Row(INSTANTS[i % 5] + timedelta(seconds=i % 2), WORDS[i % 3], f"u{i % 7}",
            (i * 7919) % 2001 - 1000, i * 0.1 - 50, (None, "x", "")[i % 3])
        for i in range(count)
    )


SINGLE_ROW = (Row(datetime(2024, 2, 29, 12, 1, 5), "eu", "u1", -BIG, -0.5, None),)


# --- the engine -----------------------------------------------------------------------------

def create_source(warehouse: Warehouse, database: str) -> None:
    columns = [exp.ColumnDef(this=exp.to_identifier(name),
                             kind=exp.DataType.build(type_text, dialect="clickhouse"))
               for name, type_text in COLUMNS]
    properties = [
        exp.EngineProperty(this=exp.Anonymous(this="MergeTree", expressions=[])),
        exp.Order(expressions=[exp.Ordered(this=exp.column("ts"))]),
    ]
    warehouse.command(exp.Create(
        this=exp.Schema(this=exp.table_("events", db=database), expressions=columns),
        kind="TABLE", properties=exp.Properties(expressions=properties)))


NAMES = tuple(name for name, _ in COLUMNS)


def _values(rows: Sequence[Row]) -> list[tuple[object, ...]]:
    return [tuple(getattr(row, name) for name in NAMES) for row in rows]


@contextmanager
def loaded(warehouse: Warehouse, dataset: Dataset) -> Iterator[tuple[Model, Runtime]]:
    """A database holding ``dataset``: part backfilled into new rollups, part fed by views."""
    with fresh_database(warehouse, "p") as database:
        create_source(warehouse, database)
        half = dataset.before // 2
        insert_rows(warehouse, f"{database}.events", _values(dataset.rows[:half]), NAMES)
        insert_rows(warehouse, f"{database}.events", _values(dataset.rows[half:dataset.before]),
                    NAMES)
        model, _, runtime = build(warehouse, model_text(MODEL, db=database))
        for part in dataset.parts():
            insert_rows(warehouse, f"{database}.events", _values(part), NAMES)
        yield model, runtime


# --- the comparison -------------------------------------------------------------------------

def _filter_members(nodes: Sequence[FilterNode]) -> set[str]:
    found: set[str] = set()
    for node in nodes:
        found |= {node.member} if isinstance(node, Filter) else _filter_members(node.items)
    return found


def covering_rollups(model: Model, query: Query, measures: bool = True) -> list[str]:
    """Rollups that hold every dimension and filter of the query at a nesting grain and (with
    ``measures``) list every measure; read from the model, not from the planner."""
    source = model.sources[0]
    filtered = _filter_members(query.filters)
    needed = set(query.dimensions) | {m for m in filtered if source.dimension(m)}
    wanted = set(query.measures) | {m for m in filtered if source.is_aggregate(m)}
    found = []
    for rollup in source.rollups:
        listed = {ref.name for ref in rollup.measures}
        if measures and not wanted <= listed | _leaves_listed(source, listed):
            continue
        if not needed <= {ref.name for ref in rollup.dimensions}:
            continue
        if query.grain is not None and rollup.grain not in NESTS_IN[query.grain]:
            continue
        found.append(rollup.name)
    return found


METRIC_LEAVES = {"mean_amount": {"amount_sum", "rows"}, "big_share": {"big_rows", "rows"},
                 "spread": {"amount_max", "amount_min"}}
METRIC_LEAVES["score"] = METRIC_LEAVES["big_share"] | METRIC_LEAVES["spread"] | {"big_sum"}


def _leaves_listed(source: Any, listed: set[str]) -> set[str]:
    """Measures a rollup stores because it lists a metric built from them."""
    return {leaf for name in listed for leaf in METRIC_LEAVES.get(name, ())}


def _same(expected: Any, got: Any, tolerance: float | None) -> bool:
    if isinstance(expected, float) and isinstance(got, float):
        if math.isnan(expected) or math.isnan(got):
            return math.isnan(expected) and math.isnan(got)
        if tolerance is not None:
            return math.isclose(expected, got, rel_tol=1e-9, abs_tol=tolerance)
    return type(expected) is type(got) and expected == got


def _float_tolerance(rows: Sequence[Row], column: str,
                     combine: Callable[[list[float]], float]) -> float:
    # Two summation orders of n values differ by at most about 2n * 2**-53 * sum(|x|); an
    # average divides that by its count, leaving 2n * 2**-53 * max(|x|).
    magnitudes = [float(abs(getattr(row, column))) for row in rows] or [0.0]
    return 2 * len(rows) * 2**-53 * combine(magnitudes) + 1e-300


def float_tolerances(rows: Sequence[Row]) -> dict[str, float]:
    """The float error allowed per measure for these rows (one pass over them)."""
    return {name: _float_tolerance(rows, column, combine)
            for name, (column, combine) in FLOAT_MEASURES.items()}


def assert_rollup_equals_raw(model: Model, runtime: Runtime, query: Query,
                             rows: Sequence[Row],
                             tolerances: dict[str, float] | None = None) -> None:
    """``tolerances``: ``float_tolerances(rows)``, computed here unless given (callers
    checking many queries over many rows compute it once)."""
    try:
        plan = runtime.plan(query, now=NOW)
    except QueryError as exc:  # bounds drawn in an order the query's zone reverses, or an
        # ilike pattern drawn with a trailing backslash (which ClickHouse cannot read)
        assert exc.field == "time_range.to" or "lone backslash" in exc.message, exc.message
        return
    raw_plan = runtime.plan(replace(query, force_raw=True), now=NOW)
    assert raw_plan.rollup is None
    covering = covering_rollups(model, query)
    if plan.rollup is None and covering and all(
            "raw table is estimated cheaper" in c.detail for c in plan.candidates
            if c.reason is None):
        # The cost model prefers the raw table (a rollup that barely aggregates): check the
        # rollup's answer anyway, planned as if the raw table's size were unknown.
        source = runtime.compiled.sources[plan.query.source or ""]
        unsized = {k: v for k, v in runtime.ready.items() if k != source.source.table}
        plan = plan_query(source, query, unsized, now=NOW)
    if covering and query.time_range is None and query.timezone in (None, "UTC"):
        assert plan.rollup is not None, (
            f"rollups {covering} answer {query} but it was planned on the raw table:\n"
            + "\n".join(str(c.to_dict()) for c in plan.candidates))
    for piece in plan.pieces:
        if piece.rollup is not None:
            assert piece.rollup.name in covering_rollups(model, query, measures=False), (
                f"{query} was planned on rollup {piece.rollup.name}, which lacks its "
                "dimensions, filters or grain")
    answer, raw = runtime.run(plan), runtime.run(raw_plan)
    assert not answer.truncated and not raw.truncated
    served = plan.rollup.name if plan.rollup else "raw table"
    context = f"{query}\nserved from {served}:\n{plan.sql}\nraw:\n{raw_plan.sql}"
    assert len(answer.rows) == len(raw.rows), (
        f"{len(answer.rows)} rows from the rollup, {len(raw.rows)} raw\n{context}\n"
        f"rollup: {answer.rows}\nraw: {raw.rows}")
    if tolerances is None:
        tolerances = float_tolerances(rows)
    for index, (got, expected) in enumerate(zip(answer.rows, raw.rows, strict=True)):
        assert list(got) == list(expected)
        for name, value in expected.items():
            if name in APPROXIMATE:  # see test_tdigest_quantiles_stay_within_their_error
                assert (value is None) == (got[name] is None)
                continue
            assert _same(value, got[name], tolerances.get(name)), (
                f"row {index}, {name}: raw {value!r}, rollup {got[name]!r}\n{context}\n"
                f"rollup row: {got}\nraw row: {expected}")
