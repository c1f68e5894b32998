"""Distinct counts per measure ``method``: rollups give exactly what the same function gives
over the raw rows (groupBitmap, uniqHLL12, uniqCombined), and /v1/meta states the bounds."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from dataclasses import replace

import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from engine.query.request import Query
from semantic import load_model_text
from semantic.errors import ModelError
from server.app import create_app
from server.runtime.compile import compile_against
from server.runtime.compiled import Runtime
from server.warehouse.statements import Warehouse
from tests.support import EVENTS_HEAD, LOOPBACK, build, fresh_database, insert_rows, model_text

MODEL = EVENTS_HEAD + """\
    dimensions:
      region: {{}}
    measures:
      ids_bitmap: {{agg: count_distinct, method: bitmap, column: uid}}
      ids_exact: {{agg: count_distinct, column: uid}}
      users_hll: {{agg: count_distinct_approx, method: hll12, column: user}}
      users_combined: {{agg: count_distinct_approx, method: combined, column: user}}
    rollups:
      totals: {{measures: [ids_bitmap, users_hll, users_combined]}}
      region_daily:
        dimensions: [region]
        grain: day
        measures: [ids_bitmap, users_hll, users_combined]
"""
RAW = {"ids_bitmap": "groupBitmap(uid)", "users_hll": "uniqHLL12(user)",
       "users_combined": "uniqCombined(user)"}
QUERIES = [Query("events", tuple(RAW)), Query("events", tuple(RAW), ("region",)),
           Query("events", tuple(RAW), ("region", "ts"), "day")]


@pytest.fixture(scope="module")
def served(warehouse: Warehouse) -> Iterator[tuple[str, Runtime]]:
    with fresh_database(warehouse, "d") as database:
        warehouse.command(sqlglot.parse_one(
            f"CREATE TABLE {database}.events (ts DateTime, region String, uid UInt32, "
            "user String) ENGINE = MergeTree ORDER BY ts", dialect="clickhouse"))
        _, _, runtime = build(warehouse, model_text(MODEL, db=database))
        yield database, runtime


ROW = st.tuples(st.integers(0, 9), st.sampled_from(["eu", "us", "asia"]),
                st.integers(0, 5000))


@settings(max_examples=10)
@given(batches=st.lists(st.lists(ROW, min_size=1, max_size=300), min_size=1, max_size=4))
def test_distinct_methods_rollup_equals_raw(served: tuple[str, Runtime], warehouse: Warehouse,
                                            batches: list[list[tuple[int, str, int]]]) -> None:
    database, runtime = served
    tables = [f"{database}.events", *(r.qualified_table for r in runtime.compiled.rollups)]
    for table in tables:  # a clean slate; the views refill the rollups from the inserts
        warehouse.command(sqlglot.parse_one(f"TRUNCATE TABLE {table}", dialect="clickhouse"))
    for batch in batches:  # one part per batch: the rollups merge states across parts
        insert_rows(warehouse, f"{database}.events", [
            (f"2026-01-{1 + day:02d} 10:00:00", region, uid, f"u{uid % 1700}")
            for day, region, uid in batch])
    runtime.refresh()
    for query in QUERIES:
        plan = runtime.plan(query)
        assert plan.rollup is not None, plan.candidates
        served_rows = runtime.run(plan).rows
        raw_rows = runtime.run(runtime.plan(replace(query, force_raw=True))).rows
        assert served_rows == raw_rows
        # and the raw answers are what those functions give: bitmap == uniqExact
        keys = ", ".join(d if d != "ts" else "toDate(ts)" for d in query.dimensions)
        group = f" GROUP BY {keys} ORDER BY {keys}" if keys else ""
        select = ", ".join([*([keys] if keys else []), *RAW.values(), "uniqExact(uid)"])
        direct = warehouse.query(sqlglot.parse_one(
            f"SELECT {select} FROM {database}.events{group}", dialect="clickhouse")).rows
        width = len(query.dimensions)
        assert [list(row.values())[width:] for row in served_rows] == \
            [list(row[width:-1]) for row in direct]
        assert all(row[-1] == row[width] for row in direct)


def test_distinct_methods_meta_states_bounds(served: tuple[str, Runtime],
                                             warehouse: Warehouse) -> None:
    database, runtime = served
    app = create_app(runtime.model, warehouse, runtime=runtime)
    with TestClient(base_url=LOOPBACK, app=app) as client:
        measures = {m["name"]: m for m in client.get("/v1/meta").json()["sources"][0]["measures"]}
    assert measures["ids_bitmap"]["method"] == "bitmap" and measures["ids_bitmap"]["exact"]
    assert measures["ids_exact"]["method"] == "exact"
    assert "1.6 %" in measures["users_hll"]["exactness"]
    assert "0.3 %" in measures["users_combined"]["exactness"]
    assert not measures["users_hll"]["exact"]


def test_distinct_method_checked_against_agg_and_column(warehouse: Warehouse,
                                                        database: str) -> None:
    with pytest.raises(ModelError) as wrong_agg:
        load_model_text(textwrap.dedent("""
            sources:
              events:
                table: db.events
                measures:
                  n: {agg: count, method: bitmap}
            """), "m.yaml")
    assert "'method' applies only to" in wrong_agg.value.issues[0].render()
    with pytest.raises(ModelError) as unknown:
        load_model_text(textwrap.dedent("""
            sources:
              events:
                table: db.events
                measures:
                  n: {agg: count_distinct_approx, column: u, method: hll}
            """), "m.yaml")
    assert "did you mean 'hll12'" in unknown.value.issues[0].render()
    # a bitmap of a String column: ClickHouse refuses it, reported on the model
    warehouse.command(sqlglot.parse_one(
        f"CREATE TABLE {database}.events (ts DateTime, user String) ENGINE = MergeTree "
        "ORDER BY ts", dialect="clickhouse"))
    model = load_model_text(model_text("""
        sources:
          events:
            table: {db}.events
            time: ts
            measures:
              users: {{agg: count_distinct, method: bitmap, column: user}}
        """, db=database), "m.yaml")
    with pytest.raises(ModelError) as rejected:
        compile_against(model, warehouse)
    assert "m.yaml:" in rejected.value.issues[0].render()
