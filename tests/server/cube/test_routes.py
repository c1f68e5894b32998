"""The Cube API over HTTP (in-process): answers equal ``/v1/query``'s in Cube's shape, routed
and cached the same way, row-level security from the JWT, errors in Cube's shape."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlglot import exp, parse_one

from engine.query.security import Access
from semantic import Model
from server.app import create_app
from server.auth.keys import StoredKey, new_key
from server.auth.settings import AccessSettings
from server.warehouse.statements import Warehouse
from tests.server.cube.conftest import ACCESS, token
from tests.standins import DRIVER_TEXT, refusing_port
from tests.standins import unreachable_app as outage_client
from tests.support import LOOPBACK

Client = TestClient  # type: ignore[type-arg]


@pytest.fixture(scope="module")
def client(cube_model: Model, warehouse: Warehouse) -> Iterator[Any]:
    app = create_app(cube_model, warehouse, access=ACCESS)
    with TestClient(base_url=LOOPBACK, app=app) as running:
        yield running


def auth(tenant: int | list[int] = 1, bearer: bool = False) -> dict[str, str]:
    tok = token(tenant)
    return {"Authorization": f"Bearer {tok}" if bearer else tok}


def load(client: Any, query: dict[str, Any] | list[Any], tenant: int | list[int] = 1,
         multi: bool = True, key: str | None = None) -> Any:
    params = {"query": json.dumps(query), **({"queryType": "multi"} if multi else {})}
    headers = {"Authorization": key} if key is not None else auth(tenant)
    return client.get("/cubejs-api/v1/load", params=params, headers=headers)


def ours(client: Any, body: dict[str, Any], tenant: int | list[int] = 1) -> Any:
    answer = client.post("/v1/query", json=body, headers=auth(tenant, bearer=True))
    assert answer.status_code == 200, answer.text
    return answer


def test_load_answers_like_v1_query_in_cubes_shape(client: Any) -> None:
    query = {"measures": ["events.events", "events.revenue"], "dimensions": ["events.region"],
             "timeDimensions": [{"dimension": "events.ts",
                                 "granularity": "day", "dateRange": ["2026-01-02",
                                                                     "2026-01-04"]}],
             "order": [["events.region", "asc"], ["events.ts", "asc"]]}
    answer = load(client, query)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"queryType", "results", "pivotQuery", "slowQuery"}
    assert body["queryType"] == "regularQuery" and body["pivotQuery"]["queryType"] == "regularQuery"
    (result,) = body["results"]
    expected = ours(client, {"measures": ["events", "revenue"], "dimensions": ["region"],
                             "grain": "day",
                             "time_range": {"from": "2026-01-02", "to": "2026-01-05"},
                             "order": ["region", "ts"]})
    rows = expected.json()["data"]
    assert len(rows) == 9
    assert result["data"] == [{"events.region": r["region"],
                               "events.ts.day": f"{r['ts']}T00:00:00.000",
                               "events.ts": f"{r['ts']}T00:00:00.000",
                               "events.events": str(r["events"]),
                               "events.revenue": str(r["revenue"])} for r in rows]
    assert result["query"]["timeDimensions"][0]["dateRange"] == [
        "2026-01-02T00:00:00.000", "2026-01-04T23:59:59.999"]
    assert result["dataSource"] == "default" and result["dbType"] == "clickhouse"
    assert result["lastRefreshTime"].endswith("Z")
    assert set(result["annotation"]["measures"]) == {"events.events", "events.revenue"}
    # routed like /v1/query, and the rollup shown as Cube shows pre-aggregations
    assert answer.headers["x-semantic-table"] == expected.headers["x-semantic-table"]
    assert answer.headers["x-semantic-table"].endswith(
        result["routing"]["table"].split(".")[1])
    (used,) = result["usedPreAggregations"].values()
    assert used["preAggregationId"] == "events.by_tenant_region_day"
    assert result["routing"]["rollup"] == "by_tenant_region_day"
    # the same query again is a result-cache hit; a single result without queryType=multi
    assert load(client, query).headers["x-semantic-cache"] == "hit"
    single = load(client, query, multi=False).json()
    assert single["data"] == result["data"] and "results" not in single


def test_load_post_with_filters_default_order_limit_and_total(client: Any) -> None:
    query = {"measures": ["events.events", "events.avg_amount"],
             "dimensions": ["events.region", "events.note"],
             "filters": [{"or": [{"member": "events.region", "operator": "equals",
                                  "values": ["eu", "us"]},
                                 {"member": "events.note", "operator": "notSet"}]},
                         {"member": "events.note", "operator": "notEquals", "values": ["n1"]},
                         {"member": "events.events", "operator": "gte", "values": ["2"]}],
             "limit": 3, "offset": 1, "total": True}
    answer = client.post("/cubejs-api/v1/load", json={"query": query, "queryType": "multi"},
                         headers=auth(2))
    assert answer.status_code == 200, answer.text
    (result,) = answer.json()["results"]
    expected = ours(client, {
        "measures": ["events", "avg_amount"], "dimensions": ["region", "note"],
        "filters": [{"or": [{"member": "region", "op": "in", "values": ["eu", "us"]},
                            {"member": "note", "op": "is_null"}]},
                    {"or": [{"member": "note", "op": "ne", "value": "n1"},
                            {"member": "note", "op": "is_null"}]},
                    {"member": "events", "op": "gte", "value": 2}],
        # Cube's default order: the first measure descending (then ours: the dimensions)
        "order": ["-events", "region", "note"]}, tenant=2).json()["data"]
    assert result["total"] == len(expected)
    assert [(r["events.region"], r["events.note"], r["events.events"])
            for r in result["data"]] == [(r["region"], r["note"], str(r["events"]))
                                         for r in expected[1:4]]
    assert any(r["note"] is None for r in expected)  # notEquals keeps nulls, as Cube does


def test_row_level_security_follows_the_tokens_claim(client: Any) -> None:
    query = {"measures": ["events.events"], "dimensions": ["events.tenant_id"]}
    assert [r["events.tenant_id"] for r in load(client, query, 1).json()["results"][0]["data"]] \
        == ["1"]
    both = load(client, query, [1, 2]).json()["results"][0]["data"]
    assert sorted(r["events.tenant_id"] for r in both) == ["1", "2"]
    whole = ours(client, {"measures": ["events"]}, [1, 2]).json()["data"][0]["events"]
    assert sum(int(r["events.events"]) for r in both) == whole


def test_refusals_are_in_cubes_shape_with_the_request_id(client: Any) -> None:
    missing = client.get("/cubejs-api/v1/load", params={"query": "{}"})
    assert missing.status_code == 403
    assert isinstance(missing.json()["error"], str)
    assert missing.json()["requestId"] == missing.headers["x-request-id"]
    bad = load(client, {"measures": ["events.events"], "ungrouped": True})
    assert bad.status_code == 400
    assert bad.json()["type"] == "UserError" and "ungrouped" in bad.json()["error"]
    assert bad.json()["requestId"] == bad.headers["x-request-id"]
    for params in ({}, {"query": "{not json"}, {"query": "[1, 2]"}):
        answer = client.get("/cubejs-api/v1/load", params=params, headers=auth())
        assert answer.status_code == 400 and isinstance(answer.json()["error"], str), params
    body = client.post("/cubejs-api/v1/load", content=b"[", headers=auth())
    assert body.status_code == 400 and isinstance(body.json()["error"], str)
    # a pattern ClickHouse cannot read is refused before it gets there
    lone = load(client, {"measures": ["events.events"], "filters": [
        {"member": "events.region", "operator": "endsWith", "values": ["x\\"]}]})
    assert lone.status_code == 400 and "backslash" in lone.json()["error"]
    unknown = load(client, {"measures": ["events.event"]})
    assert "did you mean 'events.events'" in unknown.json()["error"]


def test_meta_dry_run_and_sql(client: Any) -> None:
    meta = client.get("/cubejs-api/v1/meta", headers=auth())
    (cube,) = meta.json()["cubes"]
    assert {m["name"] for m in cube["measures"]} == {
        "events.events", "events.revenue", "events.avg_amount", "events.revenue_per_event",
        "events.events_3d"}
    query = {"measures": ["events.revenue"],
             "timeDimensions": [{"dimension": "events.ts", "granularity": "month",
                                 "dateRange": "from 2026-01-01 to 2026-01-31"}]}
    for method in ("get", "post"):
        if method == "get":
            dry = client.get("/cubejs-api/v1/dry-run", params={"query": json.dumps(query)},
                             headers=auth())
        else:
            dry = client.post("/cubejs-api/v1/dry-run", json={"query": query}, headers=auth())
        assert dry.status_code == 200, dry.text
        body = dry.json()
        assert body["queryType"] == "regularQuery"
        assert body["queryOrder"] == [{"events.ts": "asc"}]
        assert body["normalizedQueries"][0]["timeDimensions"][0]["dateRange"] == [
            "2026-01-01T00:00:00.000", "2026-01-31T23:59:59.999"]
        assert body["transformedQueries"][0]["rollup"] == "by_tenant_region_day"
    sql = client.post("/cubejs-api/v1/sql", json={"query": query}, headers=auth()).json()["sql"]
    text, parameters = sql["sql"]
    # the tenant's restriction is bound as a parameter of the SQL, as every value is
    assert "tenant_id IN {p0: Array(UInt32)}" in text and parameters[0] == [1]
    assert sql["parameters"]["p0"] == [1]
    assert sql["preAggregations"][0]["preAggregationId"] == "events.by_tenant_region_day"


@pytest.mark.parametrize(("cube_filter", "where"), [
    ({"member": "events.region", "operator": "contains", "values": ["S"]},
     "region ILIKE '%S%'"),
    ({"member": "events.region", "operator": "startsWith", "values": ["E", "u"]},
     "region ILIKE 'E%' OR region ILIKE 'u%'"),
    ({"member": "events.region", "operator": "endsWith", "values": ["A"]}, "region ILIKE '%A'"),
    ({"member": "events.note", "operator": "notContains", "values": ["n1", "N2"]},
     "(note NOT ILIKE '%n1%' AND note NOT ILIKE '%N2%') OR note IS NULL"),
    ({"member": "events.note", "operator": "notStartsWith", "values": ["n"]},
     "note NOT ILIKE 'n%' OR note IS NULL"),
    ({"member": "events.note", "operator": "contains", "values": ["_"]},
     "note ILIKE '%\\\\_%'"),
    ({"member": "events.note", "operator": "notEquals", "values": ["n1"]},
     "note <> 'n1' OR note IS NULL"),
    ({"member": "events.note", "operator": "notIn", "values": ["n1", "n2"]},
     "note NOT IN ('n1', 'n2') OR note IS NULL"),
])
def test_filters_select_the_rows_cubes_sql_selects(client: Any, cube_model: Model,
                                                    warehouse: Warehouse,
                                                    cube_filter: dict[str, Any],
                                                    where: str) -> None:
    """Each operator against the SQL Cube's ClickHouse dialect writes for it (BaseFilter)."""
    answer = load(client, {"measures": ["events.events"], "filters": [cube_filter]})
    assert answer.status_code == 200, answer.text
    (row,) = answer.json()["results"][0]["data"]
    table = cube_model.sources[0].table
    statement = parse_one(f"SELECT count() FROM {table} WHERE tenant_id = 1 AND ({where})",
                          dialect="clickhouse")
    assert isinstance(statement, exp.Query)
    expected = int(warehouse.query(statement).rows[0][0])
    assert int(row["events.events"]) == expected


