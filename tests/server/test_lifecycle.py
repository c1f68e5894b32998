"""Model changes on a real engine: rollups the model no longer uses are dropped after the new
ones are built (or kept with ``keep_unused``), and a changed rollup gets new tables."""

from __future__ import annotations

import sqlglot

from engine.compiler import CompiledModel
from engine.migration import DROPPED
from engine.query import Query
from semantic import load_model_text
from server.operations import apply_model
from server.runtime import Runtime, compile_against, read_catalog
from server.warehouse import Warehouse
from tests.support import insert_rows, model_text

MODEL = """
version: 1
rollup_database: {db}
sources:
  events:
    table: {db}.events
    time: ts
    dimensions:
      region: {{}}
    measures:
      events: {{agg: count}}
      revenue: {{agg: sum, column: amount}}
    rollups:
      totals: {{measures: [events, revenue]}}
{extra}
"""
DAILY = "      daily: {dimensions: [region], grain: day, measures: [events]}"
WEEKLY = "      daily: {dimensions: [region], grain: week, measures: [events]}"
ROWS = [("2026-01-01 10:00:00", "eu", 5), ("2026-01-02 11:00:00", "us", 7)]


def _compiled(warehouse: Warehouse, database: str, extra: str) -> CompiledModel:
    text = model_text(MODEL, db=database, extra="{extra}").replace("{extra}", extra)
    return compile_against(load_model_text(text, "test.yaml"), warehouse)


def test_apply_drops_unused_rollups_after_building(warehouse: Warehouse, database: str) -> None:
    warehouse.command(sqlglot.parse_one(
        f"CREATE TABLE {database}.events (ts DateTime, region String, amount Int64) "
        "ENGINE = MergeTree ORDER BY ts", dialect="clickhouse"))
    insert_rows(warehouse, f"{database}.events", ROWS)
    first = _compiled(warehouse, database, DAILY)
    apply_model(first, warehouse)
    old_daily = next(r for r in first.rollups if r.name == "daily").qualified_table

    # A changed rollup (day -> week) is a new table; the old one goes once the new is built.
    second = _compiled(warehouse, database, WEEKLY)
    new_daily = next(r for r in second.rollups if r.name == "daily").qualified_table
    assert new_daily != old_daily
    kept = apply_model(second, warehouse, keep_unused=True)
    assert [s.action for s in kept if s.table == old_daily] == ["unused"]
    assert old_daily in warehouse.tables([database])
    steps = apply_model(second, warehouse)
    assert [(s.action, s.table) for s in steps][-1] == ("drop", old_daily)
    tables = warehouse.tables([database])
    assert old_daily not in tables and f"{old_daily}_mv" not in tables
    assert new_daily in tables
    assert read_catalog(warehouse, database)[old_daily] == DROPPED
    assert all(s.action == "keep" for s in apply_model(second, warehouse))  # idempotent

    # Inserts no longer feed the dropped rollup, and answers still equal the raw table.
    insert_rows(warehouse, f"{database}.events", [("2026-01-09 00:00:00", "eu", 1)])
    runtime = Runtime.start(second.model, warehouse)
    query = Query("events", ("events",), ("region", "ts"), "week")
    plan = runtime.plan(query)
    assert plan.table == new_daily
    assert runtime.run(plan).rows == runtime.run(runtime.plan(query, force_raw=True)).rows
