"""A secured source served through the SQL interface (and HTTP, to compare): two tenants, three
regions, ten days, a rollup by tenant, region and day; a service key sees every row, JWTs
carry the ``tenant`` claim row-level security reads."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jwt
import pytest

from engine.query.security import Access
from semantic import Model
from server.app import create_app
from server.auth.keys import StoredKey, hash_key, new_key
from server.auth.settings import AccessSettings
from server.auth.tokens import JwtSettings
from server.settings import Limits, SqlSettings
from server.warehouse.statements import Warehouse
from tests.processes import Server
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
      users: {{agg: count_distinct, column: note}}
      biggest: {{agg: max, column: amount}}
      # about 1.5 s over the raw rows (no rollup stores it): a statement to cancel
      slow: {{agg: sum, sql: sleepEachRow(0.01)}}
    metrics:
      revenue_per_event: {{sql: revenue / events}}
    security:
      tenant: tenant_id
    rollups:
      by_tenant_region_day:
        dimensions: [tenant_id, region]
        grain: day
        measures: [events, revenue, users, biggest]
"""

ROWS = TENANT_ROWS
SECRET = "sql-interface-test-secret-of-32-bytes-or-more"


def token(tenant: int | list[int], scope: str = "read") -> str:
    payload: dict[str, Any] = {"sub": "app", "scope": scope, "tenant": tenant,
                               "exp": int(time.time()) + 3600}
    return jwt.encode(payload, SECRET, algorithm="HS256")


@dataclass(frozen=True)
class Running:
    server: Server
    port: int
    key: str  # a key of both tenants: every row

    def dsn(self, password: str | None = None, **options: str) -> str:
        extra = "".join(f"&{k}={v}" for k, v in options.items())
        return (f"postgresql://analyst:{password or self.key}@127.0.0.1:{self.port}/semantic"
                f"?sslmode=disable{extra}")

    def query(self, body: dict[str, Any], password: str | None = None) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.server.post("/v1/query", body,
                                                      key=password or self.key)["data"]
        return rows


@pytest.fixture(scope="module")
def sql_model(warehouse: Warehouse) -> Iterator[Model]:
    with tenant_events(warehouse, "sql", MODEL) as loaded:
        yield loaded


def serve_sql(model: Model, warehouse: Warehouse, access: AccessSettings,
              sql: SqlSettings | None = None,
              limits: Limits | None = None) -> tuple[Server, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    app = create_app(model, warehouse, access=access, sql_socket=sock, sql=sql, limits=limits)
    return Server(app), sock.getsockname()[1]


@pytest.fixture(scope="module")
def running(sql_model: Model, warehouse: Warehouse) -> Iterator[Running]:
    key, key_id, _ = new_key()
    stored = StoredKey(key_id, hash_key(key), frozenset({"read"}), Access.of({"tenant": [1, 2]}))
    access = AccessSettings(keys=(stored,), jwt=JwtSettings(secret=SECRET))
    server, port = serve_sql(sql_model, warehouse, access)
    with server:
        yield Running(server, port, key)
