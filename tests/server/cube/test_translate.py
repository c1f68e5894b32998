"""Cube queries translated to ours: members, time dimensions and Cube's inclusive date ranges,
operators, default order, and the refusals (fast: no warehouse)."""

from __future__ import annotations

from typing import Any

import pytest

from engine.query.request import Filter, FilterGroup, Order, QueryError, TimeRange
from server.cube.members import Cubes
from server.cube.translate import Translated, translate_query
from tests.reference import compiled_reference
from tests.server.cube.conftest import NOW


@pytest.fixture(scope="module")
def cubes() -> Cubes:
    return Cubes(compiled_reference().sources)


def translate(cubes: Cubes, **query: Any) -> Translated:
    return translate_query(query, cubes, NOW)


def refused(cubes: Cubes, field: str, **query: Any) -> str:
    with pytest.raises(QueryError) as caught:
        translate(cubes, **query)
    assert caught.value.field == field, caught.value.message
    return caught.value.message


def test_translate_members_and_default_order(cubes: Cubes) -> None:
    t = translate(cubes, measures=["events.total_events", "events.total_revenue"],
                  dimensions=["events.region", "events.user_id"])
    q = t.query
    assert (q.source, q.measures, q.dimensions) == (
        "events", ("total_events", "total_revenue"), ("region", "user_id"))
    # Cube's default: the first measure descending, then (ours) the dimensions for ties
    assert q.order == (Order("total_events", True), Order("region"), Order("user_id"))
    assert q.limit == 10_000 and q.offset == 0 and q.timezone == "UTC"
    assert t.normalized["measures"] == ["events.total_events", "events.total_revenue"]
    assert "order" not in t.normalized


def test_translate_time_dimension_with_inclusive_date_range(cubes: Cubes) -> None:
    t = translate(cubes, measures=["events.total_events"], timeDimensions=[
        {"dimension": "events.event_ts", "granularity": "day",
         "dateRange": ["2026-01-01", "2026-01-07"]}])
    assert t.query.grain == "day"
    assert t.query.order == (Order("event_ts"),)  # Cube: the bucketed time first
    # the whole of the 7th is in: [Jan 1, Jan 8)
    assert t.query.time_range == TimeRange("2026-01-01T00:00:00+00:00",
                                           "2026-01-08T00:00:00+00:00")
    assert t.normalized["timeDimensions"] == [{
        "dimension": "events.event_ts", "granularity": "day",
        "dateRange": ["2026-01-01T00:00:00.000", "2026-01-07T23:59:59.999"]}]
    assert t.time_key == "events.event_ts.day"


def test_translate_timestamp_end_includes_its_millisecond_in_the_query_zone(
        cubes: Cubes) -> None:
    t = translate(cubes, measures=["events.total_events"], timezone="Europe/Berlin",
                  timeDimensions=[{"dimension": "events.event_ts",
                                   "dateRange": ["2026-01-01T10:00:00", "2026-01-01T12:00:00"]}])
    assert t.query.time_range == TimeRange("2026-01-01T09:00:00+00:00",
                                           "2026-01-01T11:00:00.001000+00:00")
    assert t.query.grain is None and t.query.timezone == "Europe/Berlin"


@pytest.mark.parametrize(("text", "start", "end"), [
    ("today", "2026-03-29", "2026-03-30"),
    ("yesterday", "2026-03-28", "2026-03-29"),
    ("last 7 days", "2026-03-22", "2026-03-29"),
    ("this week", "2026-03-23", "2026-03-30"),  # ISO weeks, from Monday
    ("last month", "2026-02-01", "2026-03-01"),
    ("next 2 months", "2026-04-01", "2026-06-01"),
    ("this quarter", "2026-01-01", "2026-04-01"),
    ("from 2026-01-05 to 2026-01-06", "2026-01-05", "2026-01-07"),
    ("2026-02-10", "2026-02-10", "2026-02-11"),
])
def test_translate_relative_date_ranges_as_cube_reads_them(cubes: Cubes, text: str,
                                                           start: str, end: str) -> None:
    t = translate(cubes, measures=["events.total_events"],
                  timeDimensions=[{"dimension": "events.event_ts", "dateRange": text}])
    assert t.query.time_range == TimeRange(f"{start}T00:00:00+00:00", f"{end}T00:00:00+00:00")


def test_translate_time_in_dimensions_with_granularity(cubes: Cubes) -> None:
    t = translate(cubes, measures=["events.total_events"], dimensions=["events.event_ts.month"])
    assert t.query.grain == "month" and t.time_key == "events.event_ts.month"
    assert t.normalized["timeDimensions"] == [{"dimension": "events.event_ts",
                                               "granularity": "month"}]