def test_v1_query_takes_ilike_too(client: Any) -> None:
    """The operators under Cube's string filters are ours as well."""
    cube = load(client, {"measures": ["events.events"], "filters": [
        {"member": "events.region", "operator": "notStartsWith", "values": ["A"]}]})
    (row,) = cube.json()["results"][0]["data"]
    (mine,) = ours(client, {"measures": ["events"], "filters": [
        {"member": "region", "op": "not_ilike", "value": "A%"}]}).json()["data"]
    everything = ours(client, {"measures": ["events"]}).json()["data"][0]["events"]
    assert 0 < mine["events"] < everything and row["events.events"] == str(mine["events"])
    refused = client.post("/v1/query", json={"measures": ["events"], "filters": [
        {"member": "events", "op": "ilike", "value": "1%"}]},
        headers=auth(bearer=True))
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "filters[0].op"


def test_compare_date_range_and_blending(client: Any) -> None:
    query = {"measures": ["events.events"],
             "timeDimensions": [{"dimension": "events.ts", "granularity": "day",
                                 "compareDateRange": [["2026-01-01", "2026-01-02"],
                                                      ["2026-01-05", "2026-01-06"]]}]}
    body = load(client, query).json()
    assert body["queryType"] == "compareDateRangeQuery"
    assert body["pivotQuery"]["dimensions"] == ["compareDateRange"]
    first, second = body["results"]
    days = {r["ts"]: r["events"] for r in ours(client, {
        "measures": ["events"], "grain": "day",
        "time_range": {"from": "2026-01-01", "to": "2026-01-07"}}).json()["data"]}
    assert [(r["events.ts.day"][:10], r["events.events"]) for r in second["data"]] == [
        (day, str(days[day])) for day in ("2026-01-05", "2026-01-06")]
    assert {r["compareDateRange"] for r in first["data"]} == {
        "2026-01-01T00:00:00.000 - 2026-01-02T23:59:59.999"}
    # Cube refuses such a request from a client that does not ask for several results
    refused = load(client, query, multi=False)
    assert refused.status_code == 400 and "compareDateRangeQuery" in refused.json()["error"]
    blend = load(client, [
        {"measures": ["events.events"], "timeDimensions": [{"dimension": "events.ts",
                                                            "granularity": "month"}]},
        {"measures": ["events.revenue"], "timeDimensions": [{"dimension": "events.ts",
                                                             "granularity": "month"}]}]).json()
    assert blend["queryType"] == "blendingQuery"
    assert [r["time.month"] for res in blend["results"] for r in res["data"]] == [
        "2026-01-01T00:00:00.000"] * 2


