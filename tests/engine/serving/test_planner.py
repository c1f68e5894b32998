"""Routing rules of the planner, on the compiled reference model (pure, no database)."""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlglot import exp

from engine.dialect.functions import DERIVABLE_GRAINS
from engine.model.compiled import CompiledRollup, CompiledSource
from engine.query.request import Filter, FilterGroup, Query, QueryError, TimeRange
from engine.serving.plan import Candidate, Plan, RollupStats
from engine.serving.router import plan_query
from tests.reference import ALL_READY, compiled_reference, reference_events, reference_stats

SOURCE = reference_events()
TABLES = {r.name: r.qualified_table for r in SOURCE.rollups}


def _reasons(query: Query, ready: dict[str, RollupStats]) -> dict[str, str | None]:
    return {c.rollup: c.reason for c in plan_query(SOURCE, query, ready).candidates}


def test_planner_picks_cheapest_usable_rollup() -> None:
    plan = plan_query(SOURCE, Query("events", ("total_events",)), ALL_READY)
    assert plan.rollup is not None and plan.rollup.name == "totals"
    cheaper_region = reference_stats(totals=9_000, daily=90_000, region_daily=5_000)
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
    plan = plan_query(SOURCE, Query("events", ("total_events",)), reference_stats(daily=1))
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
    plan = plan_query(SOURCE, replace(query, force_raw=True), ALL_READY)
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


# --- helpers ------------------------------------------------------------------------------


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


PieceRow = tuple[str | None, datetime | None, datetime | None]


def _tiles(plan: Plan) -> list[PieceRow]:
    """The plan's pieces in time order as (rollup, start, end), checked to tile the query's
    range exactly: no gap, no overlap, open sides only at the range's open sides."""
    pieces = sorted(plan.pieces, key=lambda p: p.start.timestamp() if p.start else -math.inf)
    start, end = plan.query.interval or (None, None)
    assert pieces[0].start == start and pieces[-1].end == end
    for before, after in itertools.pairwise(pieces):
        assert before.end is not None and before.end == after.start, (before, after)
    for piece in pieces:
        assert piece.start is None or piece.end is None or piece.start < piece.end, piece
    return [(p.rollup.name if p.rollup else None, p.start, p.end) for p in pieces]


def _candidates(plan: Plan) -> dict[str, Candidate]:
    return {c.rollup: c for c in plan.candidates}


def _with_rollup(rollup: CompiledRollup) -> CompiledSource:
    """The reference source with one more rollup (a variant the reference model lacks)."""
    return replace(SOURCE, rollups=(*SOURCE.rollups, rollup))


def _rollup(name: str) -> CompiledRollup:
    return next(r for r in SOURCE.rollups if r.name == name)


def _variant(base: str, name: str, **changes: Any) -> CompiledRollup:
    return replace(_rollup(base), name=name, table=f"events_{name}", **changes)


def _columns(**sizes: int) -> RollupStats:
    return RollupStats(10, 10 ** 9, sizes)  # whole-table bytes are huge: only columns count


DAY_RANGE = TimeRange("2026-01-05", "2026-01-10")
UNALIGNED = TimeRange("2026-01-05T05:17:00Z", "2026-01-10T13:45:00Z")
NOW = datetime(2026, 3, 29, 12, 34, 56, tzinfo=UTC)


# --- cost ---------------------------------------------------------------------------------


def test_planner_cost_is_bytes_of_columns_read_not_file_order() -> None:
    ready = {
        TABLES["totals"]: _columns(count_all=50_000, uniq_user_id=1, sum_revenue=1),
        TABLES["daily"]: _columns(count_all=9_000, event_ts_day=1),
        TABLES["region_daily"]: RollupStats(10, 1, {"count_all": 200, "region": 10 ** 9}),
    }
    plan = plan_query(SOURCE, Query("events", ("total_events",)), ready)
    assert plan.rollup is not None and plan.rollup.name == "region_daily"
    candidates = _candidates(plan)
    assert {n: c.cost for n, c in candidates.items()} == {
        "totals": 50_000, "daily": 9_000, "region_daily": 200, "region_hourly": None}
    assert candidates["region_hourly"].reason == "not_built"


