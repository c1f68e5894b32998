"""Hostile queries over a star schema: asking a joined source's member as a measure (which a
many-to-one join would multiply), unknown paths, filters and orders by joined dimensions with
bad values: a 400 in the one error shape naming the field, never an inflated answer. And a
dimension table whose key repeats is refused by apply, naming the keys, so nothing is built."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlglot import parse_one

from engine.query.request import Query
from engine.query.security import Access, AccessDenied, write_restrictions
from semantic import ModelError, load_model_text
from server.operations.apply import verify_model
from server.runtime.compile import compile_against
from server.runtime.compiled import Runtime
from server.warehouse.statements import Warehouse
from tests.support import (
    STAR_MODEL,
    apply_text,
    assert_error,
    create_star,
    fresh_database,
    insert_rows,
    model_text,
    serving,
)


@pytest.fixture(scope="module")
def client(warehouse: Warehouse) -> Iterator[TestClient]:  # type: ignore[type-arg]
    with fresh_database(warehouse, "joins") as db, \
            serving(warehouse, create_star(warehouse, db)) as client:
        yield client


def post(client: TestClient, **body: object) -> Any:  # type: ignore[type-arg]
    return client.post("/v1/query", json={"source": "flights", "measures": ["flights"], **body})


def test_a_joined_member_asked_as_a_measure_is_400_with_what_to_write(
        client: TestClient) -> None:  # type: ignore[type-arg]
    error = assert_error(post(client, measures=["flights", "plane.seats"]), 400, "measures[1]")
    assert "dimension of source 'planes'" in error["message"]
    assert "{agg: sum, column: plane.<column>}" in error["message"]
    error = assert_error(post(client, measures=["airline.flights"]), 400, "measures[0]")
    assert "not a member of source 'airlines'" in error["message"]


def test_unknown_joined_paths_are_400_with_did_you_mean(
        client: TestClient) -> None:  # type: ignore[type-arg]
    error = assert_error(post(client, dimensions=["airline.nam"]), 400, "dimensions[0]")
    assert "did you mean 'airline.name'" in error["message"]
    error = assert_error(post(client, dimensions=["plane.maker.contry"]), 400, "dimensions[0]")
    assert "plane.maker.country" in error["message"]
    assert_error(post(client, filters=[{"member": "airline", "value": "x"}]), 400,
                 "filters[0].member")


def test_joined_filters_are_typed_and_answers_count_each_flight_once(
        client: TestClient) -> None:  # type: ignore[type-arg]
    error = assert_error(post(client, filters=[{"member": "plane.seats", "value": "many"}]),
                         400, "filters[0].value")
    assert "plane.seats" in error["message"]
    both = post(client, dimensions=["origin_airport.name", "dest_airport.name"],
                filters=[{"member": "plane.maker.country", "op": "is_not_null"}])
    assert both.status_code == 200, both.text
    assert sum(row["flights"] for row in both.json()["data"]) == 4  # N0 has no plane row
    total = post(client).json()["data"][0]["flights"]
    everything = post(client, dimensions=["airline.name", "plane.maker.country",
                                          "origin_airport.tz", "dest_airport.tz"])
    assert sum(row["flights"] for row in everything.json()["data"]) == total == 5


def test_apply_refuses_a_dimension_table_whose_key_repeats(warehouse: Warehouse) -> None:
    with fresh_database(warehouse, "dupes") as db:
        create_star(warehouse, db)
        insert_rows(warehouse, f"{db}.planes", [("N1", "A320neo", 170, 1)])
        with pytest.raises(ModelError) as info:
            apply_text(warehouse, model_text(STAR_MODEL, db=db))
        [issue] = info.value.issues
        assert issue.code == "duplicate-key"
        assert f"1 primary key value(s) of {db}.planes repeat, e.g. tailnum='N1' (2 rows)" \
            in issue.message
        assert (issue.location.line, issue.location.column) == (21, 18)
        compiled = compile_against(load_model_text(model_text(STAR_MODEL, db=db), "t.yaml"),
                                   warehouse)
        with pytest.raises(ModelError, match="tailnum='N1' \\(2 rows\\)"):
            verify_model(compiled, warehouse)
        assert warehouse.query(parse_one(f"SELECT count() FROM {db}.planes")).rows[0][0] == 4


def test_row_level_security_on_a_joined_dimension(warehouse: Warehouse) -> None:
    """A claim restricting a dimension two joins away: the caller sees only flights whose
    plane's maker is in its countries, from the rollup keeping the key and from raw rows."""
    secured = STAR_MODEL.replace(
        "    rollups:\n      by_airline_day",
        "    security:\n      countries: plane.maker.country\n"
        "    rollups:\n      by_tail_day: {{dimensions: [plane.maker.country, airline.name], "
        "grain: day, measures: [flights]}}\n      by_airline_day")
    with fresh_database(warehouse, "joinsec") as db:
        create_star(warehouse, db)
        model = apply_text(warehouse, model_text(secured, db=db))
        runtime = Runtime.start(model, warehouse)
        query = Query("flights", ("flights",), ("airline.name",), limit=100)
        for countries, expected in ((["France"], {"American": 3}),
                                    (["USA"], {"United": 1})):
            access = Access.of({"countries": countries})
            plan = runtime.plan(query, access=access)
            assert plan.rollup is not None and plan.rollup.name == "by_tail_day"
            raw = runtime.plan(replace(query, force_raw=True), access=access)
            for answer in (runtime.run(plan), runtime.run(raw)):
                assert {r["airline.name"]: r["flights"] for r in answer.rows} == expected
        with pytest.raises(AccessDenied):  # an empty claim reads no rows
            runtime.plan(query, access=Access.of({"countries": []}))
        with pytest.raises(AccessDenied, match="reached through join 'plane.maker'"):
            write_restrictions(runtime.compiled.sources["flights"], ["tailnum"],
                               Access.of({"countries": ["France"]}))


