"""A served model with columns of many types, shared by the hostile-input tests of a module."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from litestar.testing import TestClient
from sqlglot import exp, parse_one

from server.warehouse.statements import Warehouse
from tests.support import (
    EVENTS_HEAD,
    fresh_database,
    served_events,
)

TYPED_MODEL = EVENTS_HEAD + """\
    dimensions:
      region: {{}}
      plan: {{sql: "upper(tier)"}}
      level: {{}}
      price: {{}}
      day: {{}}
      id: {{}}
    measures:
      events: {{agg: count}}
      revenue: {{agg: sum, column: amount}}
      users: {{agg: count_distinct, column: user}}
    rollups:
      totals: {{measures: [events, revenue, users]}}
      by_region_day: {{dimensions: [region], grain: day, measures: [events, revenue]}}
      by_region_hour: {{dimensions: [region, level], grain: hour, measures: [events]}}
endpoints:
  /api/totals:
    returns: object
    fields: {{n: events, rev: revenue}}
  /api/by-region:
    grain: day
    fields: {{region: region, day: ts, n: events}}
    order: [region, day]
"""

TYPED_ROWS = [
    ("2026-01-01 10:00:00", "us", "free", 1, 10, 1.5, "2026-01-01",
     "00000000-0000-0000-0000-000000000001", "u1"),
    ("2026-01-01 11:00:00", "us", "pro", 2, 20, 2.5, "2026-01-01",
     "00000000-0000-0000-0000-000000000002", "u2"),
    ("2026-01-02 09:30:00", "eu", "pro", 3, 5, 0.0, "2026-01-02",
     "00000000-0000-0000-0000-000000000003", "u1"),
    ("2026-02-01 00:00:00", "it's", "free", 255, 7, -1.0, "2026-02-01",
     "00000000-0000-0000-0000-000000000004", "u4"),
]


#: the HTTP API tests' model (shared with the OpenAPI tests): endpoints of every shape
API_MODEL = EVENTS_HEAD + """\
    description: One row per event.
    dimensions:
      region: {{}}
      plan: {{sql: "upper(tier)"}}
    measures:
      events: {{agg: count}}
      revenue: {{agg: sum, column: amount}}
      avg_amount: {{agg: avg, column: amount}}
      users: {{agg: count_distinct, column: user}}
      big: {{agg: count, filter: amount >= 10}}
    metrics:
      per_big: revenue / big
    rollups:
      totals: {{measures: [events, revenue, users]}}
      by_region_day: {{dimensions: [region], grain: day, measures: [events, revenue, avg_amount]}}
      by_region_hour: {{dimensions: [region], grain: hour, measures: [events, per_big]}}
endpoints:
  /api/totals:
    returns: object
    fields: {{n: events, rev: revenue, u: users}}
  /api/by-region:
    grain: day
    fields: {{region: region, day: ts, n: events, avg: avg_amount}}
    order: [region, day desc]
  /api/by-plan:
    fields: {{plan: plan, n: events}}
    order: [n desc, plan]
    limit: 1
"""

API_COLUMNS = "ts DateTime, region String, tier String, user String, amount Int64"
API_ROWS = [
    ("2026-01-01 10:00:00", "us", "free", "u1", 10),
    ("2026-01-01 11:00:00", "us", "pro", "u2", 20),
    ("2026-01-02 09:30:00", "eu", "pro", "u1", 5),
    ("2026-01-03 23:59:59", "eu", "free", "u3", 0),
    ("2026-02-01 00:00:00", "asia", "pro", "u4", 7),
]


@dataclass
class Served:
    client: TestClient  # type: ignore[type-arg]
    database: str
    warehouse: Warehouse


@pytest.fixture(scope="module")
def served(warehouse: Warehouse) -> Iterator[Served]:
    """The typed model, applied and served; rows are not changed by the tests."""
    with fresh_database(warehouse, "hostile") as database:
        columns = ("ts DateTime, region String, tier LowCardinality(String), level UInt8, "
                   "amount Int64, price Float64, day Date, id UUID, user String")
        with served_events(warehouse, database, columns, TYPED_MODEL, TYPED_ROWS) as client:
            yield Served(client, database, warehouse)


def raw_count(served: Served, where: str = "1") -> int:
    """``count()`` over the raw table, for comparing answers."""
    statement = parse_one(f"SELECT count() FROM {served.database}.events WHERE {where}",
                          dialect="clickhouse")
    assert isinstance(statement, exp.Query)
    return int(served.warehouse.query(statement).rows[0][0])
