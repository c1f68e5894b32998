"""MCP tool arguments are validated as ``/v1/query`` validates the same body: a ``limit`` of
NaN, Infinity or 1e999 (numbers JSON readers accept) is refused naming the field, never
replaced by the default; over stdio, the client backend refuses them before sending."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from server.mcp.backends import ClientBackend
from server.warehouse.statements import Warehouse
from tests.support import EVENTS_HEAD, fresh_database, served_events

MODEL = EVENTS_HEAD + """\
    dimensions:
      region: {{}}
    measures:
      events: {{agg: count}}
"""
ROWS = [("2026-01-01 10:00:00", "us"), ("2026-01-02 10:00:00", "eu")]
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
#: as the probe sent them: JSON tokens Python's and pydantic's readers take as floats
HOSTILE = ("NaN", "Infinity", "-Infinity", "1e999", "-1e999", "2.5")


@pytest.fixture(scope="module")
def client(warehouse: Warehouse) -> Iterator[TestClient]:  # type: ignore[type-arg]
    with fresh_database(warehouse, "mcp") as database, \
            served_events(warehouse, database, "ts DateTime, region String", MODEL,
                          ROWS) as served:
        yield served


def _call(client: TestClient, tool: str, arguments: dict[str, Any],  # type: ignore[type-arg]
          limit: str) -> Any:
    """A tool call whose ``limit`` is the raw JSON token ``limit``."""
    raw = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": tool, "arguments": {**arguments, "limit": "LIMIT"}}})
    raw = raw.replace('"LIMIT"', limit)
    answer = client.post("/mcp", content=raw.encode(), headers=ACCEPT)
    assert answer.status_code == 200, answer.text
    return answer.json()["result"]


@pytest.mark.parametrize("tool", ["run_query", "explain_query"])
def test_a_non_integer_limit_is_refused_as_v1_query_refuses_it(
        client: TestClient, tool: str) -> None:  # type: ignore[type-arg]
    for number in HOSTILE:
        result = _call(client, tool, {"measures": ["events"]}, number)
        assert result["isError"], (number, result)
        error = result["structuredContent"]["error"]
        assert error["field"] == "limit", (number, error)
        direct = client.post("/v1/query", content=b'{"measures": ["events"], "limit": 2.5}',
                             headers={"Content-Type": "application/json"})
        assert direct.status_code == 400
        assert (error["code"], error["message"]) == (direct.json()["error"]["code"],
                                                     direct.json()["error"]["message"])
    fine = _call(client, "run_query", {"measures": ["events"]}, "1")
    assert not fine["isError"] and fine["structuredContent"]["data"] == [{"events": 2}]


def test_dimension_values_refuses_them_too(client: TestClient) -> None:  # type: ignore[type-arg]
    for number in HOSTILE:
        result = _call(client, "dimension_values", {"dimension": "region"}, number)
        assert result["isError"], (number, result)
        assert result["structuredContent"]["error"]["field"] == "limit"


class _Unreachable:
    """A client that must not be called: the arguments are refused before sending."""

    def call(self, *args: object, **kwargs: object) -> dict[str, Any]:
        raise AssertionError("sent to the server")


@pytest.mark.parametrize("number", [float("nan"), float("inf"), -float("inf")])
def test_over_stdio_the_client_backend_refuses_them_naming_the_field(number: float) -> None:
    backend = ClientBackend(_Unreachable())  # type: ignore[arg-type]
    for body, field in (({"measures": ["events"], "limit": number}, "limit"),
                        ({"measures": ["events"], "filters": [
                            {"member": "events", "op": "gt", "value": number}]},
                         "filters[0].value")):
        with pytest.raises(Exception) as raised:
            asyncio.run(backend.query(body))
        assert getattr(raised.value, "field", None) == field, raised.value
        assert "finite" in str(getattr(raised.value, "message", raised.value))
    assert json.loads(json.dumps({"limit": 3}))  # finite numbers pass through as JSON


def test_run_query_compares_as_v1_query_does(client: TestClient) -> None:  # type: ignore[type-arg]
    body = {"measures": ["events"], "grain": "day", "compare": {"offset": "1 day"},
            "time_range": {"from": "2026-01-01", "to": "2026-01-03"}}
    result = _call(client, "run_query", body, "10")
    assert not result["isError"], result
    direct = client.post("/v1/query", json={**body, "limit": 10}).json()
    assert result["structuredContent"]["data"] == direct["data"] == [
        {"ts": "2026-01-01", "events": 1, "events__compare": 0, "events__change": 1,
         "events__change_ratio": None},
        {"ts": "2026-01-02", "events": 1, "events__compare": 1, "events__change": 0,
         "events__change_ratio": 0}]
