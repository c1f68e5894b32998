"""Rollups are as small as their groups: after a part-by-part backfill, after inserts (once
merged), after a repair; and ``rows`` reported for a rollup is its number of groups."""

from __future__ import annotations

import sqlglot

from engine.query.request import Query
from engine.rollups import ddl
from server.operations.apply import repair_rollups
from server.warehouse.statements import Warehouse
from tests.support import EVENTS_HEAD, build, create_events, insert_rows, model_text

MODEL = EVENTS_HEAD + """\
    dimensions:
      region: {{}}
    measures:
      events: {{agg: count}}
      users: {{agg: count_distinct_approx, column: user}}
    rollups:
      totals: {{measures: [events, users]}}
      daily: {{dimensions: [region], grain: day, measures: [events, users]}}
"""


def _source(warehouse: Warehouse, database: str, partition: str = "toYYYYMM(ts)") -> None:
    by = f"PARTITION BY {partition} " if partition else ""
    create_events(warehouse, database, "ts DateTime, region String, user String",
                  f"{by}ORDER BY ts")
    # one part per insert and per month: the backfill then writes several parts per rollup
    for day in (1, 2, 3):
        for month in (1, 2):
            insert_rows(warehouse, f"{database}.events", [
                (f"2026-0{month}-0{day} 10:00:00", region, f"u{day}{region}")
                for region in ("eu", "us")])


def _stored_rows(warehouse: Warehouse, table: str) -> int:
    return int(warehouse.query(sqlglot.parse_one(f"SELECT count() FROM {table}")).rows[0][0])


def test_apply_leaves_one_row_per_group(warehouse: Warehouse, database: str) -> None:
    _source(warehouse, database)
    _, compiled, runtime = build(warehouse, model_text(MODEL, db=database))
    totals, daily = compiled.rollups
    assert _stored_rows(warehouse, totals.qualified_table) == 1
    assert _stored_rows(warehouse, daily.qualified_table) == 12  # 6 days x 2 regions
    assert runtime.ready[totals.qualified_table].rows == 1
    assert runtime.ready[daily.qualified_table].rows == 12


def test_rollup_without_keys_aggregates_when_merged(warehouse: Warehouse,
                                                    database: str) -> None:
    """An empty sorting key would keep one row per part forever: the constant key lets merges
    aggregate, so inserts after the build collapse into the one group."""
    _source(warehouse, database)
    _, compiled, runtime = build(warehouse, model_text(MODEL, db=database))
    totals = compiled.rollups[0]
    assert totals.constant_key is not None
    for n in range(3):
        insert_rows(warehouse, f"{database}.events", [("2026-01-05 00:00:00", "eu", f"x{n}")])
    assert _stored_rows(warehouse, totals.qualified_table) == 4
    warehouse.command(ddl.optimize_rollup(totals))
    assert _stored_rows(warehouse, totals.qualified_table) == 1
    got = warehouse.query(runtime.plan(Query("events", ("events", "users"))).sql).rows
    raw = warehouse.query(sqlglot.parse_one(
        f"SELECT count(), uniq(user) FROM {database}.events")).rows
    assert got == raw


def test_repair_leaves_one_row_per_group(warehouse: Warehouse, database: str) -> None:
    _source(warehouse, database, partition="")
    _, compiled, _ = build(warehouse, model_text(MODEL, db=database))
    names = {r.qualified_table for r in compiled.rollups}
    repair_rollups(compiled, warehouse, names)
    totals, daily = compiled.rollups
    assert _stored_rows(warehouse, totals.qualified_table) == 1
    assert _stored_rows(warehouse, daily.qualified_table) == 12
