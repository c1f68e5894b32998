"""The HTTP API on a small data set: shapes, routing headers, errors, freshness."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlglot
from litestar.testing import TestClient

from semantic import load_model_text
from server.api.endpoints import ENDPOINTS
from server.app import TABLE_HEADER, create_app
from server.warehouse.statements import Warehouse
from tests.server.conftest import API_COLUMNS, API_MODEL, API_ROWS
from tests.support import (
    LOOPBACK,
    apply_text,
    create_events,
    fresh_database,
    insert_rows,
    model_text,
    serving,
)

MODEL, COLUMNS, ROWS = API_MODEL, API_COLUMNS, API_ROWS


def _exec(warehouse: Warehouse, sql: str) -> list[tuple[object, ...]]:
    statement = sqlglot.parse_one(sql, dialect="clickhouse")
    if isinstance(statement, sqlglot.exp.Query):
        return warehouse.query(statement).rows
    warehouse.command(statement)
    return []


@contextmanager
def _served(warehouse: Warehouse, database: str) -> Iterator[TestClient]:  # type: ignore[type-arg]
    table = create_events(warehouse, database, COLUMNS)
    insert_rows(warehouse, table, ROWS[:3])  # backfilled by apply
    model = apply_text(warehouse, model_text(MODEL, db=database))
    insert_rows(warehouse, table, ROWS[3:])  # fed by the materialized views
    with serving(warehouse, model) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def shared(warehouse: Warehouse) -> Iterator[tuple[TestClient, str]]:  # type: ignore[type-arg]
    """One served database for the tests that only read (built once per module)."""
    with fresh_database(warehouse, "api") as database, _served(warehouse, database) as client:
        yield client, database


@pytest.fixture
def client(shared: tuple[TestClient, str]) -> TestClient:  # type: ignore[type-arg]
    return shared[0]


@pytest.fixture
def database(shared: tuple[TestClient, str]) -> str:  # type: ignore[type-arg]
    """The shared served database (this module's tests read it, none writes to it)."""
    return shared[1]


@pytest.fixture
def own(warehouse: Warehouse) -> Iterator[tuple[TestClient, str]]:  # type: ignore[type-arg]
    """A served database of the test's own, for a test that writes rows."""
    with fresh_database(warehouse) as database, _served(warehouse, database) as client:
        yield client, database


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


def test_api_endpoint_repeated_requests_answer_alike(client: TestClient) -> None:  # type: ignore[type-arg]
    """What a path and query string make of an endpoint is kept: a repeat gives the same
    answer, a refused one is refused again, and another query string is another query."""
    first = client.get("/api/by-region?region=eu")
    assert client.get("/api/by-region?region=eu").content == first.content
    assert client.get("/api/by-region?region=asia").json() != first.json()
    for _ in range(2):
        assert client.get("/api/by-region?nope=1").json()["error"]["field"] == "nope"
        assert client.get("/api/by-plan?limit=100001").json()["error"]["field"] == "limit"


def test_api_expression_dimension_falls_back_to_raw(client: TestClient, database: str) -> None:  # type: ignore[type-arg]
    response = client.get("/api/by-plan?limit=5")
    assert response.headers[TABLE_HEADER] == f"{database}.events"
    assert response.json() == [{"plan": "PRO", "n": 3}, {"plan": "FREE", "n": 2}]


def test_api_endpoint_limit_parameter_replaces_its_own(client: TestClient) -> None:  # type: ignore[type-arg]
    assert client.get("/api/by-plan").json() == [{"plan": "PRO", "n": 3}]  # its limit: 1
    assert len(client.get("/api/by-plan?limit=2").json()) == 2
    assert client.get("/api/by-plan?limit=100001").json()["error"]["field"] == "limit"


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


def test_api_answer_cut_at_the_limit_after_its_rollup_grew(warehouse: Warehouse) -> None:
    """Routing leaves out a LIMIT that the rollups' last read sizes say cuts nothing. A rollup
    grown since (sizes are read again every so often) gives an answer still cut at the
    limit and marked truncated, the raw table's."""
    with fresh_database(warehouse, "grown") as database:
        table = create_events(warehouse, database, COLUMNS)
        insert_rows(warehouse, table, ROWS)
        model = apply_text(warehouse, model_text(MODEL, db=database))
        with serving(warehouse, model, cache_bytes=0) as client:
            body = {"measures": ["events"], "dimensions": ["region"], "grain": "day",
                    "limit": 5}
            explained = client.post("/v1/explain", json=body).json()
            assert explained["rollup"] == "by_region_day" and "LIMIT" not in explained["sql"]
            first = client.post("/v1/query", json=body).json()
            assert first["meta"]["truncated"] is False and len(first["data"]) == 4
            insert_rows(warehouse, table, [(f"2026-01-0{day} 12:00:00", region, "free", "u9", 1)
                                           for day in (4, 5) for region in ("us", "eu")])
            explained = client.post("/v1/explain", json=body).json()  # sizes not read again
            assert explained["rollup"] == "by_region_day" and "LIMIT" not in explained["sql"]
            answer = client.post("/v1/query", json=body)
            assert "by_region_day" in answer.headers[TABLE_HEADER]
            raw = client.post("/v1/query", json={**body, "force_raw": True}).json()
            assert raw["meta"]["truncated"] is True and len(raw["data"]) == 5
            assert answer.json()["data"] == raw["data"]
            assert answer.json()["meta"]["truncated"] is True


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
        ({"measures": ["events"], "filters": [{"and": "region"}]}, "filters[0].and"),
        ({"measures": ["events"], "filters": [{"or": [{"member": "region", "op": "eq"}]}]},
         "filters[0].or[0].value"),
        ({"measures": ["events"], "filters": [{"member": "events", "op": "contains",
                                               "value": "1"}]}, "filters[0].op"),
        ({"measures": ["events"], "filters": [{"member": "events", "op": "gt", "value": "1"}]},
         "filters[0].value"),
        ({"measures": ["events"], "filters": [{"or": [{"member": "events", "value": 1},
                                                      {"member": "region", "value": "us"}]}]},
         "filters[0].or"),
        ({"measures": ["events"], "filters": [{"member": "ts", "op": "gt", "value": "x"}]},
         "filters[0].member"),
        ({"measures": ["events"], "time_range": {"from": "2026-02-01", "to": "2026-01-01"}},
         "time_range.to"),
        ({"measures": ["events"], "time_range": {"from": "yesterday"}}, "time_range.from"),
        ({"measures": ["events"], "time_range": "last fortnight"}, "time_range"),
        ({"measures": ["events"], "timezone": "Mars/Olympus"}, "timezone"),
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
    assert response.json()["error"]["code"] == "not_found"


def test_api_meta_and_health(client: TestClient, database: str) -> None:  # type: ignore[type-arg]
    meta = client.get("/v1/meta").json()
    source = meta["sources"][0]
    assert (source["name"], source["description"]) == ("events", "One row per event.")
    assert [m["name"] for m in source["measures"]] == ["events", "revenue", "avg_amount", "users",
                                                      "big"]
    assert {m["name"]: m["exact"] for m in source["measures"]} == {
        "events": True, "revenue": True, "avg_amount": True, "users": True, "big": True}
    assert source["measures"][4]["filter"] == "amount >= 10"
    assert source["metrics"] == [{
        "name": "per_big", "sql": "revenue / big", "measures": ["revenue", "big"],
        "exact": True, "exactness": "exact: computed from exact measures; division by zero "
        "gives null", "time": None, "description": ""}]
    assert {r["name"]: r["ready"] for r in source["rollups"]} == {
        "totals": True, "by_region_day": True, "by_region_hour": True}
    assert [e["path"] for e in meta["endpoints"]] == ["/api/totals", "/api/by-region",
                                                      "/api/by-plan"]
    assert meta["compiled"] is True
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready" and ready.json()["rollups_ready"] == 3


def test_api_new_rows_visible_at_once(own: tuple[TestClient, str],  # type: ignore[type-arg]
                                      warehouse: Warehouse) -> None:
    client, database = own
    assert client.get("/api/totals").json()["n"] == 5
    insert_rows(warehouse, f"{database}.events", [("2026-03-01 00:00:00", "us", "free", "u9", 100)])
    assert client.get("/api/totals").json() == {"n": 6, "rev": 142, "u": 5}


def test_api_unavailable_warehouse_answers_503_json() -> None:
    model = load_model_text(model_text(MODEL, db="nowhere"), "test.yaml")
    # A closed port on this machine: nothing listens there.
    down = Warehouse("http://127.0.0.1:9/", "http://127.0.0.1:9", pool_size=1)
    with TestClient(base_url=LOOPBACK, app=create_app(model, down)) as test_client:
        for path in ("/api/totals", "/readyz"):
            response = test_client.get(path)
            assert response.status_code == 503, path
            assert response.headers["content-type"] == "application/json"
            assert int(response.headers["retry-after"]) >= 1
        assert "connection refused" in test_client.get("/readyz").json()["reason"]
        assert test_client.get("/healthz").status_code == 200  # alive, just not ready
        response = test_client.post("/v1/query", json={"measures": ["events"]})
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "warehouse_unavailable"
        # The model was never compiled: meta answers from the validated YAML, marked so.
        meta = test_client.get("/v1/meta")
        assert meta.status_code == 200
        assert meta.json()["compiled"] is False
        assert "connection refused" in meta.json()["reason"]
        source = meta.json()["sources"][0]
        assert [m["name"] for m in source["measures"]] == ["events", "revenue", "avg_amount",
                                                          "users", "big"]
        assert source["dimensions"][1] == {"name": "plan", "type": None, "sql": "upper(tier)",
                                           "description": "", "path": [], "source": "events"}
        assert [e["path"] for e in meta.json()["endpoints"]] == ["/api/totals",
                                                                 "/api/by-region",
                                                                 "/api/by-plan"]


def test_api_query_unaligned_range_merges_rollup_and_raw(client: TestClient,  # type: ignore[type-arg]
                                                         database: str) -> None:
    body = {"measures": ["events", "per_big"], "dimensions": ["region"],
            "time_range": {"from": "2026-01-01T10:30:00Z", "to": "2026-01-03T23:59:59.5Z"}}
    response = client.post("/v1/query", json=body)
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["data"] == [{"region": "eu", "events": 2, "per_big": None},
                               {"region": "us", "events": 1, "per_big": 20}]
    assert payload["meta"]["tables"][0].startswith(f"{database}.events_by_region_hour_")
    assert payload["meta"]["tables"][1:] == [f"{database}.events"]
    assert payload["meta"]["time_range"] == {"from": "2026-01-01T10:30:00+00:00",
                                             "to": "2026-01-03T23:59:59.500000+00:00"}
    raw = client.post("/v1/query", json={**body, "force_raw": True}).json()
    assert raw["data"] == payload["data"]


def test_api_query_time_zone_buckets(client: TestClient, database: str) -> None:  # type: ignore[type-arg]
    body = {"measures": ["events"], "dimensions": ["region", "ts"], "grain": "day",
            "timezone": "America/New_York", "filters": [{"member": "region", "value": "asia"}]}
    response = client.post("/v1/query", json=body)
    assert response.headers[TABLE_HEADER].startswith(f"{database}.events_by_region_hour_")
    assert response.json()["data"] == [{"region": "asia", "ts": "2026-01-31", "events": 1}]
    hourly = client.post("/v1/query", json={**body, "grain": "hour"}).json()["data"]
    assert hourly == [{"region": "asia", "ts": "2026-01-31T19:00:00-05:00", "events": 1}]


def test_api_query_nested_filters_and_having(client: TestClient) -> None:  # type: ignore[type-arg]
    body = {"measures": ["events", "revenue"], "dimensions": ["region"],
            "filters": [{"or": [{"member": "region", "value": "us"},
                                {"member": "region", "op": "starts_with", "value": "as"}]},
                        {"member": "events", "op": "gte", "value": 2}]}
    assert client.post("/v1/query", json=body).json()["data"] == [
        {"region": "us", "events": 2, "revenue": 30}]
    listed = {"measures": ["events"], "filters": [{"member": "region", "value": ["us", "eu"]}]}
    assert client.post("/v1/query", json=listed).json()["data"] == [{"events": 4}]  # op: in
    body["filters"][1] = {"member": "revenue", "op": "lt", "value": 10}
    assert client.post("/v1/query", json=body).json()["data"] == [
        {"region": "asia", "events": 1, "revenue": 7}]


def test_api_explain_lists_every_candidate(client: TestClient, database: str) -> None:  # type: ignore[type-arg]
    body = {"measures": ["events"], "dimensions": ["region"], "grain": "day",
            "time_range": {"from": "2026-01-01T10:30:00Z", "to": "2026-01-03"}}
    response = client.post("/v1/explain", json=body)
    assert response.status_code == 200
    plan = response.json()
    assert plan["table"] == response.headers[TABLE_HEADER]
    assert plan["rollup"] == "by_region_day"
    middle, *edges = plan["pieces"]
    assert (middle["rollup"], middle["from"], middle["to"]) == (
        "by_region_day", "2026-01-02T00:00:00+00:00", "2026-01-03T00:00:00+00:00")
    # The ragged edge comes from the hourly rollup and/or the raw table, whichever reads
    # fewer bytes (the raw table is tiny here), without gaps or overlaps.
    spans = sorted((p["from"], p["to"]) for p in edges)
    assert spans[0][0] == "2026-01-01T10:30:00+00:00" and spans[-1][1] == middle["from"]
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))
    verdicts = {c["rollup"]: (c["usable"], c["chosen"], c["reason"]) for c in plan["candidates"]}
    assert verdicts == {"totals": (False, False, "missing_dimension"),
                        "by_region_day": (True, True, None),
                        "by_region_hour": (True, False, None)}
    assert "{p0: DATE}" in plan["sql"] and "2026" not in plan["sql"]
    assert set(plan["parameters"]) == {f"p{i}" for i in range(len(plan["parameters"]))}


