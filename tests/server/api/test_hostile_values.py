"""Hostile values in every place a request carries text: each round-trips as data (the answer
equals the one computed from the rows themselves) or is refused with a 4xx; never a 5xx, never
SQL in a response."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from tests.server.conftest import TYPED_ROWS, Served
from tests.support import assert_error

HOSTILE = [
    "'", "''", '"', "it's", "us' OR '1'='1", "x'); DROP TABLE events; --", "-- comment",
    "/* comment */ us", "\\", "\\'", "us\\", "{p0:String}", "{p0:Array(String)}", "{p1:UInt8}",
    "\x00", "us\x00", "\u202eus", "\u200fsu\u200e", "\ufeffus", "🙂", "ＵＳ", "%s", "${region}",
    "\n\r\t", "\x1b[31m", " us", "US", "x" * 1_000_000,
]
IDS = [repr(v)[:20] for v in HOSTILE]
#: region of each row, to count what a filter must match
REGIONS = [row[1] for row in TYPED_ROWS]


def _events(served: Served, **filter_: object) -> Any:
    return served.client.post("/v1/query", json={"measures": ["events"], "filters": [filter_]})


def _no_leak(response: Any) -> None:
    assert response.status_code < 500, response.text[:300]
    assert "SELECT" not in response.text and "DB::Exception" not in response.text


@pytest.mark.parametrize("value", HOSTILE, ids=IDS)
def test_hostile_filter_values_are_data(served: Served, value: str) -> None:
    expected = {
        "eq": sum(r == value for r in REGIONS), "ne": sum(r != value for r in REGIONS),
        "in": sum(r in (value, "us") for r in REGIONS),
        "contains": sum(value in r for r in REGIONS),
        "starts_with": sum(r.startswith(value) for r in REGIONS),
    }
    for op, count in expected.items():
        filter_value: object = [value, "us"] if op == "in" else value
        response = _events(served, member="region", op=op, value=filter_value)
        _no_leak(response)
        assert response.status_code == 200, (op, response.text[:300])
        assert response.json()["data"] == [{"events": count}], op


@pytest.mark.parametrize("value", HOSTILE, ids=IDS)
def test_hostile_endpoint_parameters_are_data_or_400(served: Served, value: str) -> None:
    value = value[:60_000]  # what fits in a URL
    rows = served.client.get("/api/by-region", params={"region": value})
    _no_leak(rows)
    assert rows.status_code == 200
    assert sum(r["n"] for r in rows.json()) == sum(r == value for r in REGIONS)
    for name in ("from", "to", "range", "timezone", "level", "day", "limit", "offset"):
        response = served.client.get("/api/by-region", params={name: value})
        _no_leak(response)
        assert_error(response, 400, name)
    if len(value) < 10_000 and "\x00" not in value:
        unknown = served.client.get("/api/by-region", params={value: "x"})
        _no_leak(unknown)
        assert unknown.status_code == 400


@pytest.mark.parametrize("value", HOSTILE, ids=IDS)
def test_hostile_names_are_400(served: Served, value: str) -> None:
    bodies: list[tuple[dict[str, Any], str]] = [
        ({"measures": [value]}, "measures[0]"),
        ({"measures": ["events"], "dimensions": [value]}, "dimensions[0]"),
        ({"measures": ["events"], "filters": [{"member": value, "value": "x"}]},
         "filters[0].member"),
        ({"measures": ["events"], "filters": [{"member": "region", "op": value, "value": "x"}]},
         "filters[0].op"),
        ({"measures": ["events"], "order": [value]}, "order[0]"),
        ({"measures": ["events"], "timezone": value}, "timezone"),
        ({"measures": ["events"], "source": value}, "source"),
        ({"measures": ["events"], "grain": value}, "grain"),
        ({"measures": ["events"], "time_range": value}, "time_range"),
        ({"measures": ["events"], "time_range": {"from": value}}, "time_range.from"),
    ]
    for body, field in bodies:
        response = served.client.post("/v1/query", json=body)
        _no_leak(response)
        error = assert_error(response, 400, field)
        assert len(error["message"]) < 1_000


def test_hostile_raw_bytes_are_400(served: Served) -> None:
    for body in (b'{"measures": ["\xff\xfe"]}', b'{"measures": ["\\ud800"]}', b"\x00",
                 b'{"measures": ["events"], "filters": [{"member": "region", "value": "\x00"}]}'):
        response = served.client.post("/v1/query", content=body)
        _no_leak(response)
        assert_error(response, 400, "body")
    weird = served.client.get("/api/by-region?region=%FF%FE&from=%ED%A0%80")
    _no_leak(weird)
    assert weird.status_code in (200, 400)


def test_hostile_large_plans_are_not_cached(served: Served) -> None:
    runtime = served.client.app.state.semantic.runtime()
    before = len(runtime._plans)
    big = _events(served, member="region", value="y" * 1_000_000)
    assert big.status_code == 200 and len(runtime._plans) == before
    small = _events(served, member="region", value="y" * 10)
    assert small.status_code == 200 and len(runtime._plans) > before


@pytest.mark.parametrize("value", HOSTILE, ids=IDS)
def test_hostile_values_api_is_data_or_4xx(served: Served, value: str) -> None:
    value = value[:60_000]  # what fits in a URL
    found = served.client.get("/v1/sources/events/dimensions/region/values",
                              params={"contains": value})
    _no_leak(found)
    if value:
        assert found.json()["values"] == sorted({r for r in REGIONS if value in r})
    named = served.client.get("/v1/sources/events/dimensions/region/values",
                              params={value: "x"} if "\x00" not in value else {"limit": value})
    _no_leak(named)
    assert named.status_code == 400
    dimension = served.client.get(f"/v1/sources/events/dimensions/{quote(value, safe='')}/values")
    _no_leak(dimension)
    assert dimension.status_code in (400, 404)
