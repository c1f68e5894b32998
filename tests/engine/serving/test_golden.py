"""Golden SQL for the DDL and serving queries of ``metrics.yaml``, compared as parsed ASTs.

Refresh after an intended change with: ``python -m pytest tests/engine --update-golden``.
"""

from __future__ import annotations

import dataclasses

import pytest
import sqlglot

from engine.dialect.render import render
from engine.model.compiled import CompiledModel, SourceEngine
from engine.model.compiler import compile_model
from engine.query.request import Filter, Order, Query, TimeRange
from engine.rollups import ddl
from engine.rollups.migration import plan_migration, setup_statements
from engine.serving.output import answer_statement
from engine.serving.plan import RollupStats
from engine.serving.router import plan_query
from semantic import load_model_text
from tests.processes import ROOT
from tests.reference import EVENTS_TYPES, USERS_TYPES, compiled_reference

GOLDEN = ROOT / "tests" / "golden"


def _ready(compiled: CompiledModel) -> dict[str, RollupStats]:
    # Sizes chosen so that smaller rollups are cheaper, as system.parts would report them.
    return {r.qualified_table: RollupStats(10 ** (i + 3), 100 * 10 ** (i + 3))
            for i, r in enumerate(compiled.rollups)}


def _rollup_cases() -> dict[str, str]:
    compiled = compiled_reference()
    source = compiled.sources["events"]
    cases = {}
    for rollup in source.rollups:
        statements = [
            ddl.create_rollup_table(source, rollup),
            ddl.create_rollup_view(source, rollup),
            ddl.backfill_insert(source, rollup, ddl.snapshot_name(rollup)),
        ]
        cases[f"rollup_{rollup.name}"] = ";\n".join(render(s) for s in statements)
    steps = plan_migration(compiled, {}, frozenset())
    cases["apply_first_run"] = ";\n".join(
        render(s.expression) for step in steps for s in step.statements)
    return cases


QUERIES = {
    "query_api_metrics": Query("events", ("total_events", "unique_users", "total_revenue")),
    "query_api_breakdown": Query("events", ("total_events",), ("region", "event_ts"), "day",
                                 order=(Order("region"), Order("event_ts"))),
    "query_month_avg_filtered": Query(
        "events", ("avg_revenue", "max_revenue"), ("region",), "month",
        (Filter("region", "in", ("us-east", "eu-central")),)),
    "query_week_distinct": Query("events", ("unique_users",), (), "week",
                                 order=(Order("event_ts", True),), limit=5),
    "query_raw_exact_users": Query("events", ("exact_users",), ("region",),
                                   filters=(Filter("region", "ne", ("us-west",)),)),
    # days in the middle, ragged edges elsewhere, partials merged over UNION ALL
    "query_unaligned_range_merged": Query(
        "events", ("total_events", "avg_revenue"), ("region",), "day",
        time_range=TimeRange("2026-01-05T05:17:00Z", "2026-01-10T13:45:00Z")),
    # Berlin days (across its DST change) cut from UTC hours
    "query_berlin_day_from_hourly": Query(
        "events", ("total_events", "total_revenue"), ("region",), "day",
        time_range=TimeRange("2026-03-20", "2026-04-05"), timezone="Europe/Berlin"),
    "query_metric_having": Query(
        "events", ("paying_share",), ("region",), "month",
        (Filter("total_events", "gt", (1000,)),),
        time_range=TimeRange("2026-01-01", "2026-04-01")),
    "query_quantiles": Query(
        "events", ("revenue_p90", "median_revenue"), ("region",), "week",
        (Filter("region", "in", ("us-east", "eu-central")),)),
    # a joined dimension from the rollup keeping the join key, the attribute looked up after
    "query_joined_country": Query(
        "events", ("total_events", "exact_users"), ("user.country",),
        filters=(Filter("user.plan", "eq", ("pro",)),)),
    # the same over raw rows, with a ragged range: the join is read by both pieces
    "query_joined_ragged": Query(
        "events", ("total_events",), ("user.country",), "month",
        time_range=TimeRange("2026-01-15T10:00:00Z", "2026-03-01")),
    # month over month by region: the compared values are windows over the monthly buckets,
    # read with a month of lookback and cut by QUALIFY; the changes come from the rows
    "query_month_over_month": Query(
        "events", ("total_events", "total_revenue"), ("region", "event_ts"), "month",
        time_range=TimeRange("2026-02-01", "2026-04-01"), compare="1 month"),
    # ordered by a change: the statement computes it
    "query_ordered_by_change": Query(
        "events", ("total_events",), ("region",), "month",
        time_range=TimeRange("2026-02-01", "2026-04-01"), compare="1 month",
        order=(Order("total_events__change", True),)),
}