def test_an_unavailable_warehouse_is_a_503_in_cubes_shape() -> None:
    with refusing_port() as port, outage_client(port) as client:
        for path in ("/cubejs-api/v1/load", "/cubejs-api/v1/meta"):
            answer = client.get(path, params={"query": json.dumps({"measures": ["events.n"]})})
            assert answer.status_code == 503, answer.text
            assert answer.headers["retry-after"]
            body = answer.json()
            assert body["error"] == "the warehouse is unavailable; try again shortly"
            assert not any(text in answer.text for text in DRIVER_TEXT)


def test_a_key_limited_to_some_members_sees_and_queries_only_those(cube_model: Model,
                                                                  warehouse: Warehouse) -> None:
    key, key_id, key_hash = new_key()
    stored = StoredKey(key_id, key_hash, frozenset({"read"}),
                       Access.of({"tenant": 1}, ["events", "region"]))
    with TestClient(base_url=LOOPBACK, app=create_app(cube_model, warehouse,
                                   access=AccessSettings(keys=(stored,)))) as limited:
        (cube,) = limited.get("/cubejs-api/v1/meta", headers={"Authorization": key}).json()[
            "cubes"]
        assert [m["name"] for m in cube["measures"]] == ["events.events"]
        assert {d["name"] for d in cube["dimensions"]} == {"events.region", "events.ts"}
        refused = load(limited, {"measures": ["events.revenue"]}, key=key)
        assert refused.status_code == 403
        assert refused.json()["error"] == "this credential may not read 'revenue'"


