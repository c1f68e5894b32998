"""What one request may cost: query time (``max_execution_time``), memory per query
(``max_memory_usage``) and concurrent queries (the pool; excess answered 503 at once).

The source is a view over ``numbers(10^10)``: any real aggregation over it runs for minutes,
so only the limits can end these requests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import sqlglot
from litestar.testing import TestClient

from server.app import create_app
from server.settings import OperatingLimits
from server.warehouse.statements import Warehouse
from tests.support import LOOPBACK, apply_text, model_text

MODEL = """
rollup_database: {db}
sources:
  huge:
    table: {db}.huge
    time: ts
    dimensions: {{v: {{}}}}
    measures:
      total: {{agg: sum, column: v}}
      n: {{agg: count}}
      distinct: {{agg: count_distinct, column: v}}
  small:
    table: {db}.small
    dimensions: {{k: {{}}}}
    measures: {{m: {{agg: count}}}}
    rollups:
      by_k: {{dimensions: [k], measures: [m]}}
"""

SLOW = {"source": "huge", "measures": ["total"], "force_raw": True}
#: another slow query (identical ones in flight share one run: the result cache's single flight)
OTHER_SLOW = {"source": "huge", "measures": ["n", "total"], "force_raw": True}


def _app(warehouse: Warehouse, database: str, limits: OperatingLimits) -> TestClient:  # type: ignore[type-arg]
    warehouse.command(sqlglot.parse_one(
        f"CREATE VIEW IF NOT EXISTS {database}.huge AS SELECT number AS v, "
        "toDateTime(number % 1000000000) AS ts FROM numbers(10000000000)", dialect="clickhouse"))
    warehouse.command(sqlglot.parse_one(
        f"CREATE TABLE IF NOT EXISTS {database}.small (k String) ENGINE = MergeTree ORDER BY k",
        dialect="clickhouse"))
    model = apply_text(warehouse, model_text(MODEL, db=database))
    # a second set of clients on the session's engine, with its own limits
    bounded = Warehouse(warehouse.dsn, warehouse.location, limits=limits)
    return TestClient(base_url=LOOPBACK, app=create_app(model, bounded))


@pytest.fixture
def client(warehouse: Warehouse, database: str) -> Iterator[TestClient]:  # type: ignore[type-arg]
    limits = OperatingLimits(query_timeout=0.5, query_max_memory=50_000_000, pool_size=1,
                    queue_timeout=0.3)
    with _app(warehouse, database, limits) as test_client:
        yield test_client


def test_cost_query_time_is_bounded_and_answered_504(client: TestClient) -> None:  # type: ignore[type-arg]
    started = time.monotonic()
    response = client.post("/v1/query", json=SLOW)
    assert time.monotonic() - started < 5
    assert response.status_code == 504
    error = response.json()["error"]
    assert error["code"] == "query_timeout"
    assert "max_execution_time" in error["message"] and "SEMANTIC_QUERY_TIMEOUT" in \
        error["message"] and "0.5 s" in error["message"]
    assert "DB::Exception" not in response.text


def test_cost_query_memory_is_bounded(warehouse: Warehouse, database: str) -> None:
    limits = OperatingLimits(query_timeout=20, query_max_memory=20_000_000)
    with _app(warehouse, database, limits) as client:
        started = time.monotonic()
        response = client.post("/v1/query", json={"source": "huge", "measures": ["distinct"],
                                                  "force_raw": True})
    assert time.monotonic() - started < 10
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "query_too_large"
    assert "max_memory_usage" in error["message"] and "SEMANTIC_QUERY_MAX_MEMORY" in \
        error["message"]


def test_cost_excess_concurrent_queries_answered_503_at_once(client: TestClient) -> None:  # type: ignore[type-arg]
    assert client.post("/v1/query", json={"source": "huge", "measures": ["n"], "time_range": {
        "from": "2026-01-01", "to": "2026-01-02"}}).status_code in (200, 504)  # compiled
    slow = threading.Thread(target=client.post, args=("/v1/query",), kwargs={"json": SLOW})
    slow.start()
    try:
        # wait until the slow query holds the one client (a fixed sleep races on a busy machine)
        pool = client.app.state.semantic.warehouse.pool._idle
        deadline = time.monotonic() + 5
        while pool and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)
        started = time.monotonic()
        response = client.post("/v1/query", json=OTHER_SLOW)
        elapsed = time.monotonic() - started
    finally:
        slow.join()
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "busy"
    assert response.headers["retry-after"] == "1"
    assert "POOL_SIZE" in response.json()["error"]["message"]
    assert elapsed < 1.5
    # health never waits for the busy pool
    started = time.monotonic()
    assert client.get("/healthz").status_code == 200
    assert time.monotonic() - started < 0.5


def test_cost_huge_in_list_is_stopped_by_a_limit(client: TestClient) -> None:  # type: ignore[type-arg]
    """Measured before the limits: a raw ``in`` list of 100,000 values ran over 15 minutes.
    The longest list a filter may hold now runs until the time or the memory limit stops it,
    whichever it reaches first."""
    body = {"source": "huge", "measures": ["n"], "force_raw": True,
            "filters": [{"member": "v", "op": "not_in", "values": list(range(10_000))}]}
    started = time.monotonic()
    response = client.post("/v1/query", json=body)
    assert time.monotonic() - started < 20
    assert (response.status_code, response.json()["error"]["code"]) in (
        (504, "query_timeout"), (422, "query_too_large")), response.text


def test_cost_raw_table_queries_never_take_the_whole_pool(warehouse: Warehouse,
                                                          database: str) -> None:
    limits = OperatingLimits(query_timeout=1.5, pool_size=2, queue_timeout=0.3)  # one raw slot
    with _app(warehouse, database, limits) as client:
        slow = threading.Thread(target=client.post, args=("/v1/query",), kwargs={"json": SLOW})
        slow.start()
        try:
            time.sleep(0.2)  # the raw slot is taken
            started = time.monotonic()
            second = client.post("/v1/query", json=OTHER_SLOW)
            waited = time.monotonic() - started
            served = client.post("/v1/query", json={"source": "small", "measures": ["m"],
                                                    "dimensions": ["k"]})
        finally:
            slow.join()
    assert second.status_code == 503 and second.json()["error"]["code"] == "busy"
    assert "SEMANTIC_RAW_POOL_SIZE" in second.json()["error"]["message"]
    assert waited < 1.2
    assert served.status_code == 200, served.text  # from the rollup, on the other client
    assert served.headers["x-semantic-table"].startswith(f"{database}.small_by_k")
