"""Bad and hostile query requests: each is a 4xx in the one error shape naming the field, or a
correct answer; never a 5xx. The reproductions measured against the first release are here."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlglot import parse_one

from semantic import load_model_text
from server.app import create_app
from server.settings import load_limits
from server.warehouse.statements import Warehouse
from tests.server.conftest import TYPED_MODEL, Served, raw_count
from tests.support import (
    EVENTS_HEAD,
    LOOPBACK,
    assert_error,
    fresh_database,
    insert_rows,
    model_text,
)


def post(served: Served, **body: object) -> Any:
    return served.client.post("/v1/query", json={"measures": ["events"], **body})


def test_query_huge_offset_is_400(served: Served) -> None:
    assert_error(post(served, offset=10**20), 400, "offset")
    assert_error(post(served, offset=1e20), 400, "offset")
    for offset in ("1e20", str(10**20), "9" * 5000):
        response = served.client.get("/api/by-region", params={"offset": offset})
        assert_error(response, 400, "offset")
    assert post(served, offset=1_000_000).json()["data"] == []


@pytest.mark.parametrize("op", ["in", "not_in"])
def test_query_numbers_in_string_list_are_400(served: Served, op: str) -> None:
    response = post(served, filters=[{"member": "region", "op": op, "value": ["us", 5]}])
    error = assert_error(response, 400, "filters[0].value")
    assert "expected a string" in error["message"] and "item 1" in error["message"]


def test_query_number_for_string_dimension_is_400_not_empty(served: Served) -> None:
    error = assert_error(post(served, filters=[{"member": "region", "value": 5}]), 400,
                         "filters[0].value")
    assert "'region'" in error["message"]


def test_query_values_read_as_their_column_type(served: Served) -> None:
    def count(**filter_: object) -> int:
        response = post(served, filters=[filter_])
        assert response.status_code == 200, response.text
        return int(response.json()["data"][0]["events"])

    assert count(member="level", value="255") == 1 == count(member="level", value=255)
    assert count(member="price", op="gt", value="1") == 2
    assert count(member="day", value="2026-01-01") == 2
    assert count(member="id", value="00000000-0000-0000-0000-000000000003") == 1
    for bad, field in (({"member": "level", "value": 256}, "filters[0].value"),
                       ({"member": "level", "value": -1}, "filters[0].value"),
                       ({"member": "level", "value": 1.5}, "filters[0].value"),
                       ({"member": "price", "value": "x"}, "filters[0].value"),
                       ({"member": "day", "value": "2026-02-30"}, "filters[0].value"),
                       ({"member": "day", "value": "0001-01-01"}, "filters[0].value"),
                       ({"member": "id", "value": "not-a-uuid"}, "filters[0].value"),
                       ({"member": "events", "op": "gt", "value": 10**400}, "filters[0].value"),
                       ({"member": "region", "value": True}, "filters[0].value")):
        assert_error(post(served, filters=[bad]), 400, field)


def test_query_time_range_year_one_start_is_no_bound(served: Served) -> None:
    everything = post(served).json()["data"]
    for start in ("0001-01-01T00:30", "0001-01-01", "1969-12-31T23:59:59Z"):
        response = post(served, time_range={"from": start})
        assert response.status_code == 200, response.text
        assert response.json()["data"] == everything == [{"events": raw_count(served)}]


def test_query_time_range_outside_column_is_400(served: Served) -> None:
    assert_error(post(served, dimensions=["ts"], grain="hour",
                      time_range={"to": "0001-01-02"}), 400, "time_range.to")
    assert_error(post(served, time_range={"from": "0001-01-01T00:30", "to": "0001-01-02"}),
                 400, "time_range.to")
    assert_error(post(served, time_range={"to": "9999-12-31T23:59"}), 400, "time_range.to")
    assert_error(post(served, time_range={"from": "9999-12-31T23:00"},
                      timezone="Pacific/Kiritimati"), 400, "time_range.from")
    response = served.client.get("/api/by-region", params={
        "from": "9999-12-31T23:00", "timezone": "Pacific/Kiritimati"})
    assert_error(response, 400, "from")
    assert_error(served.client.get("/api/by-region", params={"to": "0001-01-02"}), 400, "to")


def test_query_time_range_at_column_edges_answers(served: Served) -> None:
    for time_range in ({"from": "1970-01-01", "to": "2106-01-01"},
                       {"from": "2105-12-31T23:00", "to": "2106-01-01"},
                       {"from": "1970-01-01T00:00", "to": "1970-01-01T01:00"}):
        for grain in ("hour", "day", "year"):
            response = post(served, dimensions=["ts", "region"], grain=grain,
                            time_range=time_range, timezone="Pacific/Kiritimati")
            assert response.status_code == 200, (time_range, grain, response.text)


def _nested(depth: int) -> bytes:
    """A body whose one filter is ``depth`` ``and`` groups deep (as text: Python's own JSON
    encoder recurses too deep for the deepest)."""
    other = '{"member": "region", "op": "ne", "value": "x"}'
    return ('{"measures": ["events"], "filters": [' + '{"and": [' * depth +
            '{"member": "region", "value": "us"}' + f", {other}]}}" * depth + "]}").encode()


def test_query_deep_nesting_is_400_the_first_and_second_time(served: Served) -> None:
    ok = served.client.post("/v1/query", content=_nested(8))
    assert ok.status_code == 200 and ok.json()["data"] == [{"events": 2}]
    again = served.client.post("/v1/query", content=_nested(8))  # from the plan cache
    assert again.json()["data"] == ok.json()["data"]
    for depth in (9, 248, 490, 5000):
        for _ in range(2):
            response = served.client.post("/v1/query", content=_nested(depth))
            assert response.status_code == 400, (depth, response.text)
            assert response.json()["error"]["field"] in ("filters[0]" + ".and[0]" * 8, "body")


def test_query_many_filters_answer_or_400(served: Served) -> None:
    filters = [{"member": "region", "op": "ne", "value": f"r{i}"} for i in range(200)]
    response = post(served, filters=filters)
    assert response.status_code == 200, response.text
    assert response.json()["data"] == [{"events": raw_count(served)}]
    assert_error(post(served, filters=filters + filters), 400, "filters")
    many = [{"member": "region", "value": [f"r{i}" for i in range(10_001)]}]
    assert_error(post(served, filters=many), 400, "filters[0].value")


def test_query_duplicate_order_is_400(served: Served) -> None:
    assert_error(post(served, dimensions=["region"], order=["region"] * 1000), 400, "order")
    assert_error(post(served, dimensions=["region"], order=["region", "-region"]), 400,
                 "order[1]")


def test_query_limits_are_settings(warehouse: Warehouse, served: Served) -> None:
    model = load_model_text(model_text(TYPED_MODEL, db=served.database), "test.yaml")
    limits = load_limits({"SEMANTIC_MAX_FILTERS": "2", "SEMANTIC_MAX_MEMBERS": "3",
                                  "SEMANTIC_MAX_QUERY_BODY_BYTES": "200",
                                  "SEMANTIC_MAX_ROWS": "5"})
    with TestClient(base_url=LOOPBACK, app=create_app(model, warehouse, limits=limits)) as client:
        three = [{"member": "region", "op": "ne", "value": "x"}] * 3
        body: dict[str, Any] = {"measures": ["events"]}
        assert_error(client.post("/v1/query", json={**body, "filters": three}), 400, "filters")
        assert_error(client.post("/v1/query", json={**body, "dimensions": ["region", "level",
                                                                           "plan"]}),
                     400, "dimensions")
        assert_error(client.post("/v1/query", json={**body, "limit": 6}), 400, "limit")
        assert_error(client.get("/api/by-region", params={"limit": "6"}), 400, "limit")
        assert_error(client.post("/v1/query", json={**body, "source": "x" * 300}), 413, None,
                     "body_too_large")
        assert client.post("/v1/query", json=body).status_code == 200


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (b'{"measures": ["events"], "dimension": ["region"]}', "dimension",
         "did you mean 'dimensions'"),
        (b'{"measures": "events"}', "measures", "must be a list of names, got a string"),
        (b'{"measures": ["events", 5]}', "measures[1]", "must be a name (a string)"),
        (b'{"measures": ["events"], "limit": "10"}', "limit", "must be an integer"),
        (b'{"measures": ["events"], "time_range": {"form": "2026-01-01"}}', "time_range.form",
         "did you mean 'from'"),
        (b'{"measures": ["events"], "order": [{"member": "events", "directon": "asc"}]}',
         "order[0].directon", "did you mean 'direction'"),
        (b'{"measures": ["events"], "filters": [{"member": "region", "valeu": 1}]}',
         "filters[0].valeu", "did you mean 'value'"),
        (b'[1, 2]', "body", "must be a JSON object"),
        (b'{"measures": [1e400]}', "body", "too large"),
        (b'{"measures": ["\\ud800"]}', "body", "not valid JSON"),
        (b"[" * 100_000, "body", "nested too deeply"),
        (b'{"measures": ["events"', "body", "not valid JSON"),
        (b"[" * 5_000 + b"]" * 5_000, "body", "nested too deeply"),
        (b'{"measures": ["' + b"x" * 500_000 + b'"]}', "measures[0]", "unknown measure"),
    ],
)
def test_query_malformed_bodies_in_our_words(served: Served, body: bytes, field: str,
                                             words: str) -> None:
    response = served.client.post("/v1/query", content=body)
    error = assert_error(response, 400, field)
    assert words in error["message"], error
    assert "msgspec" not in error["message"] and "`" not in error["message"]


def test_query_framework_errors_share_the_shape(served: Served) -> None:
    assert_error(served.client.get("/nothing/" + "x" * 10_000), 404, "path", "not_found")
    assert_error(served.client.delete("/v1/query"), 405, None, "method_not_allowed")
    assert_error(served.client.put("/v1/meta"), 405, None, "method_not_allowed")
    big = b'{"measures": ["' + b"x" * (2 * 1024 * 1024) + b'"]}'
    assert_error(served.client.post("/v1/query", content=big), 413, None, "body_too_large")
    assert_error(served.client.get("/api/totals", params={"regoin": "us"}), 400, "regoin")


TRAP_MODEL = EVENTS_HEAD + """\
    dimensions:
      region: {{}}
      trap: {{sql: "throwIf(region = 'eu', 'secret trap')"}}
    measures:
      events: {{agg: count}}
