"""The OpenAPI 3.1 document: it describes every route, the generated endpoints typed from the
model; and a bounded schemathesis run against it finds no 5xx and no answer the document does
not describe."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
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

from semantic import Model
from server.app import create_app
from server.auth.settings import AccessSettings
from server.auth.tokens import JwtSettings
from server.warehouse.statements import Warehouse
from tests.server.conftest import API_COLUMNS as COLUMNS
from tests.server.conftest import API_MODEL as MODEL
from tests.server.conftest import API_ROWS as ROWS
from tests.support import (
    LOOPBACK,
    apply_text,
    create_events,
    fresh_database,
    insert_rows,
    model_text,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]
#: examples per operation and generation mode: bounded so the whole run stays well under a
#: minute on a 2-core machine (raise it with SCHEMATHESIS_EXAMPLES for a thorough run)
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "6"))
#: admin operations that rebuild rollups: a couple of valid calls each
REBUILDING = ("/v1/admin/apply", "/v1/admin/repair")


@dataclass
class Api:
    model: Model
    app: Litestar


@pytest.fixture(scope="module")
def api(warehouse: Warehouse) -> Iterator[Api]:
    with fresh_database(warehouse, "o") as database:
        insert_rows(warehouse, create_events(warehouse, database, COLUMNS), ROWS)
        model = apply_text(warehouse, model_text(MODEL, db=database))
        # schemathesis calls the app as http://testserver: allowed as an operator would
        # allow a host name (access control is off: only loopback names are answered)
        access = AccessSettings(hosts=(asgi.HOST,))
        yield Api(model, create_app(model, warehouse, load=lambda: model, access=access))


def test_openapi_document_describes_every_route_and_endpoint(api: Api) -> None:
    with TestClient(base_url=LOOPBACK, app=api.app) as client:
        answer = client.get("/openapi.json")
        assert answer.status_code == 200
        document = answer.json()
        assert document["openapi"] == "3.1.0"
        routes = {(method.upper(), path) for path, item in document["paths"].items()
                  for method in item}
        served = {(method, route.path_format if "{" in route.path else route.path)
                  for route in api.app.routes for method in getattr(route, "methods", ())
                  if method not in ("OPTIONS", "HEAD")}
        served.discard(("GET", "/{path}"))  # the generated endpoints, listed one by one
        served = {(m, p.replace("{source_name}", "{source}")) for m, p in served}
        endpoints = {("GET", e.path) for e in api.model.endpoints}
        assert routes == served | endpoints
        totals = document["paths"]["/api/by-region"]["get"]
        parameters = {p["name"]: p["schema"] for p in totals["parameters"]}
        assert parameters["region"] == {"type": "array", "items": {"type": "string"}}
        assert set(parameters) >= {"from", "to", "range", "timezone", "limit", "offset", "plan"}
        row = totals["responses"]["200"]["content"]["application/json"]["schema"]["items"]
        assert row["required"] == ["region", "day", "n", "avg"]
        assert row["properties"]["region"] == {"type": "string"}
        assert "security" not in document
        page = client.get("/docs")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "/openapi.json" in page.text and "http" not in page.text.split("<body>")[1]


def test_openapi_document_requires_bearer_when_access_control_is_on(
        api: Api, warehouse: Warehouse) -> None:
    secured = create_app(api.model, warehouse,
                         access=AccessSettings(jwt=JwtSettings(secret="s" * 40)))
    with TestClient(base_url=LOOPBACK, app=secured) as client:
        document = client.get("/openapi.json").json()
        assert document["security"] == [{"bearer": []}]
        assert document["paths"]["/healthz"]["get"]["security"] == []
        assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                         ids=["positive", "negative"])
def test_schemathesis_finds_no_server_error_and_no_undescribed_answer(
        api: Api, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.app)
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path == "/v1/admin/demo":
            continue  # creates tables named by the request and fills millions of rows
        if operation.path in REBUILDING and mode == GenerationMode.POSITIVE:
            examples = 2  # each call rebuilds the rollups
        else:
            examples = EXAMPLES

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
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


def test_schema_run_findings_stay_fixed(api: Api) -> None:
    """What the schema run found: a huge offset reached ClickHouse (502)."""
    with TestClient(base_url=LOOPBACK, app=api.app) as client:
        for answer in (client.get("/api/totals?offset=256216714504776024064"),
                       client.post("/v1/query", json={"measures": ["events"],
                                                      "offset": 10**20})):
            assert answer.status_code == 400
            assert answer.json()["error"]["field"] == "offset"
        document = client.get("/openapi.json").json()
        offset = document["components"]["schemas"]["Query"]["properties"]["offset"]
        assert offset["maximum"] == api.app.state.semantic.limits.query.offset