def test_api_endpoint_time_parameters(client: TestClient) -> None:  # type: ignore[type-arg]
    rows = client.get("/api/by-region", params={"from": "2026-01-02", "to": "2026-02-01"}).json()
    assert [(r["region"], r["day"]) for r in rows] == [("eu", "2026-01-03"), ("eu", "2026-01-02")]
    zoned = client.get("/api/by-region", params={"timezone": "Asia/Tokyo", "region": "us"}).json()
    assert [(r["day"], r["n"]) for r in zoned] == [("2026-01-01", 2)]
    for params, field in (({"range": "last decade"}, "range"),
                          ({"range": "today", "from": "2026-01-01"}, "range"),
                          ({"timezone": "Nowhere/Land"}, "timezone"), ({"offset": "x"}, "offset")):
        response = client.get("/api/by-region", params=params)
        assert response.status_code == 400, params
        assert response.json()["error"]["field"] in (field, "time_range"), params


def test_api_request_id_on_every_answer(client: TestClient) -> None:  # type: ignore[type-arg]
    ok = client.get("/healthz")
    missing = client.post("/v1/query", content=b'{"measures": ["nope"]}')
    kept = client.get("/healthz", headers={"X-Request-Id": "abc-123"})
    hostile = client.get("/healthz", headers={"X-Request-Id": "a b\"<script>"})

    assert len(ok.headers["X-Request-Id"]) == 16
    assert missing.status_code == 400
    assert missing.headers["X-Request-Id"] != ok.headers["X-Request-Id"]
    assert kept.headers["X-Request-Id"] == "abc-123"
    assert hostile.headers["X-Request-Id"] not in ("a b\"<script>", "")