def test_planner_cost_counts_dimensions_bucket_and_partials_read() -> None:
    sizes = {"region": 3, "event_ts_day": 5, "sum_revenue": 7, "count_revenue": 11,
             "count_all": 1_000, "tdigest_revenue": 10 ** 6}
    ready = {TABLES["region_daily"]: _columns(**sizes)}
    query = Query("events", ("avg_revenue",), ("region",), "day", time_range=DAY_RANGE)
    chosen = _candidates(plan_query(SOURCE, query, ready))["region_daily"]
    assert chosen.chosen and chosen.cost == 3 + 5 + 7 + 11


@pytest.mark.parametrize(("daily_rows", "region_daily_rows", "winner"),
                         [(50, 10, "region_daily"), (10, 50, "daily")])
def test_planner_cost_ties_broken_by_rows(daily_rows: int, region_daily_rows: int,
                                          winner: str) -> None:
    ready = {TABLES["daily"]: RollupStats(daily_rows, 1, {"count_all": 100}),
             TABLES["region_daily"]: RollupStats(region_daily_rows, 1, {"count_all": 100})}
    plan = plan_query(SOURCE, Query("events", ("total_events",)), ready)
    assert plan.rollup is not None and plan.rollup.name == winner


def test_planner_prices_state_merges_above_plain_bytes() -> None:
    """A byte of uniq states costs far more to serve than a byte of counts."""
    ready = {TABLES["totals"]: RollupStats(1, 2_000_000, {"count_all": 1_000_000,
                                                         "uniq_user_id": 1_000_000})}
    counts = _candidates(plan_query(SOURCE, Query("events", ("total_events",)), ready))
    states = _candidates(plan_query(SOURCE, Query("events", ("unique_users",)), ready))
    assert counts["totals"].cost == states["totals"].cost == 1_000_000  # the same bytes
    plain, merged = counts["totals"].estimate, states["totals"].estimate
    assert plain is not None and merged is not None and merged > 10 * plain


RAW_TABLE = SOURCE.source.table


def test_planner_never_chooses_a_rollup_dearer_than_raw() -> None:
    """A rollup that barely aggregates (as many groups as raw rows, more bytes than the raw
    columns the query needs) loses to the raw table, and explain says why."""
    query = Query("events", ("total_events",), ("region",), "hour", time_range=DAY_RANGE)
    ready = {TABLES["region_hourly"]: RollupStats(1_000_000, 0, {
        "region": 8_000_000, "event_ts_hour": 4_000_000, "count_all": 8_000_000}),
        RAW_TABLE: RollupStats(1_000_000, 0, {"region": 8_000_000, "event_ts": 4_000_000})}
    plan = plan_query(SOURCE, query, ready)
    assert plan.rollup is None and plan.tables == (RAW_TABLE,)
    hourly = _candidates(plan)["region_hourly"]
    assert hourly.reason is None and not hourly.chosen
    assert "reading the raw table is estimated cheaper" in hourly.detail
    # the same rollup with a hundredth of the rows wins again
    ready[TABLES["region_hourly"]] = RollupStats(10_000, 0, {
        "region": 80_000, "event_ts_hour": 40_000, "count_all": 80_000})
    served = plan_query(SOURCE, query, ready)
    assert served.rollup is not None and served.rollup.name == "region_hourly"


# --- measures -----------------------------------------------------------------------------


def test_planner_filtered_measure_not_derivable() -> None:
    plan = plan_query(SOURCE, Query("events", ("paying_events",)), ALL_READY)
    candidates = _candidates(plan)
    assert {n: c.reason for n, c in candidates.items()} == {
        "totals": "measure_not_derivable", "daily": "measure_not_derivable",
        "region_daily": None, "region_hourly": None}
    assert candidates["daily"].detail == ("measure 'paying_events' needs count() where "
                                          "revenue > 0, which the rollup does not store")
    assert plan.rollup is not None and plan.rollup.name == "region_daily"


