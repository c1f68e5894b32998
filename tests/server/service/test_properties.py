"""Property: a query served from a rollup returns exactly what the raw table returns.

Each example builds a fresh database on the real embedded engine: a source table, some rows
inserted *before* the rollups exist (reached by the backfill), the rollups applied, more rows
inserted *after* (reached by the materialized views, in several parts), then random queries run
twice, routed normally and with ``force_raw``, and compared row for row.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from server.warehouse.statements import Warehouse
from tests.server.service.properties import (
    EDGE_QUERIES,
    SINGLE_ROW,
    Dataset,
    QuerySpec,
    Row,
    assert_rollup_equals_raw,
    datasets,
    float_tolerances,
    loaded,
    many_rows,
    query_specs,
)


@given(dataset=datasets(), queries=st.lists(query_specs, min_size=1, max_size=6))
@example(dataset=Dataset((), 0), queries=EDGE_QUERIES)
@example(dataset=Dataset(SINGLE_ROW, 0), queries=EDGE_QUERIES)
@example(dataset=Dataset(SINGLE_ROW, 1), queries=EDGE_QUERIES)
@example(dataset=Dataset(many_rows(3000), 1000, (1500, 2999)), queries=EDGE_QUERIES)
def test_rollup_answers_equal_raw_answers(warehouse: Warehouse, dataset: Dataset,
                                          queries: list[QuerySpec]) -> None:
    with loaded(warehouse, dataset) as (model, runtime):
        tolerances = float_tolerances(dataset.rows)
        for spec in queries:
            assert_rollup_equals_raw(model, runtime, spec.resolve(dataset.rows), dataset.rows,
                                     tolerances)


def _monthly_rows(first: datetime, months: int) -> tuple[Row, ...]:
    return tuple(Row(datetime(first.year + (first.month - 1 + m) // 12,
                              (first.month - 1 + m) % 12 + 1, 15, 12), "eu", f"u{m % 4}", m,
                     m / 4, None)
                 for m in range(months))


@pytest.mark.parametrize("backfilled", [True, False], ids=["backfilled", "fed-by-views"])
def test_rollup_answers_equal_raw_over_a_long_history(warehouse: Warehouse,
                                                      backfilled: bool) -> None:
    """Ten years of monthly rows: 120 month partitions of the day-and-finer rollups, written
    by one backfill or by one insert through the views."""
    rows = _monthly_rows(datetime(2010, 1, 1), 120)
    dataset = Dataset(rows, len(rows) if backfilled else 0)
    with loaded(warehouse, dataset) as (model, runtime):
        for spec in EDGE_QUERIES:
            assert_rollup_equals_raw(model, runtime, spec.resolve(rows), rows)