def _query_cases() -> dict[str, str]:
    compiled = compiled_reference()
    source = compiled.sources["events"]
    return {name: plan_query(source, q, _ready(compiled)).sql for name, q in QUERIES.items()}


def compiled_cluster() -> CompiledModel:
    """The reference model deployed on a cluster (``cluster: main``)."""
    text = (ROOT / "metrics.yaml").read_text().replace(
        "rollup_database: semantic\n", "rollup_database: semantic\ncluster: main\n")
    engine = SourceEngine("ReplicatedMergeTree", "toYYYYMM(event_ts)", "event_ts, event_id",
                          "event_ts, event_id")
    types = dataclasses.replace(EVENTS_TYPES, engine=engine)
    return compile_model(load_model_text(text, "metrics.yaml"),
                         {"events": types, "users": USERS_TYPES})


def _cluster_cases() -> dict[str, str]:
    compiled = compiled_cluster()
    source = compiled.sources["events"]
    steps = plan_migration(compiled, {"semantic.events_old_0123456789": "ready"}, frozenset(),
                           {"semantic.events_old_0123456789": ("events", "old")},
                           keep_unused=False)
    statements = [*setup_statements("semantic", "main"),
                  *(s for step in steps for s in step.statements)]
    query = plan_query(source, QUERIES["query_api_breakdown"], _ready(compiled)).sql
    return {"cluster_apply": ";\n".join(render(s.expression) for s in statements),
            "cluster_query_api_breakdown": query}


def _output_cases() -> dict[str, str]:
    """Answers for ClickHouse to format (CSV, Parquet, Arrow): the serving query wrapped."""
    compiled = compiled_reference()
    source = compiled.sources["events"]
    breakdown = plan_query(source, QUERIES["query_api_breakdown"], _ready(compiled))
    hourly = plan_query(source, Query(
        "events", ("total_events", "avg_revenue"), ("region",), "hour", order=(
            Order("event_ts"),), limit=50, time_range=TimeRange("2026-03-28", "2026-03-30"),
        timezone="Europe/Berlin"), _ready(compiled))
    fields = [("region", "region"), ("day", "event_ts"), ("cnt", "total_events")]
    compared = plan_query(source, QUERIES["query_month_over_month"], _ready(compiled))
    return {"output_api_breakdown": render(answer_statement(breakdown, source, fields)),
            "output_hourly_berlin": render(answer_statement(hourly, source)),
            "output_month_over_month": render(answer_statement(compared, source))}


CASES = {**_rollup_cases(), **_query_cases(), **_cluster_cases(), **_output_cases()}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_sql_matches(name: str, request: pytest.FixtureRequest) -> None:
    path = GOLDEN / f"{name}.sql"
    actual = CASES[name] + "\n"
    if request.config.getoption("--update-golden"):
        path.write_text(actual)
    assert path.exists(), (
        f"missing {path}; create it with: python -m pytest tests/engine --update-golden")
    expected = sqlglot.parse(path.read_text(), dialect="clickhouse")
    got = sqlglot.parse(actual, dialect="clickhouse")
    assert got == expected, (
        f"generated SQL for '{name}' differs from {path.relative_to(ROOT)}.\n"
        f"--- expected\n{path.read_text()}\n--- got\n{actual}\n"
        "If the change is intended, refresh with: python -m pytest tests/engine --update-golden"
    )


def test_golden_every_file_has_a_case() -> None:
    stale = sorted(p.stem for p in GOLDEN.glob("*.sql") if p.stem not in CASES)
    assert not stale, f"golden files without a case (delete them): {stale}"