def test_planner_quantile_not_derivable() -> None:
    plan = plan_query(SOURCE, Query("events", ("revenue_p90",), ("region",)), ALL_READY)
    candidates = _candidates(plan)
    assert candidates["region_hourly"].reason == "measure_not_derivable"
    assert candidates["region_hourly"].detail == (
        "measure 'revenue_p90' needs quantileTDigest(revenue), which the rollup does not store")
    assert plan.rollup is not None and plan.rollup.name == "region_daily"
    assert "quantileTDigestMerge(0.9)(tdigest_revenue)" in plan.sql
    totals = _reasons(Query("events", ("revenue_p90",)), ALL_READY)
    assert totals == {"totals": "measure_not_derivable", "daily": "measure_not_derivable",
                      "region_daily": None, "region_hourly": "measure_not_derivable"}


def test_planner_metric_needs_every_leaf() -> None:
    reasons = _reasons(Query("events", ("paying_share",)), ALL_READY)
    assert reasons == {"totals": "measure_not_derivable", "daily": "measure_not_derivable",
                       "region_daily": None, "region_hourly": None}
    # A rollup with the filtered count but not the plain one serves paying_events only.
    rollup = _variant("region_daily", "paying_only", components=tuple(
        (c, p) for c, p in _rollup("region_daily").components if c != "count_all"))
    source = _with_rollup(rollup)
    ready = {rollup.qualified_table: RollupStats(1, 1)}
    assert plan_query(source, Query("events", ("paying_events",)), ready).rollup == rollup
    candidate = _candidates(plan_query(source, Query("events", ("paying_share",)),
                                       ready))["paying_only"]
    assert candidate.reason == "measure_not_derivable"
    assert candidate.detail == ("measure 'paying_share' needs count(), which the rollup does "
                                "not store")


def test_planner_having_needs_the_measures_partials() -> None:
    having = (Filter("total_events", "gt", (100,)),)
    query = Query("events", ("revenue_p90",), ("region",), filters=having)
    plan = plan_query(SOURCE, query, ALL_READY)
    assert plan.rollup is not None and plan.rollup.name == "region_daily"
    assert "HAVING sum(count_all) > {p0: Float64}" in plan.sql and plan.parameters == {"p0": 100}
    sizes = {"region": 1, "tdigest_revenue": 10, "count_all": 100}
    read = _candidates(plan_query(SOURCE, query, {TABLES["region_daily"]: _columns(**sizes)}))
    assert read["region_daily"].cost == 111
    rollup = _variant("region_daily", "no_count", components=tuple(
        (c, p) for c, p in _rollup("region_daily").components if c != "count_all"))
    candidate = _candidates(plan_query(_with_rollup(rollup), query,
                                       {rollup.qualified_table: RollupStats(1, 1)}))["no_count"]
    assert candidate.reason == "measure_not_derivable"
    assert candidate.detail == ("measure 'total_events' needs count(), which the rollup does "
                                "not store")
    paying = Query("events", ("total_events",), filters=(Filter("paying_events", "gt", (0,)),))
    assert _reasons(paying, ALL_READY) == {
        "totals": "measure_not_derivable", "daily": "measure_not_derivable",
        "region_daily": None, "region_hourly": None}


# --- filters ------------------------------------------------------------------------------


def test_planner_filter_not_covered_inside_nested_group() -> None:
    nested = FilterGroup("or", (
        Filter("region", "eq", ("eu",)),
        FilterGroup("and", (Filter("region", "ne", ("us",)), Filter("user_id", "eq", ("u1",)))),
    ))
    plan = plan_query(SOURCE, Query("events", ("total_events",), filters=(nested,)), ALL_READY)
    assert plan.rollup is None and _tiles(plan) == [(None, None, None)]
    assert {c.reason for c in plan.candidates} == {"filter_not_covered"}
    assert _candidates(plan)["region_daily"].detail == ("filter on 'user_id' needs it as a "
                                                        "rollup dimension")
    assert "(region = {p0: String} OR (region <> {p1: String} AND user_id = {p2: String}))" \
        in plan.sql
    covered = FilterGroup("or", (Filter("region", "eq", ("eu",)),
                                 FilterGroup("and", (Filter("region", "ne", ("us",)),))))
    reasons = _reasons(Query("events", ("total_events",), filters=(covered,)), ALL_READY)
    assert reasons == {"totals": "filter_not_covered", "daily": "filter_not_covered",
                       "region_daily": None, "region_hourly": None}


# --- grains -------------------------------------------------------------------------------


