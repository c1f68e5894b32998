"""The HTTP API on a small data set: shapes, routing headers, errors, freshness."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlglot
from litestar.testing import TestClient

from semantic import load_model_text
from server.app import TABLE_HEADER, create_app
from server.operations import apply_model
from server.runtime import compile_against
from server.warehouse import Warehouse
from tests.support import insert_rows, model_text

MODEL = """
version: 1
rollup_database: {db}
sources:
  events:
    table: {db}.events
    time: ts
    dimensions:
      region: {{}}
      plan: {{sql: "upper(tier)"}}
    measures:
      events: {{agg: count}}
      revenue: {{agg: sum, column: amount}}
      avg_amount: {{agg: avg, column: amount}}
      users: {{agg: count_distinct, column: user}}
    rollups:
      totals: {{measures: [events, revenue, users]}}
      by_region_day: {{dimensions: [region], grain: day, measures: [events, revenue, avg_amount]}}
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
"""

ROWS = [
    ("2026-01-01 10:00:00", "us", "free", "u1", 10),
    ("2026-01-01 11:00:00", "us", "pro", "u2", 20),
    ("2026-01-02 09:30:00", "eu", "pro", "u1", 5),
    ("2026-01-03 23:59:59", "eu", "free", "u3", 0),
    ("2026-02-01 00:00:00", "asia", "pro", "u4", 7),
]


def _exec(warehouse: Warehouse, sql: str) -> list[tuple[object, ...]]:
    statement = sqlglot.parse_one(sql, dialect="clickhouse")
    if isinstance(statement, sqlglot.exp.Query):
        return warehouse.query(statement).rows
    warehouse.command(statement)
    return []


@pytest.fixture
def client(warehouse: Warehouse, database: str) -> Iterator[TestClient]:  # type: ignore[type-arg]
    _exec(warehouse, f"CREATE TABLE {database}.events (ts DateTime, region String, tier String, "
                     "user String, amount Int64) ENGINE = MergeTree ORDER BY ts")
    insert_rows(warehouse, f"{database}.events", ROWS[:3])  # backfilled by apply
    model = load_model_text(model_text(MODEL, db=database), "test.yaml")
    apply_model(compile_against(model, warehouse), warehouse)
    insert_rows(warehouse, f"{database}.events", ROWS[3:])  # fed by the materialized views
    with TestClient(app=create_app(model, warehouse)) as test_client:
        yield test_client


def test_api_object_endpoint_served_from_rollup(client: TestClient, database: str) -> None:  # type: ignore[type-arg]
    response = client.get("/api/totals")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers[TABLE_HEADER].startswith(f"{database}.events_totals_")
    assert response.json() == {"n": 5, "rev": 42, "u": 4}


def test_api_list_endpoint_order_and_shape(client: TestClient, database: str) -> None:  # type: ignore[type-arg]
    response = client.get("/api/by-region")
    assert response.headers[TABLE_HEADER].startswith(f"{database}.events_by_region_day_")
    assert response.json() == [
        {"region": "asia", "day": "2026-02-01", "n": 1, "avg": 7},
        {"region": "eu", "day": "2026-01-03", "n": 1, "avg": 0},
        {"region": "eu", "day": "2026-01-02", "n": 1, "avg": 5},
        {"region": "us", "day": "2026-01-01", "n": 2, "avg": 15},
    ]


def test_api_endpoint_query_parameters_filter(client: TestClient) -> None:  # type: ignore[type-arg]
    one = client.get("/api/by-region", params={"region": "eu"}).json()
    assert [r["region"] for r in one] == ["eu", "eu"]
    two = client.get("/api/by-region?region=eu&region=asia").json()
    assert sorted({r["region"] for r in two}) == ["asia", "eu"]
    bad = client.get("/api/by-region?nope=1")
    assert bad.status_code == 400
    assert bad.json()["error"]["field"] == "nope"


def test_api_expression_dimension_falls_back_to_raw(client: TestClient, database: str) -> None:  # type: ignore[type-arg]
    response = client.get("/api/by-plan")
    assert response.headers[TABLE_HEADER] == f"{database}.events"
    assert response.json() == [{"plan": "PRO", "n": 3}, {"plan": "FREE", "n": 2}]


def test_api_query_returns_data_and_meta(client: TestClient, database: str) -> None:  # type: ignore[type-arg]
    body = {"measures": ["revenue", "avg_amount"], "dimensions": ["region", "ts"],
            "grain": "month", "filters": [{"member": "region", "op": "in",
                                             "values": ["us", "eu"]}],
            "order": [{"member": "revenue", "direction": "desc"}]}
    response = client.post("/v1/query", json=body)
    assert response.status_code == 200
    payload = response.json()
    assert payload["data"] == [
        {"region": "us", "ts": "2026-01-01", "revenue": 30, "avg_amount": 15},
        {"region": "eu", "ts": "2026-01-01", "revenue": 5, "avg_amount": 2.5},
    ]
    assert payload["meta"]["rollup"] == "by_region_day"
    assert payload["meta"]["table"] == response.headers[TABLE_HEADER]
    assert payload["meta"]["truncated"] is False


def test_api_query_force_raw_matches(client: TestClient, database: str) -> None:  # type: ignore[type-arg]
    body = {"measures": ["events", "users"], "force_raw": True}
    response = client.post("/v1/query", json=body)
    assert response.headers[TABLE_HEADER] == f"{database}.events"
    assert response.json()["data"] == [{"events": 5, "users": 4}]


def test_api_query_limit_reports_truncation(client: TestClient) -> None:  # type: ignore[type-arg]
    body = {"measures": ["events"], "dimensions": ["region"], "limit": 2}
    meta = client.post("/v1/query", json=body).json()["meta"]
    assert meta["truncated"] is True
    assert meta["rows"] == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"measures": ["revenu"]}, "measures[0]"),
        ({"measures": "events"}, "measures"),
        ({"measures": ["events"], "dimensions": ["ts"]}, "grain"),
        ({"measures": ["events"], "grain": "fortnight"}, "grain"),
        ({"measures": ["events"], "filters": [{"member": "regio", "value": "x"}]},
         "filters[0].member"),
        ({"measures": ["events"], "filters": [{"member": "region", "op": "like", "value": "x"}]},
         "filters[0].op"),
        ({"measures": ["events"], "order": ["region"]}, "order[0]"),
        ({"measures": ["events"], "limit": 0}, "limit"),
        ({"measures": ["events"], "bogus": 1}, "bogus"),
        ({"measures": ["events"], "source": "evnts"}, "source"),
    ],
)
def test_api_query_rejects_bad_fields(client: TestClient, body: dict[str, object],  # type: ignore[type-arg]
                                      field: str) -> None:
    response = client.post("/v1/query", json=body)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["field"] == field


def test_api_query_rejects_malformed_json(client: TestClient) -> None:  # type: ignore[type-arg]
    response = client.post("/v1/query", content=b"{not json")
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "body"


def test_api_hostile_filter_value_stays_data(client: TestClient) -> None:  # type: ignore[type-arg]
    body = {"measures": ["events"], "filters": [{"member": "region",
                                                  "value": "us' OR '1'='1"}]}
    assert client.post("/v1/query", json=body).json()["data"] == [{"events": 0}]


def test_api_unknown_route_is_json_404(client: TestClient) -> None:  # type: ignore[type-arg]
    response = client.get("/api/nothing")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == "http_error"


def test_api_meta_and_health(client: TestClient, database: str) -> None:  # type: ignore[type-arg]
    meta = client.get("/v1/meta").json()
    source = meta["sources"][0]
    assert [m["name"] for m in source["measures"]] == ["events", "revenue", "avg_amount", "users"]
    assert {r["name"]: r["ready"] for r in source["rollups"]} == {"totals": True,
                                                                  "by_region_day": True}
    assert [e["path"] for e in meta["endpoints"]] == ["/api/totals", "/api/by-region",
                                                      "/api/by-plan"]
    health = client.get("/healthz")
    assert health.status_code == 200
    assert health.json()["rollups_ready"] == 2


def test_api_new_rows_visible_at_once(client: TestClient, warehouse: Warehouse,  # type: ignore[type-arg]
                                      database: str) -> None:
    assert client.get("/api/totals").json()["n"] == 5
    insert_rows(warehouse, f"{database}.events", [("2026-03-01 00:00:00", "us", "free", "u9", 100)])
    assert client.get("/api/totals").json() == {"n": 6, "rev": 142, "u": 5}


def test_api_unavailable_warehouse_answers_503_json() -> None:
    model = load_model_text(model_text(MODEL, db="nowhere"), "test.yaml")
    # A closed port on this machine: nothing listens there.
    down = Warehouse("http://127.0.0.1:9/", "http://127.0.0.1:9", pool_size=1)
    with TestClient(app=create_app(model, down)) as test_client:
        for path in ("/api/totals", "/healthz", "/v1/meta"):
            response = test_client.get(path)
            assert response.status_code == 503, path
            assert response.headers["content-type"] == "application/json"
            assert response.json()["error" if path != "/healthz" else "status"]
        response = test_client.post("/v1/query", json={"measures": ["events"]})
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "warehouse_unavailable"
