"""Joined dimensions in the service layer: ``/v1/meta`` (compiled, and as validated when the
warehouse was never reached) lists each source's primary key, joins and joined dimensions; a
narrow credential sees only the joins its members go through; the values API and generated
endpoints take joined dimensions (``airline.name``) as they take a source's own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from engine.query.security import Access
from semantic import Model
from server.service.meta_access import meta_for
from server.service.model_outline import model_outline
from server.warehouse.statements import Warehouse
from tests.support import STAR_DIMENSIONS, assert_error, create_star, fresh_database, serving

#: flights' joined dimensions, in the order meta lists them (after its own four)
JOINED = STAR_DIMENSIONS[4:]


@pytest.fixture(scope="module")
def star(warehouse: Warehouse) -> Iterator[tuple[Model, TestClient]]:  # type: ignore[type-arg]
    with fresh_database(warehouse, "star") as database:
        model = create_star(warehouse, database)
        with serving(warehouse, model) as client:
            yield model, client


def _source(meta: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in meta["sources"] if s["name"] == name)


def _by_name(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in items}


def test_meta_lists_joins_primary_keys_and_joined_dimensions(
        star: tuple[Model, TestClient]) -> None:  # type: ignore[type-arg]
    _, client = star
    answer = client.get("/v1/meta")
    assert answer.status_code == 200, answer.text
    meta = answer.json()
    flights = _source(meta, "flights")
    assert flights["primary_key"] == []
    assert flights["joins"] == [
        {"name": "airline", "source": "airlines", "keys": {"carrier": "carrier"},
         "relationship": "many_to_one"},
        {"name": "origin_airport", "source": "airports", "keys": {"origin": "faa"},
         "relationship": "many_to_one"},
        {"name": "dest_airport", "source": "airports", "keys": {"dest": "faa"},
         "relationship": "many_to_one"},
        {"name": "plane", "source": "planes", "keys": {"tailnum": "tailnum"},
         "relationship": "many_to_one"}]
    assert [d["name"] for d in flights["dimensions"]] == ["carrier", "origin", "dest",
                                                           "tailnum", *JOINED]
    dimensions = _by_name(flights["dimensions"])
    assert dimensions["carrier"] == {"name": "carrier", "type": "String", "sql": "carrier",
                                     "description": "", "path": [], "source": "flights"}
    # a joined dimension: Nullable (a flight without a match has none), its SQL and
    # description as the source declaring it has them, and the joins it is reached through
    assert dimensions["airline.name"] == {
        "name": "airline.name", "type": "Nullable(String)", "sql": "name",
        "description": "The airline's full name.", "path": ["airline"], "source": "airlines"}
    assert dimensions["plane.maker.country"] == {
        "name": "plane.maker.country", "type": "Nullable(String)", "sql": "country",
        "description": "", "path": ["plane", "maker"], "source": "makers"}
    assert dimensions["plane.seats"]["type"] == "Nullable(UInt16)"
    measures = _by_name(flights["measures"])
    assert (measures["seats_flown"]["sql"], measures["seats_flown"]["joins"]) == (
        "plane.seats", ["plane"])
    assert measures["flights"]["joins"] == []
    rollup = flights["rollups"][0]
    assert (rollup["dimensions"], rollup["join_keys"]) == (["airline.name", "origin"],
                                                           ["carrier"])
    planes = _source(meta, "planes")
    assert (planes["primary_key"], planes["joins"]) == (["tailnum"], [
        {"name": "maker", "source": "makers", "keys": {"maker_id": "id"},
         "relationship": "many_to_one"}])
    assert [d["name"] for d in planes["dimensions"]] == ["model", "seats", "maker_id",
                                                         "maker.country"]
    assert _source(meta, "airlines")["primary_key"] == ["carrier"]


def test_meta_as_validated_has_the_same_joins_and_joined_dimensions(
        star: tuple[Model, TestClient]) -> None:  # type: ignore[type-arg]
    model, client = star
    compiled = _source(client.get("/v1/meta").json(), "flights")
    outline = model_outline(model, "ClickHouse is unreachable")
    flights = _source(outline, "flights")
    assert outline["compiled"] is False
    assert (flights["primary_key"], flights["joins"]) == (compiled["primary_key"],
                                                          compiled["joins"])
    for validated, typed in zip(flights["dimensions"], compiled["dimensions"], strict=True):
        assert validated == {**typed, "type": None}
    # which joins a measure reads is known once its SQL is compiled
    assert [m["joins"] for m in flights["measures"]] == [None, None]
    assert flights["rollups"][0]["dimensions"] == ["airline.name", "origin"]
    assert flights["rollups"][0]["join_keys"] is None


def test_meta_shows_a_narrow_credential_only_the_joins_its_members_go_through(
        star: tuple[Model, TestClient]) -> None:  # type: ignore[type-arg]
    _, client = star
    meta = client.get("/v1/meta").json()
    shown = _source(meta_for(meta, Access(members=frozenset({"flights", "airline.name",
                                                             "origin"}))), "flights")
    assert [d["name"] for d in shown["dimensions"]] == ["origin", "airline.name"]
    assert [j["name"] for j in shown["joins"]] == ["airline"]
    assert shown["rollups"][0]["dimensions"] == ["airline.name", "origin"]
    # a measure over a joined column needs its join
    shown = _source(meta_for(meta, Access(members=frozenset({"seats_flown"}))), "flights")
    assert ([d["name"] for d in shown["dimensions"]], [j["name"] for j in shown["joins"]]) == (
        [], ["plane"])
    # two hops: the first join is the source's own
    shown = _source(meta_for(meta, Access(members=frozenset({"plane.maker.country"}))),
                    "flights")
    assert [j["name"] for j in shown["joins"]] == ["plane"]


def test_values_of_a_joined_dimension(star: tuple[Model, TestClient]) -> None:  # type: ignore[type-arg]
    _, client = star
    answer = client.get("/v1/sources/flights/dimensions/airline.name/values")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    # the names flights have (Delta flies nothing), and null for the carrier without an airline
    assert body["values"] == ["American", "United", None]
    assert body["truncated"] is False
    assert "flights_by_airline_day_" in body["table"]  # the rollup keeping the join key
    assert answer.headers["X-Semantic-Table"] == body["table"]
    two_hops = client.get("/v1/sources/flights/dimensions/plane.maker.country/values").json()
    assert two_hops["values"] == ["France", "USA", None]
    assert two_hops["table"].endswith(".flights")  # no rollup keeps the plane
    narrowed = client.get("/v1/sources/flights/dimensions/origin_airport.name/values",
                          params={"contains": "Guar", "limit": 5}).json()
    assert narrowed["values"] == ["LaGuardia"]
    limited = client.get("/v1/sources/flights/dimensions/dest_airport.name/values",
                         params={"limit": 2}).json()
    assert (limited["values"], limited["truncated"]) == (["Kennedy", "LaGuardia"], True)


def test_values_of_an_unknown_joined_dimension_say_what_is_known(
        star: tuple[Model, TestClient]) -> None:  # type: ignore[type-arg]
    _, client = star
    error = assert_error(client.get("/v1/sources/flights/dimensions/airline.nme/values"),
                         400, "dimension")
    assert "did you mean 'airline.name'?" in error["message"]
    assert "plane.maker.country" in error["message"]


def test_endpoints_filter_by_a_joined_dimension(
        star: tuple[Model, TestClient]) -> None:  # type: ignore[type-arg]
    _, client = star
    assert client.get("/api/by-airline").json() == [
        {"airline": "American", "n": 3, "seats": 490}, {"airline": "United", "n": 1, "seats": 160},
        {"airline": None, "n": 1, "seats": None}]
    answer = client.get("/api/by-airline", params={"airline.name": ["United", "Delta"]})
    assert answer.status_code == 200, answer.text
    assert answer.json() == [{"airline": "United", "n": 1, "seats": 160}]
    assert client.get("/api/by-airline?plane.maker.country=USA").json() == [
        {"airline": "United", "n": 1, "seats": 160}]
    error = assert_error(client.get("/api/by-airline?airline.nam=United"), 400, "airline.nam")
    assert "did you mean 'airline.name'?" in error["message"]