def test_translate_operators(cubes: Cubes) -> None:
    t = translate(cubes, measures=["events.total_events"], filters=[
        {"member": "events.region", "operator": "equals", "values": ["us-east"]},
        {"member": "events.region", "operator": "equals", "values": ["a", "b"]},
        {"dimension": "events.region", "operator": "notEquals", "values": ["x"]},
        {"member": "events.region", "operator": "notIn", "values": ["x", "y"]},
        {"member": "events.region", "operator": "set"},
        {"member": "events.user_id", "operator": "notSet"},
        {"member": "events.total_events", "operator": "gt", "values": ["10"]},
        {"member": "events.avg_revenue", "operator": "lte", "values": [2.5]},
        {"or": [{"member": "events.region", "operator": "in", "values": ["a"]},
                {"and": [{"member": "events.user_id", "operator": "gte", "values": ["u"]}]}]},
    ])
    assert t.query.filters == (
        Filter("region", "eq", ("us-east",)), Filter("region", "in", ("a", "b")),
        Filter("region", "ne", ("x",)), Filter("region", "not_in", ("x", "y")),
        Filter("region", "is_not_null"), Filter("user_id", "is_null"),
        Filter("total_events", "gt", (10,)), Filter("avg_revenue", "lte", (2.5,)),
        FilterGroup("or", (Filter("region", "eq", ("a",)),
                           FilterGroup("and", (Filter("user_id", "gte", ("u",)),)))),
    )


def test_translate_string_operators_as_cubes_ilike_patterns(cubes: Cubes) -> None:
    t = translate(cubes, measures=["events.total_events"], filters=[
        {"member": "events.region", "operator": "contains", "values": ["us_", "EU"]},
        {"member": "events.region", "operator": "startsWith", "values": ["u_"]},
        {"member": "events.region", "operator": "notEndsWith", "values": ["east", "west"]}])
    assert t.query.filters == (
        # contains escapes LIKE's wildcards in the value, startsWith/endsWith do not (Cube)
        FilterGroup("or", (Filter("region", "ilike", ("%us\\_%",)),
                           Filter("region", "ilike", ("%EU%",)))),
        Filter("region", "ilike", ("u_%",)),
        FilterGroup("and", (Filter("region", "not_ilike", ("%east",)),
                            Filter("region", "not_ilike", ("%west",)))))


def test_translate_echoes_filters_as_cube_normalizes_them(cubes: Cubes) -> None:
    t = translate(cubes, measures=["events.total_events"], filters=[
        {"or": [{"dimension": "events.region", "operator": "equals", "values": ["a"]},
                {"member": "events.total_events", "operator": "gt", "values": [5]}]}])
    assert t.normalized["filters"] == [
        {"or": [{"member": "events.region", "operator": "equals", "values": ["a"]},
                {"member": "events.total_events", "operator": "gt", "values": ["5"]}]}]


def test_translate_negations_on_measures_keep_nulls_as_cube_does(cubes: Cubes) -> None:
    t = translate(cubes, measures=["events.avg_revenue"], dimensions=["events.region"],
                  filters=[{"member": "events.avg_revenue", "operator": "notEquals",
                            "values": ["3"]}])
    assert t.query.filters == (FilterGroup("or", (Filter("avg_revenue", "ne", (3,)),
                                                  Filter("avg_revenue", "is_null"))),)


def test_translate_date_filters_become_time_bounds(cubes: Cubes) -> None:
    t = translate(cubes, measures=["events.total_events"], filters=[
        {"member": "events.event_ts", "operator": "afterOrOnDate", "values": ["2026-01-03"]},
        {"member": "events.event_ts", "operator": "beforeOrOnDate", "values": ["2026-01-09"]},
    ], timeDimensions=[{"dimension": "events.event_ts", "dateRange": ["2026-01-01",
                                                                        "2026-01-31"]}])
    assert t.query.time_range == TimeRange("2026-01-03T00:00:00+00:00",
                                           "2026-01-10T00:00:00+00:00")
    t = translate(cubes, measures=["events.total_events"], filters=[
        {"member": "events.event_ts", "operator": "afterDate", "values": ["2026-01-03"]},
        {"member": "events.event_ts", "operator": "beforeDate", "values": ["2026-01-09"]}])
    assert t.query.time_range == TimeRange("2026-01-04T00:00:00+00:00",
                                           "2026-01-09T00:00:00+00:00")
    t = translate(cubes, measures=["events.total_events"], filters=[
        {"member": "events.event_ts", "operator": "inDateRange", "values": ["last 7 days"]}])
    assert t.query.time_range == TimeRange("2026-03-22T00:00:00+00:00",
                                           "2026-03-29T00:00:00+00:00")