@pytest.mark.parametrize("grain", ["day", "week", "month", "quarter", "year"])
def test_planner_day_rollups_serve_day_and_coarser(grain: str) -> None:
    reasons = _reasons(Query("events", ("total_events",), grain=grain), ALL_READY)
    assert reasons == {"totals": "grain_not_derivable", "daily": None, "region_daily": None,
                       "region_hourly": None}


@pytest.mark.parametrize(
    ("rollup_grain", "query_grain", "derivable"),
    [("month", "week", False), ("week", "month", False), ("week", "day", False),
     ("month", "day", False), ("month", "quarter", True), ("month", "year", True),
     ("quarter", "month", False), ("week", "week", True), ("year", "quarter", False)],
)
def test_planner_grain_derivable_from_coarser_rollups(rollup_grain: str, query_grain: str,
                                                      derivable: bool) -> None:
    rollup = _variant("daily", f"by_{rollup_grain}", grain=rollup_grain)
    query = Query("events", ("total_events",), grain=query_grain)
    candidate = _candidates(plan_query(_with_rollup(rollup), query,
                                       {rollup.qualified_table: RollupStats(1, 1)}))[rollup.name]
    assert (candidate.reason is None) == derivable
    if not derivable:
        assert candidate.reason == "grain_not_derivable"
        assert candidate.detail == (f"grain '{query_grain}' cannot be derived from the "
                                    f"rollup's '{rollup_grain}'")
    assert (query_grain in DERIVABLE_GRAINS[rollup_grain]) == derivable


def test_planner_grain_detail_without_time_grain() -> None:
    candidate = _candidates(plan_query(SOURCE, Query("events", ("total_events",), grain="year"),
                                       ALL_READY))["totals"]
    assert (candidate.reason, candidate.detail) == ("grain_not_derivable",
                                                    "the rollup has no time grain")


# --- time ranges --------------------------------------------------------------------------


def test_planner_aligned_day_range_is_one_piece() -> None:
    plan = plan_query(SOURCE, Query("events", ("total_events",), ("region",), "day",
                                    time_range=DAY_RANGE), ALL_READY)
    assert _tiles(plan) == [("region_daily", _utc("2026-01-05"), _utc("2026-01-10"))]
    assert plan.tables == (TABLES["region_daily"],)
    assert _candidates(plan)["region_daily"].detail == "can answer"


def test_planner_aligned_open_range_is_one_piece() -> None:
    plan = plan_query(SOURCE, Query("events", ("total_events",), ("region",), "day",
                                    time_range=TimeRange("2026-01-05")), ALL_READY)
    assert _tiles(plan) == [("region_daily", _utc("2026-01-05"), None)]


def test_planner_unaligned_range_days_then_hours_then_raw() -> None:
    plan = plan_query(SOURCE, Query("events", ("total_events",), ("region",), "day",
                                    time_range=UNALIGNED), ALL_READY)
    assert plan.query.interval == (_utc("2026-01-05T05:17"), _utc("2026-01-10T13:45"))
    assert _tiles(plan) == [
        (None, _utc("2026-01-05T05:17"), _utc("2026-01-05T06:00")),
        ("region_hourly", _utc("2026-01-05T06:00"), _utc("2026-01-06")),
        ("region_daily", _utc("2026-01-06"), _utc("2026-01-10")),
        ("region_hourly", _utc("2026-01-10"), _utc("2026-01-10T13:00")),
        (None, _utc("2026-01-10T13:00"), _utc("2026-01-10T13:45")),
    ]
    assert plan.rollup is not None and plan.rollup.name == "region_daily"
    candidates = _candidates(plan)
    assert candidates["region_daily"].chosen and not candidates["region_hourly"].chosen
    assert candidates["region_daily"].detail == ("can answer the aligned middle of the range; "
                                                 "the edges come from elsewhere")


def test_planner_unaligned_hour_range_hours_then_raw() -> None:
    query = Query("events", ("total_events",), ("region",), "hour",
                  time_range=TimeRange("2026-01-05T05:17:00Z", "2026-01-05T13:45:00Z"))
    assert _tiles(plan_query(SOURCE, query, ALL_READY)) == [
        (None, _utc("2026-01-05T05:17"), _utc("2026-01-05T06:00")),
        ("region_hourly", _utc("2026-01-05T06:00"), _utc("2026-01-05T13:00")),
        (None, _utc("2026-01-05T13:00"), _utc("2026-01-05T13:45")),
    ]


