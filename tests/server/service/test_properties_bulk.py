"""Property: rollups equal the raw table on bulk data generated inside the engine, with enough
distinct users that ``uniq()`` leaves its exact mode and samples hashes (the same model, checks
and helpers as ``test_properties``; its own module so the two slowest properties can run in
parallel workers)."""

from __future__ import annotations

from datetime import datetime

import sqlglot
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlglot import exp

from server.warehouse.statements import Warehouse
from tests.server.service.properties import (
    COLUMNS,
    MEASURES,
    MODEL,
    QuerySpec,
    Row,
    assert_rollup_equals_raw,
    create_source,
    float_tolerances,
)
from tests.support import build, fresh_database, model_text

# Rows generated inside the engine, many more than a literal INSERT carries: enough distinct
# users that uniq() leaves its exact mode and samples hashes.
GENERATED = sqlglot.parse_one("""
    SELECT
        toDateTime('2024-01-01 00:00:00') + number * {spacing:UInt32} AS ts,
        toString(cityHash64(number, {seed:UInt64}) % {regions:UInt64}) AS region,
        toString(cityHash64({seed:UInt64}, number) % {users:UInt64}) AS user,
        toInt64(cityHash64(number, 1, {seed:UInt64}) % 2000001) - 1000000 AS amount,
        (toInt64(cityHash64(number, 2, {seed:UInt64}) % 2001) - 1000) / 8 AS price,
        if(number % 3 = 0, NULL, toString(number % 5)) AS note
    FROM numbers({start:UInt64}, {count:UInt64})
""", dialect="clickhouse")

BULK_QUERIES = [
    QuerySpec(MEASURES),
    QuerySpec(("rows", "users", "users_approx", "notes"), ("region",), "month"),
    QuerySpec(("rows", "users_approx", "notes", "amount_avg"), ("region_upper",), "week"),
    QuerySpec(("users", "users_approx"), ("region", "note"), "quarter",
              (("region", "not_in", ("0",)),)),
]


def insert_generated(warehouse: Warehouse, database: str, start: int, count: int,
                     parameters: dict[str, int]) -> None:
    if count == 0:
        return
    columns = [exp.to_identifier(name) for name, _ in COLUMNS]
    target = exp.Schema(this=exp.table_("events", db=database), expressions=columns)
    with warehouse.ingestion_lock:
        warehouse.command(exp.insert(GENERATED.copy(), target),
                          {**parameters, "start": start, "count": count})


# Each example loads up to 160,000 rows and builds the rollups (about 2 s on 2 cores): half the
# profile's examples (12 in CI, 100 with `make test-thorough`), plus the explicit one.
@settings(max_examples=max(1, settings().max_examples // 2))
@given(before=st.integers(0, 80_000), after=st.integers(0, 80_000),
       users=st.sampled_from((1, 1_000, 70_000, 10**6)), regions=st.integers(1, 40),
       spacing=st.integers(1, 600), seed=st.integers(0, 2**32))
@example(before=70_000, after=70_000, users=10**6, regions=7, spacing=13, seed=1)
def test_rollup_distinct_counts_equal_raw_past_uniq_sampling(
        warehouse: Warehouse, before: int, after: int, users: int, regions: int, spacing: int,
        seed: int) -> None:
    parameters = {"users": users, "regions": regions, "spacing": spacing, "seed": seed}
    with fresh_database(warehouse, "p") as database:
        create_source(warehouse, database)
        insert_generated(warehouse, database, 0, before, parameters)
        model, _, runtime = build(warehouse, model_text(MODEL, db=database))
        insert_generated(warehouse, database, before, after, parameters)
        # Rows are not materialized in Python: bound the float error by the largest value.
        rows = [Row(datetime(2024, 1, 1), "", "", 1_000_000, 125.0, None)] * (before + after)
        tolerances = float_tolerances(rows)
        for spec in BULK_QUERIES:
            assert_rollup_equals_raw(model, runtime, spec.resolve(()), rows, tolerances)
