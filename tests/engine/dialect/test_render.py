"""Rendering serving SQL once per query shape: a query asked with new values (another range,
another region) reuses the text of its shape, and queries of different shapes never share."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.dialect.render import RenderMemo, render
from engine.query.normalize import MEASURE_OPS
from engine.query.request import (
    Filter,
    FilterGroup,
    FilterNode,
    Order,
    Query,
    QueryError,
    TimeRange,
)
from engine.serving.plan import Plan, RollupStats
from engine.serving.router import plan_query
from engine.serving.sql import SqlBuilder
from semantic.model import FILTER_OPS, GRAINS, LIST_OPS, NULLARY_OPS
from tests.reference import compiled_reference
from tests.server.service.properties import NOW, ZONES, texts, time_ranges

COMPILED = compiled_reference()
SOURCE = COMPILED.sources["events"]
FIRST, END = datetime(2023, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
#: every rollup built, the raw table's size known, data over three years
READY = {r.qualified_table: RollupStats(10 ** (i + 3), 100 * 10 ** (i + 3), first=FIRST, end=END)
         for i, r in enumerate(SOURCE.rollups)}
READY[SOURCE.source.table] = RollupStats(10**8, 10**10, first=FIRST, end=END)

BREAKDOWN = Query("events", ("total_events",), ("region",), "day",
                  filters=(Filter("region", "eq", ("eu-central",)),),
                  order=(Order("region"), Order("event_ts")),
                  time_range=TimeRange("2024-01-05", "2024-02-10"))


def _plan(query: Query, memo: RenderMemo | None, ready: dict[str, RollupStats] = READY,
          force_raw: bool = False) -> Plan:
    return plan_query(SOURCE, replace(query, force_raw=force_raw), ready, now=NOW, memo=memo)


def _assert_same(memoized: Plan, plain: Plan) -> None:
    assert memoized.sql == plain.sql
    assert memoized.parameters == plain.parameters
    assert memoized.pieces == plain.pieces
    assert (memoized.columns, memoized.joins, memoized.instant_column) == \
        (plain.columns, plain.joins, plain.instant_column)
    # the statement is a tree, each node in one place (built without copies, so a node used
    # twice would be moved by its second use), and renders as the text given
    for node in memoized.statement.walk():
        assert all(child.parent is node for child in node.iter_expressions()), node
    assert render(memoized.statement) == memoized.sql


# --- examples -------------------------------------------------------------------------------


def test_plan_query_memo_one_text_per_shape() -> None:
    memo = RenderMemo()
    first = _plan(BREAKDOWN, memo)
    second = _plan(replace(BREAKDOWN, filters=(Filter("region", "eq", ("us-east",)),),
                           time_range=TimeRange("2024-03-01", "2024-03-02")), memo)
    assert len(memo) == 1
    assert second.sql == first.sql == render(second.statement)
    assert first.parameters == {"p0": "eu-central", "p1": "2024-01-05", "p2": "2024-02-10"}
    assert second.parameters == {"p0": "us-east", "p1": "2024-03-01", "p2": "2024-03-02"}
    # an `in` list is one array parameter, whatever its length
    one = _plan(replace(BREAKDOWN, filters=(Filter("region", "in", ("a",)),)), memo)
    three = _plan(replace(BREAKDOWN, filters=(Filter("region", "in", ("a", "b", "c")),)), memo)
    assert len(memo) == 2 and one.sql == three.sql == render(three.statement)
    assert three.parameters["p0"] == ["a", "b", "c"]


#: changes to BREAKDOWN that change its SQL text, each alone
SHAPES = {
    "in instead of eq": dict(filters=(Filter("region", "in", ("eu-central",)),)),
    "ne instead of eq": dict(filters=(Filter("region", "ne", ("eu-central",)),)),
    "other member": dict(filters=(Filter("user_id", "eq", ("eu-central",)),)),
    "inside an or group": dict(filters=(FilterGroup("or", (Filter("region", "eq", ("x",)),
                                                           Filter("region", "eq", ("y",)))),)),
    "inside an and group": dict(filters=(FilterGroup("and", (Filter("region", "eq", ("x",)),
                                                             Filter("region", "eq", ("y",)))),)),
    "a measure condition instead": dict(filters=(Filter("total_events", "gt", (1,)),)),
    "a measure condition too": dict(filters=(*BREAKDOWN.filters,
                                             Filter("total_events", "gt", (1,)))),
    "open end": dict(time_range=TimeRange("2024-01-05")),
    "open start": dict(time_range=TimeRange(end="2024-02-10")),
    "unaligned range": dict(time_range=TimeRange("2024-01-05T10:00Z", "2024-02-10")),
    "other timezone": dict(timezone="Asia/Kolkata"),
    "limit": dict(limit=5),
    "offset": dict(offset=10),
    "descending": dict(order=(Order("region", descending=True), Order("event_ts"))),
    "week grain": dict(grain="week"),
    "another measure": dict(measures=("total_events", "total_revenue")),
    "security condition": dict(security=(Filter("region", "in", ("eu-central",)),)),
}


def test_plan_query_memo_keeps_shapes_apart() -> None:
    memo = RenderMemo()
    plans = {"base": _plan(BREAKDOWN, memo), "raw table": _plan(BREAKDOWN, memo, force_raw=True)}
    plans |= {name: _plan(replace(BREAKDOWN, **change), memo)  # type: ignore[arg-type]
              for name, change in SHAPES.items()}
    assert len(memo) == len(plans)
    for name, plan in plans.items():
        assert plan.sql == render(plan.statement), name
    for (a, one), (b, other) in itertools.combinations(plans.items(), 2):
        assert one.sql != other.sql, (a, b)


def test_plan_query_memo_texts_belong_to_their_source() -> None:
    # the same shape over a source whose rollup of the same name is another table
    moved = replace(SOURCE, rollups=tuple(replace(r, database="elsewhere")
                                          for r in SOURCE.rollups))
    ready = {f"elsewhere.{r.table}": stats for r in SOURCE.rollups
             for name, stats in READY.items() if name == r.qualified_table}
    memo = RenderMemo()
    here = _plan(BREAKDOWN, memo)
    there = plan_query(moved, BREAKDOWN, ready, memo=memo)
    assert [p.rollup.name for p in here.pieces if p.rollup] == \
        [p.rollup.name for p in there.pieces if p.rollup]
    assert "elsewhere." in there.sql and "elsewhere." not in here.sql
    assert len(memo) == 2


def test_render_memo_emptied_when_full() -> None:
    memo = RenderMemo(size=2)
    plans = [_plan(replace(BREAKDOWN, limit=n), memo) for n in (1, 2, 3)]
    assert len(memo) == 1  # emptied on the third shape, which it then holds
    assert [p.sql for p in plans] == [render(p.statement) for p in plans]


# --- property -------------------------------------------------------------------------------

MEMBERS = (*SOURCE.measures, *SOURCE.metrics)
DIMENSIONS = ("region", "user_id")
#: a filter without its values, and with one or two operators for each condition: a leaf
#: ``(None, ((member, ops),))`` or a group ``("and" | "or", ((member, ops), ...))``
LeafShape = tuple[str, tuple[str, ...]]
FilterShape = tuple[str | None, tuple[LeafShape, ...]]


def _ops(allowed: tuple[str, ...]) -> st.SearchStrategy[tuple[str, ...]]:
    return st.lists(st.sampled_from(allowed), min_size=1, max_size=2, unique=True).map(tuple)


dimension_leaves = st.tuples(st.sampled_from(DIMENSIONS), _ops(FILTER_OPS))
measure_leaves = st.tuples(st.sampled_from(("total_events", "total_revenue", "unique_users")),
                           _ops(MEASURE_OPS))
filter_shapes: st.SearchStrategy[FilterShape] = st.one_of(
    st.tuples(st.none(), st.tuples(dimension_leaves | measure_leaves)),
    *(st.tuples(st.sampled_from(("and", "or")),
                st.lists(leaves, min_size=1, max_size=3).map(tuple))
      for leaves in (dimension_leaves, measure_leaves)))  # a group filters rows or groups


def _leaf(draw: st.DrawFn, member: str, ops: tuple[str, ...]) -> Filter:
    op = draw(st.sampled_from(ops))
    value = texts if member in DIMENSIONS else st.integers(-50, 50)
    if op in NULLARY_OPS:
        return Filter(member, op)
    if op in LIST_OPS:
        return Filter(member, op, tuple(draw(st.lists(value, min_size=1, max_size=3))))
    return Filter(member, op, (draw(value),))


def _node(draw: st.DrawFn, shape: FilterShape) -> FilterNode:
    group, leaves = shape
    items = tuple(_leaf(draw, member, ops) for member, ops in leaves)
    return items[0] if group is None else FilterGroup(group, items)


#: what may differ between the queries of a family besides their values
DETAILS = ("operators", "zone", "paging", "security", "routing", "range", "fill")
#: every bucket of the range filled, or not (a query without a grain or a closed range that
#: asks for it is refused, by the memoized plan as by the plain one)
fills = st.sampled_from((None, None, "zero", "null"))


@dataclass(frozen=True, slots=True)
class Asked:
    query: Query
    force_raw: bool
    now: datetime

    def plan(self, ready: dict[str, RollupStats], memo: RenderMemo | None) -> Plan:
        return plan_query(SOURCE, replace(self.query, force_raw=self.force_raw), ready, self.now,
                          memo)


def _shifted(time_range: TimeRange | None, days: int) -> TimeRange | None:
    """The same range ``days`` later (the same bounds given, the same alignment to weeks)."""
    if time_range is None or time_range.relative is not None:
        return time_range

    def later(text: str | None) -> str | None:
        return None if text is None else (datetime.fromisoformat(text)
                                          + timedelta(days=days)).isoformat()
    return TimeRange(later(time_range.start), later(time_range.end))


@st.composite
def query_families(draw: st.DrawFn) -> tuple[dict[str, RollupStats], list[Asked]]:
    """Queries of one base shape with their own values; their ranges the same range moved by
    whole weeks, or drawn afresh. Up to two other details vary between them too (operators,
    one of two per condition; zone, one of two; paging; the security condition; routing):
    many queries share a shape, others differ from it in a detail or two."""
    built = draw(st.lists(st.sampled_from(SOURCE.rollups), unique=True))
    ready = {r.qualified_table: READY[r.qualified_table] for r in built}
    if draw(st.booleans()):
        ready[SOURCE.source.table] = READY[SOURCE.source.table]
    measures = tuple(draw(st.lists(st.sampled_from(MEMBERS), min_size=1, max_size=3,
                                   unique=True)))
    dimensions = tuple(draw(st.lists(st.sampled_from(DIMENSIONS), max_size=2, unique=True)))
    grain = draw(st.none() | st.sampled_from(GRAINS))
    returned = [*dimensions, *measures, *(["event_ts"] if grain else [])]
    order = tuple(Order(m, draw(st.booleans()))
                  for m in draw(st.lists(st.sampled_from(returned), unique=True)))
    varying = draw(st.sets(st.sampled_from(DETAILS), max_size=2))
    shapes = draw(st.lists(filter_shapes, max_size=3))
    if "operators" not in varying:
        shapes = [(group, tuple((member, ops[:1]) for member, ops in leaves))
                  for group, leaves in shapes]
    zones = draw(st.lists(st.none() | st.sampled_from(ZONES), min_size=1,
                          max_size=2 if "zone" in varying else 1))
    ranges = st.none() | time_ranges()
    fixed = {"paging": (draw(st.sampled_from((None, 7))), draw(st.sampled_from((0, 3)))),
             "security": draw(st.booleans()), "routing": draw(st.booleans()),
             "range": draw(ranges), "fill": draw(fills)}

    def detail(name: str, strategy: st.SearchStrategy[Any]) -> Any:
        return draw(strategy) if name in varying else fixed[name]

    family = []
    for _ in range(draw(st.integers(2, 6))):
        weeks = draw(st.integers(0, 3))
        limit, offset = detail("paging", st.tuples(st.sampled_from((None, 7)),
                                                   st.sampled_from((0, 3))))
        query = Query(
            "events", measures, dimensions, grain,
            filters=tuple(_node(draw, shape) for shape in shapes), order=order,
            limit=limit, offset=offset,
            time_range=detail("range", ranges) if "range" in varying
            else _shifted(fixed["range"], 7 * weeks),
            timezone=draw(st.sampled_from(zones)),
            security=(_leaf(draw, "region", ("in",)),) if detail("security", st.booleans())
            else (), fill=detail("fill", fills))
        family.append(Asked(query, detail("routing", st.booleans()),
                            NOW + timedelta(days=7 * weeks)))
    return ready, family


@given(query_families())
def test_plan_query_memo_same_as_rendering_every_time(
        case: tuple[dict[str, RollupStats], list[Asked]]) -> None:
    ready, family = case
    memo = RenderMemo()
    for asked in family:
        try:
            plain = asked.plan(ready, None)
        except QueryError:  # e.g. a LIKE pattern ending in a lone backslash
            with pytest.raises(QueryError):
                asked.plan(ready, memo)
            continue
        _assert_same(asked.plan(ready, memo), plain)


@st.composite
def split_families(draw: st.DrawFn) -> list[Query]:
    """Queries of one shape whose ranges are cut into pieces: every rollup built, the range
    starting and ending off the hour (a day rollup's middle, hour rollups' and raw rows'
    edges, two pieces of one table), moved by whole weeks; each with its own filter,
    measure-condition and security values, and maybe every bucket filled."""
    measures = tuple(draw(st.lists(st.sampled_from(
        ("total_events", "total_revenue", "unique_users", "avg_revenue", "paying_share")),
        min_size=1, max_size=3, unique=True)))
    dimensions = draw(st.sampled_from(((), ("region",))))
    grain = draw(st.sampled_from((None, "day", "hour")))
    start = datetime(2024, 1, 5, draw(st.integers(0, 23)), draw(st.sampled_from((0, 15, 30))),
                     tzinfo=UTC)
    end = start + timedelta(hours=draw(st.integers(1, 24 * 40)),
                            minutes=draw(st.sampled_from((0, 15, 45))))
    shapes = draw(st.lists(filter_shapes, max_size=3))
    secured = draw(st.booleans())
    zone = draw(st.sampled_from((None, "Asia/Kolkata", "Europe/Berlin")))
    fill = draw(st.sampled_from((None, "zero", "null"))) if grain else None
    family = []
    for weeks in draw(st.lists(st.integers(0, 5), min_size=2, max_size=5)):
        moved = timedelta(weeks=weeks)
        family.append(Query(
            "events", measures, dimensions, grain,
            filters=tuple(_node(draw, shape) for shape in shapes),
            time_range=TimeRange((start + moved).isoformat(), (end + moved).isoformat()),
            timezone=zone, fill=fill,
            security=(_leaf(draw, "region", ("in",)),) if secured else ()))
    return family


@given(split_families())
def test_values_of_a_shape_built_before_are_those_building_binds(family: list[Query]) -> None:
    memo = RenderMemo()
    for query in family:
        try:
            plain = _plan(query, None)
        except QueryError:
            with pytest.raises(QueryError):
                _plan(query, memo)
            continue
        _assert_same(_plan(query, memo), plain)
        if not plain.reads:  # time functions and comparisons are built every time
            assert SqlBuilder(SOURCE, plain.query).values(plain.pieces) == plain.parameters