#: the probe's 500s: the last supported day on every date form Cube has
EXTREME_DATES: list[tuple[str, dict[str, Any]]] = [
    ("dateRange", {"timeDimensions": [{"dimension": "events.ts", "dateRange": "9999-12-31"}]}),
    ("dateRange", {"timeDimensions": [{"dimension": "events.ts",
                                       "dateRange": ["2026-01-01", "9999-12-31"]}]}),
    ("dateRange", {"timeDimensions": [{"dimension": "events.ts",
                                       "dateRange": ["9999-12-31", "9999-12-31"]}]}),
    ("dateRange", {"timeDimensions": [{"dimension": "events.ts",
                                       "dateRange": ["2026-01-01", "9999-12-31T23:59:59.999"]}]}),
    ("dateRange", {"timeDimensions": [{"dimension": "events.ts",
                                       "dateRange": "from 2026-01-01 to 9999-12-31"}]}),
    ("dateRange", {"timeDimensions": [{"dimension": "events.ts",
                                       "dateRange": "next 999999 years"}]}),
    ("dateRange", {"timeDimensions": [{"dimension": "events.ts",
                                       "dateRange": "last 999999 years"}]}),
    *[("values", {"filters": [{"member": "events.ts", "operator": operator,
                               "values": ["9999-12-31"]}]})
      for operator in ("afterDate", "beforeOrOnDate", "inDateRange", "onTheDate")],
    ("values", {"filters": [{"member": "events.ts", "operator": "inDateRange",
                             "values": ["2026-01-01", "9999-12-31"]}]}),
]