def test_planner_range_inside_one_hour_is_raw_only() -> None:
    query = Query("events", ("total_events",),
                  time_range=TimeRange("2026-01-05T05:17:00Z", "2026-01-05T05:45:00Z"))
    plan = plan_query(SOURCE, query, ALL_READY)
    assert plan.rollup is None and plan.table == "analytics.events"
    assert _tiles(plan) == [(None, _utc("2026-01-05T05:17"), _utc("2026-01-05T05:45"))]
    candidates = _candidates(plan)
    assert {c.reason for c in candidates.values()} == {"range_not_aligned"}
    assert candidates["region_hourly"].detail == ("no whole hour bucket (UTC) lies inside the "
                                                  "range")
    assert candidates["daily"].detail == "no whole day bucket (UTC) lies inside the range"
    assert not any(c.chosen for c in plan.candidates)


def test_planner_range_needs_a_rollup_grain() -> None:
    plan = plan_query(SOURCE, Query("events", ("total_events",), time_range=DAY_RANGE),
                      ALL_READY)
    totals = _candidates(plan)["totals"]
    assert (totals.reason, totals.detail) == (
        "range_not_aligned", "the rollup has no time grain, so it cannot cut a range")
    assert _tiles(plan) == [("region_daily", _utc("2026-01-05"), _utc("2026-01-10"))]
    assert _reasons(Query("events", ("total_events",)), ALL_READY)["totals"] is None


@pytest.mark.parametrize(
    ("relative", "grain", "timezone", "expected"),
    [
        ("last 7 days", "day", None,
         [("region_daily", _utc("2026-03-22"), _utc("2026-03-29"))]),
        ("this month", "day", None,
         [("region_daily", _utc("2026-03-01"), _utc("2026-04-01"))]),
        ("last 3 hours", "hour", None,
         [("region_hourly", _utc("2026-03-29T09:00"), _utc("2026-03-29T12:00"))]),
        # Berlin's day before its DST change: 23:00 to 23:00 UTC, so hourly buckets.
        ("yesterday", "day", "Europe/Berlin",
         [("region_hourly", _utc("2026-03-27T23:00"), _utc("2026-03-28T23:00"))]),
    ],
)
def test_planner_relative_range_resolved_against_now(relative: str, grain: str,
                                                     timezone: str | None,
                                                     expected: list[PieceRow]) -> None:
    query = Query("events", ("total_events",), ("region",), grain,
                  time_range=TimeRange(relative=relative), timezone=timezone)
    assert _tiles(plan_query(SOURCE, query, ALL_READY, now=NOW)) == expected


# --- time zones ---------------------------------------------------------------------------

BERLIN_REJECTED = ("day buckets in Europe/Berlin cannot be cut from day buckets in UTC over "
                   "this range: the zones' offsets differ by a fraction of a day (a finer "
                   "rollup or the raw table is needed)")


def test_planner_berlin_days_come_from_hourly_rollup() -> None:
    query = Query("events", ("total_events",), (), "day", timezone="Europe/Berlin",
                  time_range=TimeRange("2026-01-01", "2026-03-01"))
    plan = plan_query(SOURCE, query, ALL_READY)
    candidates = _candidates(plan)
    assert {n: c.reason for n, c in candidates.items()} == {
        "totals": "grain_not_derivable", "daily": "timezone", "region_daily": "timezone",
        "region_hourly": None}
    assert candidates["daily"].detail == BERLIN_REJECTED
    assert _tiles(plan) == [("region_hourly", _utc("2025-12-31T23:00"),
                             _utc("2026-02-28T23:00"))]
    assert "toDate(event_ts_hour, 'Europe/Berlin')" in plan.sql


