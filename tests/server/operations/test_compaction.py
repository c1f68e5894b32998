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


def _part_types(warehouse: Warehouse, table: str) -> set[str]:
    database, name = table.split(".")
    return {row[0] for row in warehouse.query(sqlglot.parse_one(
        f"SELECT part_type FROM system.parts WHERE active AND database = '{database}' "
        f"AND table = '{name}'")).rows}


def test_one_row_rollups_are_compact_with_columns_estimated(warehouse: Warehouse,
                                                            database: str) -> None:
    """A rollup of one row keeps its columns in one file (compact parts, which report no
    size per column): routing estimates its columns from their types and the part's size
    (a count reads 8 bytes, not the distinct-count state beside it); the others keep the
    size of each column."""
    _source(warehouse, database)
    _, compiled, runtime = build(warehouse, model_text(MODEL, db=database))
    totals, daily = compiled.rollups
    assert _part_types(warehouse, totals.qualified_table) == {"Compact"}
    assert _part_types(warehouse, daily.qualified_table) == {"Wide"}
    whole = runtime.ready[totals.qualified_table]
    state = next(column for column in whole.column_bytes if column.startswith("uniq"))
    assert whole.read_bytes(["count_all"]) == 8 and whole.column_bytes[totals.constant_key] == 1
    database_name, table = totals.qualified_table.split(".")
    size = warehouse.query(sqlglot.parse_one(
        f"SELECT sum(data_uncompressed_bytes) FROM system.parts WHERE active AND "
        f"database = '{database_name}' AND table = '{table}'")).rows[0][0]
    assert whole.column_bytes[state] == size - 1 - 8 and whole.bytes == size  # key, count
    # a query of the count alone reads the one-row rollup, not the daily one
    assert runtime.plan(Query("events", ("events",))).rollup == totals
    by_column = runtime.ready[daily.qualified_table]
    assert all(by_column.column_bytes.values())
    assert by_column.bytes == sum(by_column.column_bytes.values())


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
