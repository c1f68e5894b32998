"""Requests of several queries, split as Cube's gateway splits them: compareDateRange (one
query per range, rows labelled with it) and blending (a list of queries bucketing time alike)."""

from __future__ import annotations

import pytest

from engine.query.limits import QueryLimits
from engine.query.request import QueryError, TimeRange
from server.cube.members import Cubes
from server.cube.queries import BLENDING, COMPARE, REGULAR, pivot_query, translate_queries
from server.cube.results import result_rows
from tests.reference import compiled_reference
from tests.server.cube.conftest import NOW


@pytest.fixture(scope="module")
def cubes() -> Cubes:
    return Cubes(compiled_reference().sources)


def test_compare_date_range_is_one_query_per_range(cubes: Cubes) -> None:
    query_type, queries = translate_queries({
        "measures": ["events.total_events"], "dimensions": ["events.region"],
        "timeDimensions": [{"dimension": "events.event_ts", "granularity": "day",
                            "compareDateRange": [["2026-01-01", "2026-01-07"], "last week"]}]},
        cubes, NOW, QueryLimits())
    assert query_type == COMPARE
    assert [q.query.time_range for q in queries] == [
        TimeRange("2026-01-01T00:00:00+00:00", "2026-01-08T00:00:00+00:00"),
        TimeRange("2026-03-16T00:00:00+00:00", "2026-03-23T00:00:00+00:00")]
    assert queries[0].compare == "2026-01-01T00:00:00.000 - 2026-01-07T23:59:59.999"
    (row,) = result_rows(queries[1], ("region", "event_ts", "total_events"),
                         (["eu"], [None], [3]))
    assert row["compareDateRange"] == "2026-03-16T00:00:00.000 - 2026-03-22T23:59:59.999"
    pivot = pivot_query(query_type, queries)
    assert pivot["dimensions"] == ["compareDateRange", "events.region"]
    assert pivot["queryType"] == COMPARE


def test_blending_needs_one_granularity(cubes: Cubes) -> None:
    day = {"dimension": "events.event_ts", "granularity": "day"}
    query_type, queries = translate_queries(
        [{"measures": ["events.total_events"], "timeDimensions": [day]},
         {"measures": ["events.total_revenue"], "dimensions": ["events.region"],
          "timeDimensions": [day]}], cubes, NOW, QueryLimits())
    assert query_type == BLENDING and all(q.blend for q in queries)
    assert pivot_query(query_type, queries) == {
        "measures": ["events.total_events", "events.total_revenue"],
        "dimensions": ["events.region"],
        "timeDimensions": [{"dimension": "time", "granularity": "day"}],
        "queryType": BLENDING}
    (row,) = result_rows(queries[0], ("event_ts", "total_events"), (["2026-01-01"], [5]))
    assert row["time.day"] == row["events.event_ts.day"] == "2026-01-01"
    with pytest.raises(QueryError, match="granularities must match"):
        translate_queries([{"measures": ["events.total_events"], "timeDimensions": [day]},
                           {"measures": ["events.total_events"], "timeDimensions": [
                               {**day, "granularity": "week"}]}], cubes, NOW, QueryLimits())
    with pytest.raises(QueryError, match="without granularity"):
        translate_queries([{"measures": ["events.total_events"]}], cubes, NOW, QueryLimits())


def test_several_queries_are_bounded_and_checked(cubes: Cubes) -> None:
    assert translate_queries({"measures": ["events.total_events"]}, cubes, NOW,
                             QueryLimits())[0] == REGULAR
    with pytest.raises(QueryError, match="at most 20"):
        translate_queries({"measures": ["events.total_events"], "timeDimensions": [
            {"dimension": "events.event_ts", "compareDateRange": ["today"] * 21}]},
            cubes, NOW, QueryLimits())
    for bad in ({"measures": ["events.total_events"], "timeDimensions": [
                    {"dimension": "events.event_ts", "compareDateRange": []}]},
                {"measures": ["events.total_events"], "timeDimensions": [
                    {"dimension": "events.event_ts", "compareDateRange": ["today"],
                     "dateRange": "today"}]}, []):
        with pytest.raises(QueryError):
            translate_queries(bad, cubes, NOW, QueryLimits())