def test_planner_berlin_without_range_hourly_since_1893() -> None:
    # Berlin kept local mean time (+0:53:28) until 1893-04-01: those days are not whole hours
    # from UTC, so the raw table serves them.
    query = Query("events", ("total_events",), ("region",), "day", timezone="Europe/Berlin")
    plan = plan_query(SOURCE, query, ALL_READY)
    assert _tiles(plan) == [(None, None, _utc("1893-04-01")),
                            ("region_hourly", _utc("1893-04-01"), None)]
    assert _candidates(plan)["region_daily"].reason == "timezone"


def test_planner_kolkata_days_need_the_raw_table() -> None:
    query = Query("events", ("total_events",), (), "day", timezone="Asia/Kolkata",
                  time_range=TimeRange("2026-01-01", "2026-03-01"))
    plan = plan_query(SOURCE, query, ALL_READY)
    candidates = _candidates(plan)
    assert {n: c.reason for n, c in candidates.items()} == {
        "totals": "grain_not_derivable", "daily": "timezone", "region_daily": "timezone",
        "region_hourly": "timezone"}
    assert candidates["region_hourly"].detail == (
        "day buckets in Asia/Kolkata cannot be cut from hour buckets in UTC over this range: "
        "the zones' offsets differ by a fraction of an hour (a finer rollup or the raw table "
        "is needed)")
    assert plan.rollup is None
    assert _tiles(plan) == [(None, _utc("2025-12-31T18:30"), _utc("2026-02-28T18:30"))]


def test_planner_london_winter_days_from_day_rollup() -> None:
    query = Query("events", ("total_events",), ("region",), "day", timezone="Europe/London",
                  time_range=TimeRange("2026-01-05", "2026-01-20"))
    plan = plan_query(SOURCE, query, ALL_READY)
    assert _tiles(plan) == [("region_daily", _utc("2026-01-05"), _utc("2026-01-20"))]
    assert _candidates(plan)["region_daily"].detail == "can answer"
    assert "toDate(event_ts_day)" in plan.sql  # London's winter day is the UTC day


def test_planner_london_summer_days_from_hourly_rollup() -> None:
    query = Query("events", ("total_events",), ("region",), "day", timezone="Europe/London",
                  time_range=TimeRange("2026-06-01", "2026-06-10"))
    plan = plan_query(SOURCE, query, ALL_READY)
    assert _candidates(plan)["region_daily"].reason == "timezone"
    assert _tiles(plan) == [("region_hourly", _utc("2026-05-31T23:00"),
                             _utc("2026-06-09T23:00"))]


def test_planner_london_without_range_uses_the_run_holding_the_data() -> None:
    # region_daily serves London days only while London is on UTC (winter runs); of those it
    # takes the run holding the data (Jan-Mar 2026), region_hourly the rest after it, and the
    # raw table only the time before, where there is no data (the source is ordered by time).
    query = Query("events", ("total_events",), ("region",), "day", timezone="Europe/London")
    # As the runtime reports them: where the data lies, from each rollup's first/last bucket.
    spanned = {table: dataclasses.replace(stats, first=_utc("2026-01-01T00:00"),
                                          end=_utc("2026-04-01T00:00"))
               for table, stats in ALL_READY.items()}
    plan = plan_query(SOURCE, query, spanned)
    assert _tiles(plan) == [
        (None, None, _utc("2025-10-27T00:00")),
        ("region_daily", _utc("2025-10-27T00:00"), _utc("2026-03-29T00:00")),
        ("region_hourly", _utc("2026-03-29T00:00"), None)]
    assert plan.rollup is not None and plan.rollup.name == "region_daily"  # most of the data
    # With only the hourly rollup built, raw serves the time before London left local mean
    # time (-0:01:15) on 1847-12-01, the hourly rollup everything since.
    hourly = {TABLES["region_hourly"]: ALL_READY[TABLES["region_hourly"]]}
    assert _tiles(plan_query(SOURCE, query, hourly)) == [
        (None, None, _utc("1847-12-01T01:00")), ("region_hourly", _utc("1847-12-01T01:00"), None)]
    # A source not ordered by time is read whole by any raw piece; every plan here needs one
    # (before London's whole-hour era), so reading only the raw table is cheapest.
    unordered = {**spanned, SOURCE.source.table: RollupStats(10**6, 10**9,
                                                             time_ordered=False)}
    plan = plan_query(SOURCE, query, unordered)
    assert [(p.rollup, p.start, p.end) for p in plan.pieces] == [(None, None, None)]
    assert not any(c.chosen for c in plan.candidates)
    assert all(c.cost is not None and c.cost > 10**9 for c in plan.candidates if c.reason is None)