@pytest.mark.parametrize("route", ["load", "sql", "dry-run"])
def test_extreme_dates_are_a_400_naming_the_field_on_every_route(client: Any,
                                                                 route: str) -> None:
    for field, extra in EXTREME_DATES:
        query = {"measures": ["events.events"], **extra}
        answer = client.get(f"/cubejs-api/v1/{route}", params={"query": json.dumps(query)},
                            headers=auth())
        assert answer.status_code == 400, (route, extra, answer.text)
        error = answer.json()
        assert field in error["field"] and "supported years 1 to 9999" in error["error"], error


@pytest.mark.parametrize("route", ["load", "sql", "dry-run"])
def test_extreme_dates_that_only_start_a_range_never_fail_the_server(client: Any,
                                                                    route: str) -> None:
    """``beforeDate`` and ``afterOrOnDate`` need only where a day starts: at 9999-12-31 or
    0001-01-01 they are answered, or refused as the query API refuses a range beyond what the
    time column holds (a 400 naming the field), never a 500."""
    for operator in ("beforeDate", "afterOrOnDate"):
        for day in ("9999-12-31", "0001-01-01", "9999-12-31T23:59:59.999"):
            query = {"measures": ["events.events"], "filters": [
                {"member": "events.ts", "operator": operator, "values": [day]}]}
            answer = client.get(f"/cubejs-api/v1/{route}", params={"query": json.dumps(query)},
                                headers=auth([1, 2]))
            assert answer.status_code in (200, 400), (route, operator, day, answer.text)
            if answer.status_code == 400:
                assert answer.json()["field"].startswith(("time_range", "filters")), answer.text


def test_sql_and_dry_run_show_a_tenant_no_whole_table_figure(client: Any) -> None:
    """Rollup sizes and the planner's estimates are over every tenant's rows."""
    query = json.dumps({"measures": ["events.events"], "dimensions": ["events.region"]})
    sql = client.get("/cubejs-api/v1/sql", params={"query": query}, headers=auth())
    dry = client.get("/cubejs-api/v1/dry-run", params={"query": query}, headers=auth())
    assert sql.status_code == dry.status_code == 200
    explained = [sql.json()["sql"]["routing"], *dry.json()["transformedQueries"]]
    for routing in explained:
        assert routing["candidates"], routing
        for candidate in routing["candidates"]:
            assert [candidate[k] for k in ("rows", "bytes", "read_bytes", "estimated_ms")] == [
                None] * 4, candidate