def _seats(client: TestClient) -> tuple[dict[Any, Any], Any]:  # type: ignore[type-arg]
    answer = post(client, measures=["flights", "seats_flown"], dimensions=["airline.name"])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return {r["airline.name"]: r["seats_flown"] for r in body["data"]}, body["meta"]["rollup"]


def test_stored_joined_values_follow_writes_merges_and_views(warehouse: Warehouse) -> None:
    """A rollup storing seats_flown: rows written into planes through the service make it
    stale before the write is answered; a merge of planes' parts does not; a dimension table
    that is a view cannot be versioned, so what stores its values is never served."""
    with fresh_database(warehouse, "stored") as db:
        with serving(warehouse, create_star(warehouse, db)) as client:
            before, rollup = _seats(client)
            assert rollup == "by_airline_day" and before[None] is None  # N0 has no plane
            warehouse.command(parse_one(f"OPTIMIZE TABLE {db}.planes FINAL"))
            client.app.state.semantic.runtime().refresh()
            assert _seats(client) == (before, "by_airline_day")  # a merge changes nothing
            written = client.post("/v1/sources/planes/rows", json=[
                {"tailnum": "N0", "model": "X", "seats": 100, "maker_id": 2}])
            assert written.status_code == 200, written.text
            after, rollup = _seats(client)
            assert rollup is None and after[None] == 100
            explained = client.post("/v1/explain", json={
                "source": "flights", "measures": ["seats_flown"],
                "dimensions": ["airline.name"]}).json()
            [stale] = [c for c in explained["candidates"] if c["rollup"] == "by_airline_day"]
            assert stale["reason"] == "stale" and f"{db}.planes" in stale["detail"]
    with fresh_database(warehouse, "viewed") as db:
        create_star(warehouse, db)
        for statement in (f"RENAME TABLE {db}.planes TO {db}.planes_raw",
                          f"CREATE VIEW {db}.planes AS SELECT * FROM {db}.planes_raw"):
            warehouse.command(parse_one(statement, dialect="clickhouse"))
        with serving(warehouse, apply_text(warehouse, model_text(STAR_MODEL, db=db))) as client:
            _, rollup = _seats(client)
            assert rollup is None


def test_keys_clickhouse_cannot_compare_and_null_keys(warehouse: Warehouse) -> None:
    with fresh_database(warehouse, "keys") as db:
        create_star(warehouse, db)
        warehouse.command(parse_one(f"ALTER TABLE {db}.makers MODIFY COLUMN id Float64",
                                    dialect="clickhouse"))
        warehouse.command(parse_one(f"ALTER TABLE {db}.planes MODIFY COLUMN maker_id "
                                    "Decimal(10, 2)", dialect="clickhouse"))
        with pytest.raises(ModelError) as info:
            apply_text(warehouse, model_text(STAR_MODEL, db=db))
        [issue] = info.value.issues
        assert issue.code == "key-type-mismatch" and "join 'maker'" \
            in issue.message and "cannot match its keys" in issue.message
    with fresh_database(warehouse, "nullkeys") as db:
        create_star(warehouse, db)
        warehouse.command(parse_one(f"ALTER TABLE {db}.airlines MODIFY COLUMN carrier "
                                    "Nullable(String)", dialect="clickhouse"))
        insert_rows(warehouse, f"{db}.airlines", [(None, "nobody"), (None, "no one")])
        apply_text(warehouse, model_text(STAR_MODEL, db=db))  # NULL keys match nothing