def test_endpoint_fast_path_answers_as_the_route_does(
        client: TestClient) -> None:  # type: ignore[type-arg]
    """A plain JSON GET of an endpoint is answered ahead of the router; ``?format=json`` (and
    any request the fast path leaves alone) goes through the route. Both give the same status,
    body and headers, answers and errors alike."""
    requests = [("/api/totals", {}), ("/api/by-region", {"region": "eu"}),
                ("/api/by-region", {"from": "2026-01-02", "to": "2026-02-01"}),
                ("/api/by-region", {"from": "not a date"}),
                ("/api/by-region", {"region": "x" * 5000}),
                ("/api/by-region", {"limit": "-1"})]
    endpoints = ENDPOINTS[client.app.state.semantic]
    before = endpoints.fast
    for path, params in requests:
        fast = client.get(path, params=params)
        routed = client.get(path, params={**params, "format": "json"})
        assert fast.status_code == routed.status_code, (path, params, fast.text)
        assert fast.content == routed.content or (
            fast.json()["error"] | {"request_id": ""} ==
            routed.json()["error"] | {"request_id": ""}), (path, params)
        assert len(fast.headers.get_list("x-request-id")) == 1, (path, params)
        shown = {k: v for k, v in fast.headers.items() if k not in ("x-request-id",
                                                                     "x-semantic-cache")}
        assert shown == {k: v for k, v in routed.headers.items()
                         if k not in ("x-request-id", "x-semantic-cache")}, (path, params)
    assert endpoints.fast == before + len(requests)  # the plain GETs took the fast path
