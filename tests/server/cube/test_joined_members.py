"""Joined dimensions in the Cube API: ``airline.name`` of source ``flights`` is the member
``flights.airline__name`` of cube ``flights`` (dots of the path as ``__``), translated both
ways; Cube's meta marks where it comes from; a query mixing the dimension table's cube with
the fact cube is refused with the member names to use instead."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from litestar.testing import TestClient

from engine.model.compiled import CompiledModel
from engine.query.request import Filter, FilterGroup, Order, QueryError
from engine.query.security import Access
from semantic import Model, load_model_text
from server.auth.keys import StoredKey, new_key
from server.auth.settings import AccessSettings
from server.cube.members import Cubes
from server.cube.translate import translate_query
from server.runtime.compile import compile_against
from server.warehouse.statements import Warehouse
from tests.server.cube.conftest import NOW
from tests.support import (
    STAR_DIMENSIONS,
    STAR_MODEL,
    create_star,
    fresh_database,
    model_text,
    serving,
)

#: cube flights' dimensions as Cube names them
#: Cube names a path's dots "__"
FLIGHTS = [name.replace(".", "__") for name in STAR_DIMENSIONS]


@dataclass
class Star:
    warehouse: Warehouse
    database: str
    model: Model
    compiled: CompiledModel
    client: TestClient  # type: ignore[type-arg]


@pytest.fixture(scope="module")
def star(warehouse: Warehouse) -> Iterator[Star]:
    with fresh_database(warehouse, "cube_star") as database:
        model = create_star(warehouse, database)
        with serving(warehouse, model) as client:
            yield Star(warehouse, database, model, compile_against(model, warehouse), client)


def _load(client: Any, query: dict[str, Any]) -> Any:
    return client.get("/cubejs-api/v1/load", params={"query": json.dumps(query)})


def test_joined_dimensions_are_members_of_the_sources_cube(star: Star) -> None:
    cubes = Cubes(star.compiled.sources)
    flights = cubes.members["flights"]
    assert [m.name for m in flights.values() if m.kind == "dimension"] == FLIGHTS
    name = flights["airline__name"]
    assert (name.key, name.query_name, name.type, name.nullable) == (
        "flights.airline__name", "airline.name", "string", True)
    assert name.description == "The airline's full name."
    assert name.meta == {"join": "airline", "source": "airlines", "member": "airline.name"}
    assert flights["plane__maker__country"].meta == {
        "join": "plane.maker", "source": "makers", "member": "plane.maker.country"}
    assert flights["plane__seats"].type == "number"
    assert flights["carrier"].meta is None and flights["carrier"].query_name == "carrier"
    # the airlines cube's key column is its primary key, as Cube's primaryKey says
    assert cubes.members["airlines"]["carrier"].primary_key
    assert not flights["carrier"].primary_key  # flights declares no primary key


def test_translate_reads_joined_members_as_our_dotted_names(star: Star) -> None:
    cubes = Cubes(star.compiled.sources)
    t = translate_query({
        "measures": ["flights.flights"],
        "dimensions": ["flights.airline__name", "flights.origin_airport__tz"],
        "filters": [{"member": "flights.plane__maker__country", "operator": "notEquals",
                     "values": ["USA"]},
                    {"member": "flights.dest_airport__name", "operator": "contains",
                     "values": ["ang"]}],
        "order": {"flights.airline__name": "desc"}}, cubes, NOW)
    query = t.query
    assert (query.source, query.measures, query.dimensions) == (
        "flights", ("flights",), ("airline.name", "origin_airport.tz"))
    assert query.filters == (
        # a joined dimension is nullable: Cube's notEquals keeps its nulls
        FilterGroup("or", (Filter("plane.maker.country", "ne", ("USA",)),
                           Filter("plane.maker.country", "is_null"))),
        Filter("dest_airport.name", "ilike", ("%ang%",)))
    assert query.order == (Order("airline.name", True),)
    assert t.normalized["dimensions"] == ["flights.airline__name", "flights.origin_airport__tz"]
    assert t.normalized["order"] == [{"id": "flights.airline__name", "desc": True}]
    assert [m.key for m in t.columns.values()] == [
        "flights.airline__name", "flights.origin_airport__tz", "flights.flights"]


def test_a_query_mixing_a_joined_cube_names_the_members_to_use_instead(star: Star) -> None:
    cubes = Cubes(star.compiled.sources)
    with pytest.raises(QueryError) as caught:
        translate_query({"measures": ["flights.flights"],
                         "dimensions": ["airlines.name", "makers.country"]}, cubes, NOW)
    assert caught.value.field == "measures"
    assert caught.value.message.endswith(
        "cube 'flights' has 'airlines.name' as flights.airline__name, 'makers.country' as "
        "flights.plane__maker__country through its joins")
    with pytest.raises(QueryError) as caught:
        translate_query({"measures": ["flights.flights"], "filters": [
            {"member": "airports.name", "operator": "equals", "values": ["Kennedy"]}]},
            cubes, NOW)
    assert caught.value.field == "filters"
    assert caught.value.message.endswith(
        "'airports.name' as flights.origin_airport__name or flights.dest_airport__name "
        "through its joins")
    with pytest.raises(QueryError) as caught:  # no cube reaches the other's members
        translate_query({"dimensions": ["airlines.name", "airports.name"]}, cubes, NOW)
    assert caught.value.message.endswith("query each cube on its own")
    with pytest.raises(QueryError) as caught:  # whichever cube comes first
        translate_query({"dimensions": ["planes.model"], "measures": ["flights.flights"]},
                        cubes, NOW)
    assert caught.value.message.endswith(
        "cube 'flights' has 'planes.model' as flights.plane__model through its joins")


def test_load_answers_joined_members_in_cubes_shape(star: Star) -> None:
    answer = _load(star.client, {"measures": ["flights.flights", "flights.seats_flown"],
                                 "dimensions": ["flights.airline__name"],
                                 "order": [["flights.airline__name", "asc"]]})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["data"] == [
        {"flights.airline__name": "American", "flights.flights": "3",
         "flights.seats_flown": "490"},
        {"flights.airline__name": "United", "flights.flights": "1",
         "flights.seats_flown": "160"},
        {"flights.airline__name": None, "flights.flights": "1", "flights.seats_flown": None}]
    assert body["annotation"]["dimensions"]["flights.airline__name"] == {
        "title": "Flights Airline Name", "shortTitle": "Airline Name",
        "description": "The airline's full name.", "type": "string",
        "meta": {"join": "airline", "source": "airlines", "member": "airline.name"}}
    assert body["usedPreAggregations"] is not None  # the rollup keeping the carrier
    filtered = _load(star.client, {"measures": ["flights.flights"],
                                   "dimensions": ["flights.origin_airport__name"],
                                   "filters": [{"member": "flights.plane__maker__country",
                                                "operator": "equals", "values": ["France"]}]})
    assert filtered.json()["data"] == [
        {"flights.origin_airport__name": "Kennedy", "flights.flights": "2"},
        {"flights.origin_airport__name": "LaGuardia", "flights.flights": "1"}]
    sql = star.client.get("/cubejs-api/v1/sql", params={"query": json.dumps(
        {"measures": ["flights.flights"], "dimensions": ["flights.airline__name"]})}).json()
    assert sql["sql"]["aliasNameToMember"] == {"airline.name": "flights.airline__name",
                                               "flights": "flights.flights"}


def test_cube_meta_lists_joined_members_where_they_come_from(star: Star) -> None:
    cubes = {c["name"]: c for c in star.client.get("/cubejs-api/v1/meta").json()["cubes"]}
    flights = {d["name"]: d for d in cubes["flights"]["dimensions"]}
    assert [n for n in flights if n != "flights.ts"] == [f"flights.{n}" for n in FLIGHTS]
    assert flights["flights.plane__maker__country"] | {"granularities": None} == {
        "name": "flights.plane__maker__country", "title": "Flights Plane Maker Country",
        "shortTitle": "Plane Maker Country", "description": None, "type": "string",
        "isVisible": True, "public": True, "suggestFilterValues": True, "primaryKey": False,
        "aliasMember": None, "granularities": None,
        "meta": {"join": "plane.maker", "source": "makers", "member": "plane.maker.country"}}
    airlines = {d["name"]: d for d in cubes["airlines"]["dimensions"]}
    assert (airlines["airlines.carrier"]["primaryKey"], airlines["airlines.name"]["primaryKey"]) \
        == (True, False)


def test_cube_meta_shows_a_narrow_credential_its_joined_members_only(star: Star) -> None:
    key, key_id, key_hash = new_key()
    stored = StoredKey(key_id, key_hash, frozenset({"read"}),
                       Access.of({}, ["flights", "airline.name"]))
    with serving(star.warehouse, star.model, access=AccessSettings(keys=(stored,))) as limited:
        headers = {"Authorization": key}
        cubes = {c["name"]: c for c in
                 limited.get("/cubejs-api/v1/meta", headers=headers).json()["cubes"]}
        flights = cubes["flights"]
        assert [m["name"] for m in flights["measures"]] == ["flights.flights"]
        assert [d["name"] for d in flights["dimensions"]] == ["flights.airline__name",
                                                              "flights.ts"]
        answer = limited.get("/cubejs-api/v1/load", headers=headers, params={"query": json.dumps(
            {"measures": ["flights.flights"], "dimensions": ["flights.airline__name"]})})
        assert answer.status_code == 200, answer.text
        refused = limited.get("/cubejs-api/v1/load", headers=headers, params={
            "query": json.dumps({"measures": ["flights.flights"],
                                 "dimensions": ["flights.plane__model"]})})
        assert refused.status_code == 403
        assert refused.json()["error"] == "this credential may not read 'plane.model'"


def test_an_own_member_keeps_a_name_a_joined_dimension_would_take(star: Star) -> None:
    text = model_text(STAR_MODEL, db=star.database).replace(
        "      origin: {}\n", "      origin: {}\n      airline__name: {sql: lower(carrier)}\n")
    model = load_model_text(text, "test.yaml")
    flights = Cubes(compile_against(model, star.warehouse).sources).members["flights"]
    own = flights["airline__name"]
    assert (own.query_name, own.meta) == ("airline__name", None)
    assert "airline.name" not in {m.query_name for m in flights.values()}
    assert flights["airline__carrier"].query_name == "airline.carrier"
