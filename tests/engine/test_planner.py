"""Routing rules of the planner, on the compiled reference model (pure, no database)."""

from __future__ import annotations

import pytest

from engine.planner import RollupStats, plan_query
from engine.query import Filter, Query, QueryError
from tests.engine.test_golden import compiled_reference

COMPILED = compiled_reference()
SOURCE = COMPILED.sources["events"]
TABLES = {r.name: r.qualified_table for r in SOURCE.rollups}


def _stats(**bytes_by_rollup: int) -> dict[str, RollupStats]:
    return {TABLES[name]: RollupStats(10, size) for name, size in bytes_by_rollup.items()}


ALL_READY = _stats(totals=1_000, daily=90_000, region_daily=5_000, region_hourly=500_000)


def _reasons(query: Query, ready: dict[str, RollupStats]) -> dict[str, str | None]:
    return {c.rollup: c.reason for c in plan_query(SOURCE, query, ready).candidates}


def test_planner_picks_cheapest_usable_rollup() -> None:
    plan = plan_query(SOURCE, Query("events", ("total_events",)), ALL_READY)
    assert plan.rollup is not None and plan.rollup.name == "totals"
    cheaper_region = _stats(totals=9_000, daily=90_000, region_daily=5_000)
    plan = plan_query(SOURCE, Query("events", ("total_events",)), cheaper_region)
    assert plan.rollup is not None and plan.rollup.name == "region_daily"


def test_planner_weighs_only_columns_read() -> None:
    # totals is big overall (its uniq state), but a count reads only its count column.
    ready = {
        TABLES["totals"]: RollupStats(1, 80_000, {"count_all": 8, "uniq_user_id": 79_000,
                                                  "sum_revenue": 8}),
        TABLES["region_daily"]: RollupStats(270, 10_000, {"count_all": 2_160,
                                                          "region": 3_000}),
    }
    plan = plan_query(SOURCE, Query("events", ("total_events",)), ready)
    assert plan.rollup is not None and plan.rollup.name == "totals"


def test_planner_missing_dimension_reason() -> None:
    reasons = _reasons(Query("events", ("total_events",), ("region",)), ALL_READY)
    assert reasons == {"totals": "missing_dimension", "daily": "missing_dimension",
                       "region_daily": None, "region_hourly": None}


def test_planner_filter_not_covered_reason() -> None:
    query = Query("events", ("total_events",), filters=(Filter("user_id", "eq", ("u",)),))
    plan = plan_query(SOURCE, query, ALL_READY)
    assert plan.rollup is None and plan.table == "analytics.events"
    assert {c.reason for c in plan.candidates} == {"filter_not_covered"}


def test_planner_measure_not_derivable_reason() -> None:
    reasons = _reasons(Query("events", ("unique_users",), ("region",)), ALL_READY)
    assert reasons["region_daily"] == "measure_not_derivable"


def test_planner_grain_rules() -> None:
    month = _reasons(Query("events", ("total_events",), (), "month"), ALL_READY)
    assert month == {"totals": "grain_not_derivable", "daily": None, "region_daily": None,
                     "region_hourly": None}
    hour = _reasons(Query("events", ("total_events",), (), "hour"), ALL_READY)
    assert hour == {"totals": "grain_not_derivable", "daily": "grain_not_derivable",
                    "region_daily": "grain_not_derivable", "region_hourly": None}
    minute = _reasons(Query("events", ("total_events",), (), "minute"), ALL_READY)
    assert set(minute.values()) == {"grain_not_derivable"}


def test_planner_never_uses_incomplete_rollups() -> None:
    plan = plan_query(SOURCE, Query("events", ("total_events",)), _stats(daily=1))
    assert plan.rollup is not None and plan.rollup.name == "daily"
    reasons = {c.rollup: c.reason for c in plan.candidates}
    assert reasons == {"totals": "not_built", "daily": None, "region_daily": "not_built",
                       "region_hourly": "not_built"}


def test_planner_avg_served_from_sum_and_count() -> None:
    plan = plan_query(SOURCE, Query("events", ("avg_revenue",), ("region",)), ALL_READY)
    assert plan.rollup is not None and plan.rollup.name == "region_daily"
    assert "sum(sum_revenue) / sum(count_revenue)" in plan.sql


def test_planner_force_raw_and_parameters() -> None:
    query = Query("events", ("total_events",), ("region",),
                  filters=(Filter("region", "in", ("a", "b")),))
    plan = plan_query(SOURCE, query, ALL_READY, force_raw=True)
    assert plan.rollup is None
    assert plan.parameters == {"p0": ["a", "b"]}
    assert "{p0: Array(String)}" in plan.sql and "'a'" not in plan.sql


@pytest.mark.parametrize(
    ("query", "field"),
    [
        (Query("events", ("nope",)), "measures[0]"),
        (Query("events", ("total_events",), ("event_ts",)), "grain"),
        (Query("events", ("total_events",), grain="fortnight"), "grain"),
        (Query("events", ("total_events",), filters=(Filter("region", "eq", ("a", "b")),)),
         "filters[0].value"),
        (Query("events", ("total_events",), limit=100_001), "limit"),
    ],
)
def test_planner_rejects_invalid_queries(query: Query, field: str) -> None:
    with pytest.raises(QueryError) as info:
        plan_query(SOURCE, query, ALL_READY)
    assert info.value.field == field