# --- SQL shape ----------------------------------------------------------------------------


def test_planner_merged_sql_binds_every_value() -> None:
    query = Query("events", ("paying_share", "total_revenue"), ("region",), "day",
                  filters=(Filter("region", "in", ("eu-central", "us-east")),
                           Filter("total_events", "gt", (1234,))),
                  time_range=UNALIGNED)
    plan = plan_query(SOURCE, query, ALL_READY)
    assert len(plan.pieces) > 1 and plan.sql.count("UNION ALL") == len(plan.tables) - 1
    literals = {lit.this for lit in plan.statement.find_all(exp.Literal)
                if not lit.find_ancestor(exp.DataType)}  # DateTime64(6, 'UTC') is a type
    assert literals <= {"UTC", "0", "10001"}, literals  # zone, `> 0`, nullIf(x, 0), limit
    placeholders = {p.name for p in plan.statement.find_all(exp.Placeholder)}
    assert placeholders == set(plan.parameters)
    values = list(plan.parameters.values())
    assert ["eu-central", "us-east"] in values and 1234 in values
    assert "2026-01-05 05:17:00.000000" in values and "2026-01-06" in values
    assert "nullIf(" in plan.sql and "/ nullIf((sum(_c1)), 0)" in plan.sql
    assert "HAVING sum(_c1) > {p" in plan.sql


def _limit(plan: Plan) -> int | None:
    """The statement's LIMIT, if it has one."""
    found = plan.statement.args.get("limit")
    return int(found.expression.this) if found is not None else None


def _sized(rows: int, source: CompiledSource = SOURCE) -> dict[str, RollupStats]:
    return {r.qualified_table: RollupStats(rows, 100 * rows) for r in source.rollups}


@pytest.mark.parametrize(("rows", "limit", "expected"), [
    (10, None, None), (10_000, None, None),  # the rollup holds fewer rows than LIMIT 10001
    (10_001, None, 10_001), (10**6, None, 10_001),  # it might cut: kept
    (10, 5, 6), (10, 10, None), (10, 9, 10),
])
def test_planner_leaves_out_a_limit_that_cuts_nothing(rows: int, limit: int | None,
                                                       expected: int | None) -> None:
    """Each answer row groups rows of the rollups read, so a LIMIT above what they hold cuts
    nothing; it is left out (ClickHouse plans a step less), and kept when it might cut."""
    query = Query("events", ("total_events",), ("region",), "day", limit=limit,
                  time_range=TimeRange("2026-01-05", "2026-01-12"))
    plan = plan_query(SOURCE, query, _sized(rows))
    assert plan.rollup is not None and all(p.rollup for p in plan.pieces)
    assert _limit(plan) == expected, plan.sql


def test_planner_keeps_the_limit_when_the_rollups_do_not_bound_the_answer() -> None:
    small = _sized(10)
    unaligned = plan_query(SOURCE, Query("events", ("total_events",), ("region",), "day",
                                         time_range=UNALIGNED), small)
    assert any(p.rollup is None for p in unaligned.pieces) and _limit(unaligned) == 10_001
    paged = plan_query(SOURCE, Query("events", ("total_events",), ("region",), offset=3),
                       small)
    assert paged.rollup is not None and _limit(paged) == 10_001
    filled = plan_query(SOURCE, Query("events", ("total_events",), ("region",), "day",
                                      fill="zero", time_range=TimeRange("2026-01-05",
                                                                        "2026-01-12")), small)
    assert filled.rollup is not None and _limit(filled) == 10_001
    events = compiled_reference().sources["events"]  # with rollups keyed by user
    joined = plan_query(events, Query("events", ("total_events",), ("user.country",)),
                        _sized(10, events))
    assert joined.rollup is not None and joined.joins and _limit(joined) == 10_001
    by_region = Query("events", ("total_events",), ("region",))
    empty = plan_query(SOURCE, by_region, _sized(0))  # read empty: it may have filled since
    assert empty.rollup is not None and _limit(empty) == 10_001
    # on a cluster a rollup's size is one node's share, not a bound
    clustered = replace(SOURCE, rollups=tuple(replace(r, cluster="main") for r in SOURCE.rollups))
    spread = plan_query(clustered, by_region, _sized(10, clustered))
    assert spread.rollup is not None and _limit(spread) == 10_001


