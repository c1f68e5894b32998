"""A secured source served for the Cube API tests: two tenants, three regions, ten days, a
rollup by tenant, region and day; JWTs carry the ``tenant`` claim row-level security reads."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from sqlglot import parse_one

from semantic import Model, load_model_text
from server.auth.settings import AccessSettings
from server.auth.tokens import JwtSettings
from server.operations.apply import apply_model
from server.runtime.compile import compile_against
from server.warehouse.statements import Warehouse
from tests.support import EVENTS_HEAD, fresh_database, insert_rows, model_text

MODEL = EVENTS_HEAD + """\
    description: One row per event.
    dimensions:
      tenant_id: {{}}
      region: {{description: Where the event happened.}}
      note: {{}}
    measures:
      events: {{agg: count, description: Number of events.}}
      revenue: {{agg: sum, column: amount}}
      avg_amount: {{agg: avg, column: amount}}
    metrics:
      revenue_per_event: {{sql: revenue / events}}
      events_3d: {{rolling: {{measure: events, window: 3 days}}}}
    security:
      tenant: tenant_id
    rollups:
      by_tenant_region_day:
        dimensions: [tenant_id, region]
        grain: day
        measures: [events, revenue, avg_amount]
"""

#: 10 days x 3 regions x 2 tenants, a different count and amount in each cell; some notes null
ROWS = [(f"2026-01-{1 + day:02d} {hour:02d}:30:00", tenant, region,
         None if hour % 3 == 0 else f"n{hour}", day * 10 + hour + tenant)
        for day in range(10) for tenant in (1, 2)
        for r, region in enumerate(("asia", "eu", "us"))
        for hour in range(1 + (day + r + tenant) % 4)]
SECRET = "cube-api-test-secret-of-32-bytes-or-more"
ACCESS = AccessSettings(jwt=JwtSettings(secret=SECRET))


def token(tenant: int | list[int], scope: str = "read") -> str:
    """A JWT as an application would mint for Cube: the security claim in its payload."""
    payload: dict[str, Any] = {"sub": "app", "scope": scope, "tenant": tenant,
                               "exp": int(time.time()) + 3600}
    return jwt.encode(payload, SECRET, algorithm="HS256")


@pytest.fixture(scope="module")
def cube_model(warehouse: Warehouse) -> Iterator[Model]:
    with fresh_database(warehouse, "cube") as database:
        warehouse.command(parse_one(
            f"CREATE TABLE {database}.events (ts DateTime, tenant_id UInt32, region String, "
            "note Nullable(String), amount Int64) ENGINE = MergeTree ORDER BY ts",
            dialect="clickhouse"))
        insert_rows(warehouse, f"{database}.events", ROWS)
        loaded = load_model_text(model_text(MODEL, db=database), "test.yaml")
        apply_model(compile_against(loaded, warehouse), warehouse)
        yield loaded

#: the clock of the translation tests (relative date ranges resolve against it)
NOW = datetime(2026, 3, 29, 12, 34, 56, tzinfo=UTC)  # a Sunday
