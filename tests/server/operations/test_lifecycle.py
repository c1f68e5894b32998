"""Model changes on a real engine: rollups the model no longer uses are dropped after the new
ones are built (or kept with ``keep_unused``), and a changed rollup gets new tables."""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import sqlglot
from litestar.testing import TestClient
from sqlglot import exp

from engine.dialect.render import render
from engine.model.compiled import CompiledModel
from engine.model.compiler import compile_model
from engine.query.request import Query
from engine.rollups import ddl
from engine.rollups.migration import DROPPED, setup_statements
from semantic import load_model, load_model_text
from semantic.errors import SemanticError
from server.app import TABLE_HEADER, create_app
from server.operations.apply import (
    apply_model,
    execute,
    migration_steps,
    repair_model,
    repair_rollups,
    verify_model,
)
from server.runtime.compile import compile_against, read_types
from server.runtime.compiled import Runtime
from server.warehouse.catalog import read_catalog, tables
from server.warehouse.statements import Warehouse
from tests.support import EVENTS_HEAD, LOOPBACK, create_events, insert_rows, model_text

MODEL = EVENTS_HEAD + """\
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


def _create_events(warehouse: Warehouse, database: str, keys: str = "ORDER BY ts") -> None:
    create_events(warehouse, database, "ts DateTime, region String, amount Int64", keys)


def _mutate(warehouse: Warehouse, database: str, mutation: str) -> None:
    """Run an ALTER UPDATE/DELETE on the source and wait until it is done."""
    warehouse.command(sqlglot.parse_one(f"ALTER TABLE {database}.events {mutation}",
                                        dialect="clickhouse"))
    pending = sqlglot.parse_one(f"SELECT count() FROM system.mutations WHERE database = "
                                f"'{database}' AND NOT is_done", dialect="clickhouse")
    for _ in range(600):  # mutations run in the background
        if not warehouse.query(pending).rows[0][0]:
            return
        time.sleep(0.05)
    raise AssertionError(f"mutation still running: {mutation}")


def _compiled(warehouse: Warehouse, database: str, extra: str) -> CompiledModel:
    text = model_text(MODEL, db=database, extra="{extra}").replace("{extra}", extra)
    return compile_against(load_model_text(text, "test.yaml"), warehouse)


def test_apply_drops_unused_rollups_after_building(warehouse: Warehouse, database: str) -> None:
    _create_events(warehouse, database)
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
    assert old_daily in tables(warehouse, [database])
    steps = apply_model(second, warehouse)
    assert [(s.action, s.table) for s in steps][-1] == ("drop", old_daily)
    names = tables(warehouse, [database])
    assert old_daily not in names and f"{old_daily}_mv" not in names
    assert new_daily in names
    assert read_catalog(warehouse, database)[old_daily] == DROPPED
    assert all(s.action == "keep" for s in apply_model(second, warehouse))  # idempotent

    # Inserts no longer feed the dropped rollup, and answers still equal the raw table.
    insert_rows(warehouse, f"{database}.events", [("2026-01-09 00:00:00", "eu", 1)])
    runtime = Runtime.start(second.model, warehouse)
    query = Query("events", ("events",), ("region", "ts"), "week")
    plan = runtime.plan(query)
    assert plan.table == new_daily
    assert runtime.run(plan).rows == runtime.run(runtime.plan(replace(query, force_raw=True))).rows


def _rollup_rows(runtime: Runtime, query: Query) -> tuple[list[dict[str, object]], str]:
    plan = runtime.plan(query)
    return runtime.run(plan).rows, plan.table


def test_apply_interrupted_at_every_statement_then_rerun_is_exact(
        warehouse: Warehouse, database: str) -> None:
    """Kill ``apply`` after each statement of a first build and of a model change: whatever is
    left is never served, and the next ``apply`` finishes with rollups equal to the raw table
    (rows keep arriving between the crash and the re-run)."""
    _create_events(warehouse, database)
    insert_rows(warehouse, f"{database}.events", ROWS)
    queries = [Query("events", ("events", "revenue")),
               Query("events", ("events",), ("region", "ts"), "week")]
    for extra in (DAILY, WEEKLY):  # first build, then a changed rollup replacing the old
        compiled = _compiled(warehouse, database, extra)
        statements = [s for step in migration_steps(compiled, warehouse) for s in step.statements]
        assert statements
        for crash_after in range(len(statements)):
            for statement in setup_statements(database):
                warehouse.command(statement.expression)
            steps = migration_steps(compiled, warehouse)
            pending = [s for step in steps for s in step.statements][:crash_after]
            execute(warehouse, tuple(pending))  # the process dies after this many statements
            insert_rows(warehouse, f"{database}.events",
                        [("2026-01-03 00:00:00", "eu", crash_after)])
            runtime = Runtime.start(compiled.model, warehouse)
            for query in queries:  # served answers stay exact in the half-built state
                served, _ = _rollup_rows(runtime, query)
                raw = runtime.run(runtime.plan(replace(query, force_raw=True))).rows
                assert served == raw, (extra, crash_after, query)
        apply_model(compiled, warehouse)
        runtime = Runtime.start(compiled.model, warehouse)
        assert {r.qualified_table for r in compiled.rollups} <= set(runtime.ready)
        for query in queries:
            served, table = _rollup_rows(runtime, query)
            assert table != f"{database}.events", query
            assert served == runtime.run(runtime.plan(replace(query, force_raw=True))).rows
        assert all(s.action == "keep" for s in migration_steps(compiled, warehouse))


def test_apply_with_a_concurrent_writer_counts_every_row_once(warehouse: Warehouse,
                                                              database: str) -> None:
    """A writer inserts batches through the service's ingestion path the whole time ``apply``
    builds (first build, then a model change); afterwards every rollup equals the raw table."""
    _create_events(warehouse, database)
    insert_rows(warehouse, f"{database}.events",
                [(f"2026-01-{1 + i % 28:02d} 00:00:00", ("eu", "us")[i % 2], i)
                 for i in range(5000)])
    stop = threading.Event()
    batches = 0

    def write() -> None:
        nonlocal batches
        while not stop.is_set():
            warehouse.insert(f"{database}.events", ["ts", "region", "amount"],
                             [[datetime(2026, 2, 1 + batches % 28, tzinfo=UTC), "us", batches]
                              for _ in range(50)])
            batches += 1

    queries = [Query("events", ("events", "revenue")),
               Query("events", ("events",), ("region", "ts"), "week")]
    for extra in (DAILY, WEEKLY):
        compiled = _compiled(warehouse, database, extra)
        writer = threading.Thread(target=write)
        before = batches
        writer.start()
        try:
            apply_model(compiled, warehouse)
        finally:
            stop.set()
            writer.join()
            stop.clear()
        assert batches - before >= 3, "the writer did not overlap the build"
        assert verify_model(compiled, warehouse) == []
        runtime = Runtime.start(compiled.model, warehouse)
        for query in queries:
            served, table = _rollup_rows(runtime, query)
            assert table != f"{database}.events"
            assert served == runtime.run(runtime.plan(replace(query, force_raw=True))).rows, query


def test_backfill_reads_every_snapshot_part_even_if_a_merge_is_asked_for(
        warehouse: Warehouse, database: str) -> None:
    """The backfill reads the snapshot part by part by name: merges are stopped on it, so a
    merge asked for midway (as a background merge of many small parts would) cannot retire
    parts not yet read and lose their rows."""
    _create_events(warehouse, database)
    warehouse.command(exp.Command(this="SYSTEM", expression=f"STOP MERGES {database}.events"))
    for batch in range(6):  # six inserts, six parts (kept apart in the source)
        insert_rows(warehouse, f"{database}.events",
                    [(f"2026-01-0{1 + batch} 10:00:00", "eu", batch)] * 50)
    compiled = _compiled(warehouse, database, DAILY)
    daily = next(r for r in compiled.rollups if r.name == "daily")
    snapshot = render(ddl.snapshot_name(daily))
    refused: list[str] = []

    def merge_midway(line: str) -> None:
        if "backfill 50/300 rows" in line and snapshot in tables(warehouse, [database]):
            try:
                warehouse.command(sqlglot.parse_one(f"OPTIMIZE TABLE {snapshot} FINAL",
                                                    dialect="clickhouse"))
            except SemanticError as exc:
                refused.append(exc.message)

    apply_model(compiled, warehouse, merge_midway)
    assert verify_model(compiled, warehouse) == []
    assert refused, "the merge was not attempted midway through the daily backfill"


ENDPOINTS = """
endpoints:
  /api/by-day:
    grain: {grain}
    fields: {{region: region, day: ts, n: events}}
