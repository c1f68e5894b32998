"""Runtime: plans are cached per query and re-made when the set of complete rollups changes."""

from __future__ import annotations

import sqlglot

from engine.query.request import Query
from engine.rollups.ddl import record_state
from engine.rollups.migration import BUILDING, READY
from server.runtime.compiled import GRANULE_ROWS
from server.warehouse.statements import SMALL_READ_SETTINGS, TINY_READ_SETTINGS, Warehouse
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


WIDE_MODEL = """
rollup_database: {db}
sources:
  events:
    table: {db}.events
    dimensions: {{region: {{}}, user: {{}}}}
    measures: {{n: {{agg: count}}}}
    rollups:
      by_region: {{dimensions: [region], measures: [n]}}
      by_user: {{dimensions: [user], measures: [n]}}
"""


def test_runtime_read_settings_follow_what_the_plan_reads(warehouse: Warehouse,
                                                          database: str) -> None:
    """A read of rollups of a granule of rows at most runs without the query plan's
    optimizations, a read of larger rollups with them (on one thread both), any other read
    with the engine's defaults; every answer is the raw table's."""
    warehouse.command(sqlglot.parse_one(
        f"CREATE TABLE {database}.events (region String, user String) ENGINE = MergeTree "
        "ORDER BY region", dialect="clickhouse"))
    users = GRANULE_ROWS + 100
    warehouse.command(sqlglot.parse_one(
        f"INSERT INTO {database}.events SELECT ['a', 'b', 'c'][number % 3 + 1], "
        f"concat('u', toString(number)) FROM numbers({users})", dialect="clickhouse"))
    _, _, runtime = build(warehouse, model_text(WIDE_MODEL, db=database))
    by_region = runtime.plan(Query("events", ("n",), ("region",)))
    by_user = runtime.plan(Query("events", ("n",), ("user",), limit=users))
    raw = runtime.plan(Query("events", ("n",), ("region",), force_raw=True))
    assert (by_region.rollup and by_region.rollup.name, by_user.rollup and by_user.rollup.name,
            raw.rollup) == ("by_region", "by_user", None)
    assert runtime.read_settings(by_region) == TINY_READ_SETTINGS
    assert runtime.read_settings(by_user) == SMALL_READ_SETTINGS
    assert runtime.read_settings(raw) is None
    assert runtime.run(by_region).values == runtime.run(raw).values
    assert sum(runtime.run(by_user).values[1]) == users