def test_translate_order_object_and_pairs(cubes: Cubes) -> None:
    base: dict[str, Any] = {"measures": ["events.total_events"],
                            "dimensions": ["events.region"],
                            "timeDimensions": [{"dimension": "events.event_ts",
                                                "granularity": "day"}]}
    t = translate(cubes, **base, order={"events.region": "desc", "events.event_ts": "asc"})
    assert t.query.order == (Order("region", True), Order("event_ts"))
    t = translate(cubes, **base, order=[["events.total_events", "desc"],
                                        ["events.event_ts.day", "asc"]])
    assert t.query.order == (Order("total_events", True), Order("event_ts"))
    assert t.normalized["order"] == [{"id": "events.total_events", "desc": True},
                                     {"id": "events.event_ts", "desc": False}]


def test_translate_limit_offset_total(cubes: Cubes) -> None:
    t = translate(cubes, measures=["events.total_events"], dimensions=["events.region"],
                  limit=2, offset=1, total=True)
    assert (t.query.limit, t.query.offset, t.total) == (2, 1, True)


@pytest.mark.parametrize(("query", "field", "words"), [
    ({"measures": ["events.total_events"], "ungrouped": True}, "ungrouped", "not supported"),
    ({"measures": ["events.total_events"], "segments": ["events.paying"]}, "segments",
     "no segments"),
    ({"measures": ["events.total_evnts"]}, "measures[0]", "did you mean"),
    ({"measures": ["orders.count"]}, "measures[0]", "unknown cube"),
    ({"measures": ["events.region"]}, "measures[0]", "not a measure"),
    ({"dimensions": ["events.event_ts"]}, "dimensions[0]", "granularity"),
    ({"measures": ["events.total_events"],
      "timeDimensions": [{"dimension": "events.event_ts", "granularity": "second"}]},
     "timeDimensions[0].granularity", "second"),
    ({"measures": ["events.total_events"],
      "timeDimensions": [{"dimension": "events.event_ts", "granularity": "day"}],
      "dimensions": ["events.event_ts.month"]}, "timeDimensions[0].granularity",
     "one granularity"),
    ({"measures": ["events.total_events"],
      "timeDimensions": [{"dimension": "events.event_ts", "dateRange": "a fortnight ago"}]},
     "timeDimensions[0].dateRange", "cannot read"),
    ({"measures": ["events.total_events"],
      "filters": [{"member": "events.region", "operator": "measureFilter"}]},
     "filters[0].operator", "not supported"),
    ({"measures": ["events.total_events"],
      "filters": [{"member": "events.total_events", "operator": "contains", "values": ["1"]}]},
     "filters[0].member", "string dimensions"),
    ({"measures": ["events.total_events"],
      "filters": [{"member": "events.region", "operator": "like", "values": ["us"]}]},
     "filters[0].operator", "unknown operator"),
    ({"measures": ["events.total_events"],
      "filters": [{"member": "events.region", "operator": "equals"}]},
     "filters[0].values", "needs values"),
    ({"measures": ["events.total_events"],
      "filters": [{"or": [{"member": "events.event_ts", "operator": "beforeDate",
                           "values": ["2026-01-01"]}]}]},
     "filters[0].or[0]", "top level"),
    ({"measures": ["events.total_events"],
      "filters": [{"member": "events.event_ts", "operator": "equals", "values": ["x"]}]},
     "filters[0].operator", "time dimension"),
    ({"measures": ["events.total_events"],
      "filters": [{"member": "events.total_events", "operator": "gt", "values": ["many"]}]},
     "filters[0].values", "number"),
    ({"measures": ["events.total_events"], "limit": 0}, "limit", "from 1"),
    ({"measures": ["events.total_events"], "limit": 100_001}, "limit", "from 1"),
    ({"measures": ["events.total_events"], "order": {"events.region": "asc"}}, "order[0]",
     "not in the query"),
    ({"measures": ["events.total_events"], "order": {"events.total_events": "up"}},
     "order[0]", "'asc' or 'desc'"),
    ({"measures": ["events.total_events"], "responseFormat": "compact"}, "responseFormat",
     "default"),
    ({"measures": ["events.total_events"], "dimensionz": []}, "dimensionz", "not allowed"),
    ({}, "measures", "Query should contain"),
])
def test_translate_refuses_with_a_clear_error(cubes: Cubes, query: dict[str, Any], field: str,
                                              words: str) -> None:
    assert words in refused(cubes, field, **query)


def test_translate_refuses_deep_nesting(cubes: Cubes) -> None:
    nested: dict[str, Any] = {"member": "events.region", "operator": "set"}
    for _ in range(20):
        nested = {"and": [nested]}
    with pytest.raises(QueryError, match="nest at most"):
        translate(cubes, measures=["events.total_events"], filters=[nested])