"""


def test_server_reload_switches_model_without_restart(warehouse: Warehouse, database: str,
                                                      tmp_path: Path) -> None:
    """apply builds the new rollups while the server serves the old ones; a reload switches
    routing and endpoints; a model with errors is refused and the old one keeps serving."""
    _create_events(warehouse, database)
    insert_rows(warehouse, f"{database}.events", ROWS)
    path = tmp_path / "metrics.yaml"

    def write(extra: str, grain: str) -> CompiledModel:
        text = model_text(MODEL, db=database, extra="{extra}").replace("{extra}", extra)
        path.write_text(text + model_text(ENDPOINTS, grain=grain))
        return compile_against(load_model_text(path.read_text(), str(path)), warehouse)

    first = write(DAILY, "day")
    apply_model(first, warehouse)
    app = create_app(first.model, warehouse, load=lambda: load_model(path))
    with TestClient(base_url=LOOPBACK, app=app) as client:
        day = client.get("/api/by-day")
        assert day.status_code == 200 and day.headers[TABLE_HEADER].endswith(
            next(r.table for r in first.rollups if r.name == "daily"))
        second = write(WEEKLY, "week")
        apply_model(second, warehouse, keep_unused=True)  # old tables keep serving meanwhile
        assert client.get("/api/by-day").json() == day.json()
        reloaded = client.post("/v1/admin/reload")
        assert reloaded.status_code == 200, reloaded.text
        week = client.get("/api/by-day")
        assert week.headers[TABLE_HEADER].endswith(
            next(r.table for r in second.rollups if r.name == "daily"))
        assert week.json() == [{"region": "eu", "day": "2025-12-29", "n": 1},
                               {"region": "us", "day": "2025-12-29", "n": 1}]
        path.write_text(path.read_text().replace("agg: count", "agg: cnt"))
        refused = client.post("/v1/admin/reload")
        assert refused.status_code == 422
        assert refused.json()["error"]["issues"][0]["code"] == "unknown-agg"
        assert client.get("/api/by-day").json() == week.json()


def test_verify_finds_drift_after_mutations_and_repair_restores_equality(
        warehouse: Warehouse, database: str) -> None:
    """ALTER DELETE / UPDATE on the source never reach the views: verify reports the drifted
    groups, repair rebuilds the rollups and answers equal the raw table again."""
    _create_events(warehouse, database)
    insert_rows(warehouse, f"{database}.events",
                [(f"2026-0{1 + i % 3}-{1 + i % 27:02d} 00:00:00", ("eu", "us")[i % 2], i)
                 for i in range(300)])
    compiled = _compiled(warehouse, database, DAILY)
    apply_model(compiled, warehouse)
    assert verify_model(compiled, warehouse) == []
    tables = {r.name: r.qualified_table for r in compiled.rollups}
    for mutation in ("DELETE WHERE region = 'eu' AND toMonth(ts) = 2",
                     "UPDATE amount = amount * 2 WHERE toMonth(ts) = 3"):
        _mutate(warehouse, database, mutation)
        lines: list[str] = []
        drifts = verify_model(compiled, warehouse, lines.append)
        if "DELETE" in mutation:  # both rollups count the deleted rows
            assert {d.table for d in drifts} == set(tables.values()), lines
            daily = next(d for d in drifts if d.rollup == "daily")
            assert set(daily.periods) == {"2026-02"}
            assert daily.differing == 9  # the eu days of February (days 1 + i % 27)
        else:  # only totals stores revenue; daily's counts are unchanged
            assert [d.rollup for d in drifts] == ["totals"], lines
        assert repair_rollups(compiled, warehouse, {d.table for d in drifts}) == len(drifts)
        assert verify_model(compiled, warehouse) == []
        runtime = Runtime.start(compiled.model, warehouse)
        for query in (Query("events", ("events", "revenue")),
                      Query("events", ("events",), ("region", "ts"), "day")):
            served, table = _rollup_rows(runtime, query)
            assert table in tables.values()
            assert served == runtime.run(runtime.plan(replace(query, force_raw=True))).rows


def test_server_applies_a_changed_model_while_serving(warehouse: Warehouse, database: str,
                                                      tmp_path: Path) -> None:
    """POST /v1/admin/apply (what `semantic apply` uses while the server holds the embedded
    engine): the new rollups are built while the old ones serve, then the server switches
    and drops the old tables."""
    _create_events(warehouse, database)
    insert_rows(warehouse, f"{database}.events", ROWS)
    path = tmp_path / "metrics.yaml"
    text = model_text(MODEL, db=database, extra="{extra}") + model_text(ENDPOINTS, grain="week")
    path.write_text(text.replace("{extra}", DAILY))
    first = compile_against(load_model(path), warehouse)
    apply_model(first, warehouse)
    old = next(r.qualified_table for r in first.rollups if r.name == "daily")
    app = create_app(first.model, warehouse, load=lambda: load_model(path))
    with TestClient(base_url=LOOPBACK, app=app) as client:
        before = client.get("/api/by-day")
        assert before.headers[TABLE_HEADER] == old
        path.write_text(text.replace("{extra}", WEEKLY))
        applied = client.post("/v1/admin/apply")
        assert applied.status_code == 200, applied.text
        log = applied.json()["log"]
        assert any(line.startswith("create ") for line in log)
        assert "switched to the new model" in log
        assert any(line.startswith(f"drop     {old}") for line in log)
        after = client.get("/api/by-day")
        assert after.headers[TABLE_HEADER] != old and after.json() == before.json()
        assert old not in tables(warehouse, [database])
        path.write_text("sources: {}")
        assert client.post("/v1/admin/apply").status_code == 422
        assert client.get("/api/by-day").json() == before.json()


def test_partitioned_source_gives_partitioned_rollups_repaired_partition_by_partition(
        warehouse: Warehouse, database: str) -> None:
    """A source partitioned by month gets rollups partitioned by the month of their bucket; a
    DELETE in one month is repaired by replacing that month's partition only."""
    _create_events(warehouse, database, "PARTITION BY toYYYYMM(ts) ORDER BY ts")
    insert_rows(warehouse, f"{database}.events",
                [(f"2026-0{1 + i % 3}-{1 + i % 27:02d} {i % 24:02d}:00:00", ("eu", "us")[i % 2],
                  i) for i in range(300)])
    hourly = "      hourly: {dimensions: [region], grain: hour, measures: [events, revenue]}"
    compiled = _compiled(warehouse, database, DAILY + "\n" + hourly)
    by_name = {r.name: r for r in compiled.rollups}
    assert by_name["totals"].partition is None  # no grain: nothing to partition by
    assert by_name["daily"].partition is not None
    assert by_name["daily"].partition.sql(dialect="clickhouse") == "toYYYYMM(ts_day)"
    assert by_name["hourly"].partition.sql(dialect="clickhouse") == "toYYYYMM(ts_hour, 'UTC')"
    apply_model(compiled, warehouse)
    parts = sqlglot.parse_one(
        f"SELECT table, groupUniqArray(partition_id) FROM system.parts WHERE database = "
        f"'{database}' AND active GROUP BY table", dialect="clickhouse")

    def partitions() -> dict[str, list[str]]:
        return {t: sorted(ids) for t, ids in warehouse.query(parts).rows}

    assert partitions()[by_name["daily"].table] == ["202601", "202602", "202603"]
    _mutate(warehouse, database, "DELETE WHERE toMonth(ts) = 2 AND region = 'eu'")
    drifts = verify_model(compiled, warehouse)
    assert {d.rollup for d in drifts} == {"totals", "daily", "hourly"}
    lines: list[str] = []
    assert repair_rollups(compiled, warehouse, {d.table for d in drifts}, lines.append,
                          drifts) == 3
    assert any(f"{by_name['daily'].qualified_table} (daily), 1 partition(s)" in line
               for line in lines), lines
    assert any("(totals), every row" in line for line in lines), lines
    assert verify_model(compiled, warehouse) == []
    # Every row of a month deleted: its partition is dropped from the rollups too.
    _mutate(warehouse, database, "DELETE WHERE toMonth(ts) = 3")
    drifts = verify_model(compiled, warehouse)
    repair_rollups(compiled, warehouse, {d.table for d in drifts}, drifts=drifts)
    assert verify_model(compiled, warehouse) == []
    assert partitions()[by_name["daily"].table] == ["202601", "202602"]
    # Rebuilding everything (`repair --all`) swaps every partition, with or without drift, and
    # drops those the source no longer has.
    assert repair_model(compiled, warehouse, everything=True) == 3
    assert verify_model(compiled, warehouse) == []
    assert partitions()[by_name["daily"].table] == ["202601", "202602"]
    _mutate(warehouse, database, "DELETE WHERE toMonth(ts) = 2")
    assert repair_model(compiled, warehouse, everything=True) == 3
    assert verify_model(compiled, warehouse) == []
    assert partitions()[by_name["daily"].table] == ["202601"]


