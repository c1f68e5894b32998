"""Property: a secured answer equals the raw answer over the caller's tenants' rows only,
whether served from rollups or the raw table; no answer ever includes another tenant's rows.

Each example loads random rows of random tenants (some before the rollups are built, some
after, through the views), then asks random queries as callers holding random sets of
tenants. The oracle is independent of the security code: a table holding only those tenants'
rows, queried raw through a model without ``security:``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import pytest
import sqlglot
from hypothesis import given
from hypothesis import strategies as st

from engine.query.request import Filter, Query, TimeRange
from engine.query.security import Access
from semantic import load_model_text
from server.runtime.compiled import Runtime
from server.warehouse.statements import Warehouse
from tests.support import EVENTS_HEAD, build, fresh_database, insert_rows, model_text

SECURED = EVENTS_HEAD + """\
    dimensions:
      tenant: {{}}
      region: {{}}
    measures:
      rows: {{agg: count}}
      amount: {{agg: sum, column: amount}}
      low: {{agg: min, column: amount}}
      users: {{agg: count_distinct, column: user}}
    security:
      tenant: tenant
    rollups:
      everyone: {{dimensions: [region], grain: day, measures: [rows, amount, low, users]}}
      tenant_day: {{dimensions: [tenant, region], grain: day, measures: [rows, amount, users]}}
      tenant_hour: {{dimensions: [tenant], grain: hour, measures: [rows, amount, low]}}
"""

ORACLE = """
    version: 1
    rollup_database: {db}
    sources:
      events:
        table: {db}.only
        time: ts
        dimensions:
          tenant: {{}}
          region: {{}}
        measures:
          rows: {{agg: count}}
          amount: {{agg: sum, column: amount}}
          low: {{agg: min, column: amount}}
          users: {{agg: count_distinct, column: user}}
"""

COLUMNS = "ts DateTime, tenant UInt32, region String, user String, amount Int64"
START = datetime(2026, 1, 1)
TENANTS = (1, 2, 3, 4)
REGIONS = ("eu", "us", "asia")

rows_strategy = st.lists(st.tuples(
    st.integers(0, 24 * 40 - 1).map(lambda h: START + timedelta(hours=h, minutes=h % 7)),
    st.sampled_from(TENANTS), st.sampled_from(REGIONS), st.sampled_from(("a", "b", "c", "d")),
    st.integers(-50, 100)), max_size=60)

queries = st.builds(
    lambda measures, dimensions, grain, region, days: Query(
        "events", measures, dimensions, grain,
        (Filter("region", "in", region),) if region else (),
        time_range=TimeRange(f"2026-01-{days[0]:02d}", f"2026-01-{days[1]:02d}T06:00")
        if days else None),
    st.lists(st.sampled_from(("rows", "amount", "low", "users")), min_size=1, max_size=4,
             unique=True).map(tuple),
    st.lists(st.sampled_from(("tenant", "region")), max_size=2, unique=True).map(tuple),
    st.sampled_from((None, "day", "hour", "month")),
    st.lists(st.sampled_from(REGIONS), max_size=2, unique=True).map(tuple),
    st.one_of(st.none(), st.tuples(st.integers(1, 14), st.integers(15, 31))),
)
accesses = st.lists(st.sampled_from(TENANTS), min_size=1, max_size=3, unique=True)


def _answer(runtime: Runtime, query: Query, force_raw: bool,
            access: Access | None = None) -> tuple[list[dict[str, object]], list[str]]:
    plan = runtime.plan(replace(query, force_raw=force_raw), access=access)
    used = [p.rollup.name for p in plan.pieces if p.rollup is not None]
    return runtime.run(plan).rows, used


@dataclass
class Secured:
    database: str
    secured: Runtime
    oracle: Runtime
    examples: int = 0


@pytest.fixture(scope="module")
def secured(warehouse: Warehouse) -> Iterator[Secured]:
    """One secured source for every example (each example gets tenants of its own, so the
    rows of earlier examples are other tenants' rows, which no answer may include)."""
    with fresh_database(warehouse, "s") as database:
        for table in ("events", "only"):
            warehouse.command(sqlglot.parse_one(
                f"CREATE TABLE {database}.{table} ({COLUMNS}) ENGINE = MergeTree ORDER BY ts",
                dialect="clickhouse"))
        # rows of other tenants reached by the backfill
        insert_rows(warehouse, f"{database}.events",
                    [(START + timedelta(hours=h), 10**6 + h % 3, REGIONS[h % 3], "z", h)
                     for h in range(0, 24 * 40, 5)])
        _, _, runtime = build(warehouse, model_text(SECURED, db=database))
        oracle = Runtime.start(load_model_text(model_text(ORACLE, db=database)), warehouse)
        yield Secured(database, runtime, oracle)


@given(rows=rows_strategy, cases=st.lists(st.tuples(accesses, queries), min_size=1, max_size=5))
def test_secured_answers_equal_raw_answers_over_the_callers_rows(
        warehouse: Warehouse, secured: Secured, rows: list[tuple[object, ...]],
        cases: list[tuple[list[int], Query]]) -> None:
    secured.examples += 1
    base = secured.examples * 10  # this example's tenants: base + 1 .. base + 4
    rows = [(ts, base + tenant, *rest) for ts, tenant, *rest in rows]
    database = secured.database
    insert_rows(warehouse, f"{database}.events", rows)  # through the materialized views
    secured.secured.refresh()
    for chosen, query in cases:
        tenants = [base + t for t in chosen]
        warehouse.command(sqlglot.parse_one(f"TRUNCATE TABLE {database}.only",
                                            dialect="clickhouse"))
        insert_rows(warehouse, f"{database}.only", [r for r in rows if r[1] in tenants])
        expected, _ = _answer(secured.oracle, query, force_raw=True)
        access = Access.of({"tenant": tenants})
        routed, used = _answer(secured.secured, query, False, access)
        raw, _ = _answer(secured.secured, query, True, access)
        assert "everyone" not in used, f"{query} for {tenants} read a rollup without tenant"
        assert routed == expected, f"{query} for tenants {tenants} from {used}"
        assert raw == expected, f"{query} for tenants {tenants}, raw"
        for row in routed:
            assert row.get("tenant", tenants[0]) in tenants