"""


def test_query_server_errors_are_logged_not_echoed(warehouse: Warehouse,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    # 'trap' throws inside ClickHouse on the rows of 'eu': a real engine error. The table is
    # empty while the model is validated (validation evaluates every expression on a sample
    # and would refuse it), and gets its 'eu' row once the server runs.
    with fresh_database(warehouse, "trap") as database:
        warehouse.command(parse_one(f"CREATE TABLE {database}.events (ts DateTime, "
                                    "region String) ENGINE = MergeTree ORDER BY ts",
                                    dialect="clickhouse"))
        model = load_model_text(model_text(TRAP_MODEL, db=database), "test.yaml")
        with TestClient(base_url=LOOPBACK, app=create_app(model, warehouse)) as client:
            client.app.state.semantic.runtime()  # compiled (in the background) before the row
            insert_rows(warehouse, f"{database}.events", [("2026-01-01 00:00:00", "eu")])
            with caplog.at_level(logging.WARNING):
                response = client.post("/v1/query", json={
                    "measures": ["events"], "dimensions": ["trap"],
                    "filters": [{"member": "region", "value": "eu"}]})
    error = assert_error(response, 502, None, "warehouse_error")
    assert "DB::Exception" not in response.text and "secret" not in response.text
    assert "p0" not in response.text and "Code:" not in response.text
    logged = [r.getMessage() for r in caplog.records if error["request_id"] in r.getMessage()]
    assert logged and "secret trap" in logged[0]