def test_planner_bounds_an_answer_of_several_rollups_by_all_they_hold() -> None:
    query = Query("events", ("total_events",), ("region",), "day",
                  time_range=TimeRange("2026-01-05T05:00:00Z", "2026-01-12T07:00:00Z"))
    sizes = dict(ALL_READY)  # 10 rows each; the hourly rollup far larger in bytes
    plan = plan_query(SOURCE, query, sizes)
    assert {p.rollup.name for p in plan.pieces if p.rollup} == {"region_daily",
                                                                "region_hourly"}
    assert all(p.rollup for p in plan.pieces) and _limit(plan) is None
    sizes[TABLES["region_hourly"]] = RollupStats(9_995, 500_000)
    plan = plan_query(SOURCE, query, sizes)
    assert len(plan.tables) == 2 and _limit(plan) == 10_001  # 9,995 + 10 rows might reach it


@pytest.mark.parametrize("timezone", ["UTC", "Europe/Berlin"])
def test_planner_merged_hour_buckets_shown_in_query_zone(timezone: str) -> None:
    query = Query("events", ("total_events",), ("region",), "hour", timezone=timezone,
                  time_range=TimeRange("2026-01-05T05:17:00Z", "2026-01-05T13:45:00Z"))
    plan = plan_query(SOURCE, query, ALL_READY)
    assert len(plan.pieces) == 3
    assert "toUnixTimestamp(_d1) AS event_ts" in plan.sql
    assert plan.instant_column == "event_ts"


def test_planner_single_metric_division_is_null_safe() -> None:
    plan = plan_query(SOURCE, Query("events", ("paying_share",)), ALL_READY)
    assert len(plan.pieces) == 1
    assert "/ nullIf((sum(count_all)), 0)" in plan.sql


# --- explain ------------------------------------------------------------------------------


EXPLAIN_QUERIES = [
    Query("events", ("total_events",)),
    Query("events", ("total_events",), ("region",), "day", time_range=UNALIGNED),
    Query("events", ("total_events",), grain="day", timezone="Europe/Berlin"),
    Query("events", ("revenue_p90",), ("region",), "month"),
]


@pytest.mark.parametrize("query", EXPLAIN_QUERIES)
def test_candidate_to_dict_one_chosen_when_a_rollup_serves(query: Query) -> None:
    plan = plan_query(SOURCE, query, ALL_READY)
    rows = [c.to_dict() for c in plan.candidates]
    assert [r["rollup"] for r in rows] == [r.name for r in SOURCE.rollups]
    for row in rows:
        assert list(row) == ["rollup", "table", "usable", "chosen", "reason", "detail", "rows",
                             "bytes", "read_bytes", "estimated_ms"]
        assert row["usable"] is (row["reason"] is None)
        assert (row["read_bytes"] is None) is (row["reason"] is not None)
        assert (row["estimated_ms"] is None) is (row["reason"] is not None)
        assert row["table"] == TABLES[str(row["rollup"])]
    chosen = [r for r in rows if r["chosen"]]
    assert plan.rollup is not None and len(chosen) == 1
    assert chosen[0]["rollup"] == plan.rollup.name and chosen[0]["usable"] is True


def test_candidate_to_dict_none_chosen_when_raw_serves() -> None:
    query = Query("events", ("total_events",), grain="day", timezone="Asia/Kolkata")
    rows = [c.to_dict() for c in plan_query(SOURCE, query, ALL_READY).candidates]
    assert not any(r["chosen"] for r in rows)
    not_built = plan_query(SOURCE, Query("events", ("total_events",)), {}).candidates[0]
    assert not_built.to_dict() == {
        "rollup": "totals", "table": TABLES["totals"], "usable": False, "chosen": False,
        "reason": "not_built", "detail": "the rollup table is not built yet; run `semantic apply`",
        "rows": None, "bytes": None, "read_bytes": None, "estimated_ms": None}
