"""Runtime: plans are cached per query and re-made when the set of complete rollups changes."""

from __future__ import annotations

import sqlglot

from engine.query.request import Query
from engine.rollups.ddl import record_state
from engine.rollups.migration import BUILDING, READY
from server.warehouse.statements import Warehouse
from tests.support import build, model_text

MODEL = """
rollup_database: {db}
sources:
  events:
    table: {db}.events
    dimensions: {{region: {{}}}}
    measures: {{n: {{agg: count}}}}
    rollups:
      by_region: {{dimensions: [region], measures: [n]}}
"""


def test_runtime_plan_cache_follows_rollup_readiness(warehouse: Warehouse, database: str) -> None:
    warehouse.command(sqlglot.parse_one(
        f"CREATE TABLE {database}.events (region String) ENGINE = MergeTree ORDER BY region",
        dialect="clickhouse"))
    _, compiled, runtime = build(warehouse, model_text(MODEL, db=database))
    query = Query("events", ("n",), ("region",))
    first = runtime.plan(query)
    assert first.rollup is not None
    assert runtime.plan(query) is first  # cached

    runtime.refresh()  # nothing changed: the cache stays
    assert runtime.plan(query) is first

    # The catalog says the rollup is being rebuilt: the next plan must not use it.
    warehouse.command(record_state(compiled.rollups[0], BUILDING))
    runtime.refresh()
    assert runtime.plan(query).rollup is None

    warehouse.command(record_state(compiled.rollups[0], READY))
    runtime.refresh()
    again = runtime.plan(query)
    assert again.rollup is not None and again is not first
