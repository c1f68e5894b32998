"""A secured source served for the Cube API tests: two tenants, three regions, ten days, a
rollup by tenant, region and day; JWTs carry the ``tenant`` claim row-level security reads."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest

from semantic import Model
from server.auth.settings import AccessSettings
from server.auth.tokens import JwtSettings
from server.warehouse.statements import Warehouse
from tests.support import EVENTS_HEAD, TENANT_ROWS, tenant_events

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

ROWS = TENANT_ROWS
SECRET = "cube-api-test-secret-of-32-bytes-or-more"
ACCESS = AccessSettings(jwt=JwtSettings(secret=SECRET))


def token(tenant: int | list[int], scope: str = "read") -> str:
    """A JWT as an application would mint for Cube: the security claim in its payload."""
    payload: dict[str, Any] = {"sub": "app", "scope": scope, "tenant": tenant,
                               "exp": int(time.time()) + 3600}
    return jwt.encode(payload, SECRET, algorithm="HS256")


@pytest.fixture(scope="module")
def cube_model(warehouse: Warehouse) -> Iterator[Model]:
    with tenant_events(warehouse, "cube", MODEL) as loaded:
        yield loaded

#: the clock of the translation tests (relative date ranges resolve against it)
NOW = datetime(2026, 3, 29, 12, 34, 56, tzinfo=UTC)  # a Sunday