def test_snapshot_of_a_replicated_source_is_a_plain_mergetree_with_its_keys(
        warehouse: Warehouse, database: str) -> None:
    """A Replicated source's snapshot must not copy its engine (it would share the replication
    path): it is created as MergeTree with the source's keys, which ATTACH PARTITION accepts.
    chDB has no Keeper, so the source here is a MergeTree reported as Replicated."""
    _create_events(warehouse, database, "PARTITION BY toYYYYMM(ts) ORDER BY (ts, region)")
    insert_rows(warehouse, f"{database}.events", ROWS)
    text = model_text(MODEL, db=database, extra="{extra}").replace("{extra}", DAILY)
    model = load_model_text(text, "test.yaml")
    types = read_types(model, warehouse)
    engine = dataclasses.replace(types["events"].engine, engine="ReplicatedMergeTree")
    compiled = compile_model(model, {"events": dataclasses.replace(types["events"],
                                                                   engine=engine)})
    snapshot = [s for step in migration_steps(compiled, warehouse) for s in step.statements
                if "_snapshot AS " in render(s.expression)]
    assert render(snapshot[0].expression).endswith(
        f"AS {database}.events ENGINE = MergeTree PARTITION BY (toYYYYMM(ts)) "
        "PRIMARY KEY (ts, region) ORDER BY (ts, region)")
    apply_model(compiled, warehouse)
    assert verify_model(compiled, warehouse) == []
