"""The MCP tools over a star schema: the listings name joined dimensions (``airline.name``),
group them by the joins they are reached through and list each source's joins; queries and
``dimension_values`` take them as the HTTP API does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from server.warehouse.statements import Warehouse
from tests.support import STAR_DIMENSIONS, create_star, fresh_database, serving

ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
JOINS = [
    {"name": "airline", "source": "airlines", "keys": {"carrier": "carrier"},
     "relationship": "many_to_one"},
    {"name": "origin_airport", "source": "airports", "keys": {"origin": "faa"},
     "relationship": "many_to_one"},
    {"name": "dest_airport", "source": "airports", "keys": {"dest": "faa"},
     "relationship": "many_to_one"},
    {"name": "plane", "source": "planes", "keys": {"tailnum": "tailnum"},
     "relationship": "many_to_one"}]


@pytest.fixture(scope="module")
def client(warehouse: Warehouse) -> Iterator[TestClient]:  # type: ignore[type-arg]
    with fresh_database(warehouse, "mcp_star") as database:
        model = create_star(warehouse, database)
        with serving(warehouse, model) as served:
            yield served


def _rpc(client: TestClient, method: str,  # type: ignore[type-arg]
         params: dict[str, Any]) -> dict[str, Any]:
    answer = client.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": method,
                                       "params": params}, headers=ACCEPT)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()["result"]
    return result


def _call(client: TestClient, tool: str,  # type: ignore[type-arg]
          arguments: dict[str, Any]) -> tuple[dict[str, Any], str]:
    result = _rpc(client, "tools/call", {"name": tool, "arguments": arguments})
    assert not result.get("isError"), result
    return result["structuredContent"], result["content"][0]["text"]


def test_tool_descriptions_say_how_joined_dimensions_are_named(
        client: TestClient) -> None:  # type: ignore[type-arg]
    tools = {t["name"]: t for t in _rpc(client, "tools/list", {})["tools"]}
    for name in ("list_sources", "list_members", "run_query", "dimension_values"):
        assert "airline.name" in tools[name]["description"], name
    assert "<join>.<dimension>" in tools["list_members"]["description"]


def test_list_sources_names_joined_dimensions_and_groups_them_by_join(
        client: TestClient) -> None:  # type: ignore[type-arg]
    structured, text = _call(client, "list_sources", {})
    flights = next(s for s in structured["sources"] if s["name"] == "flights")
    assert flights["dimensions"] == STAR_DIMENSIONS
    assert flights["joins"] == JOINS
    assert next(s for s in structured["sources"] if s["name"] == "airlines")["joins"] == []
    shown = text[text.index("flights (table"):].splitlines()
    assert shown[1:7] == [
        "  dimensions: carrier, origin, dest, tailnum",
        "  dimensions through airline: airline.carrier, airline.name",
        "  dimensions through origin_airport: origin_airport.name, origin_airport.tz",
        "  dimensions through dest_airport: dest_airport.name, dest_airport.tz",
        "  dimensions through plane: plane.model, plane.seats, plane.maker_id",
        "  dimensions through plane.maker: plane.maker.country"]
    assert shown[-1] == ("  joins: airline -> airlines (carrier = carrier), origin_airport -> "
                         "airports (origin = faa), dest_airport -> airports (dest = faa), "
                         "plane -> planes (tailnum = tailnum)")


def test_list_members_marks_each_joined_dimension_with_its_path_and_source(
        client: TestClient) -> None:  # type: ignore[type-arg]
    structured, text = _call(client, "list_members", {"source": "flights",
                                                      "kind": "dimensions"})
    dimensions = {d["name"]: d for d in structured["dimensions"]}
    assert dimensions["origin"] == {"name": "origin", "type": "String", "description": "",
                                    "path": [], "source": "flights"}
    assert dimensions["airline.name"] == {
        "name": "airline.name", "type": "Nullable(String)",
        "description": "The airline's full name.", "path": ["airline"], "source": "airlines"}
    assert dimensions["plane.maker.country"]["path"] == ["plane", "maker"]
    assert structured["joins"] == JOINS
    lines = text.splitlines()
    start = lines.index("dimensions through join airline (source airlines):")
    assert lines[start - 5:start + 3] == [
        "dimensions:", "  carrier (String)", "  origin (String)",
        "  dest (String): The key of join 'dest_airport'.",
        "  tailnum (String): The key of join 'plane'.",
        "dimensions through join airline (source airlines):",
        "  airline.carrier (Nullable(String))",
        "  airline.name (Nullable(String)): The airline's full name."]
    start = lines.index("dimensions through joins plane.maker (source makers):")
    assert lines[start + 1] == "  plane.maker.country (Nullable(String))"
    assert "measures:" not in lines
    measures, text = _call(client, "list_members", {"source": "flights", "kind": "measures"})
    assert "joins" not in measures and "joins:" not in text


def test_queries_and_values_take_joined_dimensions(
        client: TestClient) -> None:  # type: ignore[type-arg]
    values, text = _call(client, "dimension_values", {"source": "flights",
                                                      "dimension": "plane.maker.country"})
    assert values["values"] == ["France", "USA", None]
    assert text.splitlines()[1:] == ["  France", "  USA", "  null"]
    answer, _ = _call(client, "run_query", {
        "source": "flights", "measures": ["flights", "seats_flown"],
        "dimensions": ["origin_airport.name"],
        "filters": [{"member": "airline.name", "op": "eq", "value": "American"}]})
    assert answer["data"] == [{"origin_airport.name": "Kennedy", "flights": 2, "seats_flown": 340},
                              {"origin_airport.name": "LaGuardia", "flights": 1,
                               "seats_flown": 150}]
    assert answer["served_from"].startswith("rollup by_airline_day ")
