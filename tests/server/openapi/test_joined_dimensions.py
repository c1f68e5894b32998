"""The OpenAPI document of a star schema: wherever dimensions are enumerated (the values
route, the query body, filters, a generated endpoint's parameters), joined dimensions are
there by their dotted names, typed; and a bounded schemathesis run over the routes that take
them finds no 5xx and no answer the document does not describe."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from litestar import Litestar
from litestar.testing import TestClient
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation import GenerationMode
from schemathesis.python import asgi

from server.app import create_app
from server.auth.settings import AccessSettings
from server.warehouse.statements import Warehouse
from tests.support import LOOPBACK, STAR_DIMENSIONS, create_star, fresh_database

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "6"))
#: the routes that take dimension names
ROUTES = ("/v1/meta", "/v1/query", "/v1/explain",
          "/v1/sources/{source}/dimensions/{dimension}/values", "/api/by-airline")
FLIGHTS = STAR_DIMENSIONS


@pytest.fixture(scope="module")
def app(warehouse: Warehouse) -> Iterator[Litestar]:
    with fresh_database(warehouse, "openapi_star") as database:
        model = create_star(warehouse, database)
        yield create_app(model, warehouse, load=lambda: model,
                         access=AccessSettings(hosts=(asgi.HOST,)))


@pytest.fixture(scope="module")
def document(app: Litestar) -> dict[str, Any]:
    with TestClient(base_url=LOOPBACK, app=app) as client:
        answer = client.get("/openapi.json")
        assert answer.status_code == 200
        return dict(answer.json())


def test_openapi_enumerates_joined_dimensions_where_it_enumerates_dimensions(
        document: dict[str, Any]) -> None:
    values = document["paths"]["/v1/sources/{source}/dimensions/{dimension}/values"]["get"]
    dimension = next(p for p in values["parameters"] if p["name"] == "dimension")
    # every source's dimensions, its joined ones included (planes reach maker.country)
    assert set(dimension["schema"]["enum"]) == {*FLIGHTS, "name", "tz", "country", "model",
                                                "seats", "maker_id", "maker.country"}
    schemas = document["components"]["schemas"]
    grouped = schemas["Query"]["properties"]["dimensions"]["items"]["enum"]
    assert set(grouped) == {*dimension["schema"]["enum"], "ts"}
    member = schemas["Filter"]["oneOf"][0]["properties"]["member"]["enum"]
    assert set(member) == {*dimension["schema"]["enum"], "flights", "seats_flown"}
    assert {"primary_key", "joins"} <= set(schemas["Meta"]["properties"]["sources"]["items"]
                                           ["required"])


def test_openapi_types_a_generated_endpoints_joined_parameters_and_fields(
        document: dict[str, Any]) -> None:
    operation = document["paths"]["/api/by-airline"]["get"]
    filters = {p["name"]: p for p in operation["parameters"] if p.get("style") == "form"}
    assert list(filters) == FLIGHTS
    assert filters["plane.seats"]["schema"] == {"type": "array", "items": {"type": "integer"}}
    assert filters["airline.name"]["schema"] == {"type": "array", "items": {"type": "string"}}
    assert filters["airline.name"]["description"] == (
        "only rows whose airline.name is one of these values (The airline's full name.)")
    row = operation["responses"]["200"]["content"]["application/json"]["schema"]["items"]
    # a joined dimension is null where a flight matches no airline
    assert row["properties"]["airline"] == {"type": ["string", "null"]}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                         ids=["positive", "negative"])
def test_schemathesis_over_joined_dimensions_finds_no_server_error(
        app: Litestar, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path not in ROUTES:
            continue

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        def run(case: Any) -> None:
            case.call_and_validate(checks=CHECKS)

        try:
            run()
        except Unsatisfiable:  # no parameters or body to make invalid
            assert mode == GenerationMode.NEGATIVE
        except Exception as exc:  # collect every operation's failures, then report them all
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)
