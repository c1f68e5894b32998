"""DNS rebinding and foreign origins, on every route the app serves: without access control
only loopback host names (and configured ones) are answered; with or without it, a browser
request from a foreign web origin is refused unless CORS allows that origin."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from engine.query.security import Access
from semantic import Model
from server.app import create_app
from server.auth.keys import StoredKey, new_key
from server.auth.middleware import HEALTH_PATHS, required_scope
from server.auth.settings import AccessSettings
from server.warehouse.statements import Warehouse
from tests.support import (
    LOOPBACK,
    TOTALS_MODEL,
    apply_text,
    create_events,
    fresh_database,
    insert_rows,
    model_text,
)

MODEL = TOTALS_MODEL
#: what the probe sent: a host name the attacker's DNS points at 127.0.0.1
EVIL_HOST = "evil.example:3000"
EVIL_ORIGIN = "http://evil.example:3000"
PARAMETERS = {"source_name": "events", "dimension": "region", "load": "load0001abcd",
              "name": "app.js", "path": "api/totals"}


@pytest.fixture(scope="module")
def model(warehouse: Warehouse) -> Iterator[Model]:
    with fresh_database(warehouse, "hosts") as database:
        table = create_events(warehouse, database, "ts DateTime, region String")
        insert_rows(warehouse, table, [("2026-01-01 10:00:00", "us")])
        yield apply_text(warehouse, model_text(MODEL, db=database))


def _requests(app: Litestar) -> Iterator[tuple[str, str]]:
    """Every (method, path) the app serves, its path parameters filled in."""
    for route in app.routes:
        path = re.sub(r"\{(\w+):\w+\}", lambda m: PARAMETERS[m.group(1)], route.path)
        methods = sorted(set(getattr(route, "methods", ())) - {"OPTIONS"}) or ["POST"]
        for method in methods:
            yield method, path


def _send(client: TestClient, method: str, path: str,  # type: ignore[type-arg]
          headers: dict[str, str]) -> Any:
    body = b"{}" if method == "POST" else None
    return client.request(method, path, content=body,
                          headers={"content-type": "application/json", **headers})


def test_without_access_control_only_loopback_hosts_are_answered(model: Model,
                                                                  warehouse: Warehouse) -> None:
    """The probe's reproduction: ``Host: evil.example:3000`` read /api/metrics."""
    app = create_app(model, warehouse)
    with TestClient(base_url=LOOPBACK, app=app) as client:
        requests = list(_requests(app))
        assert ("POST", "/mcp") in requests and ("GET", "/api/totals") in requests
        for method, path in requests:
            answer = _send(client, method, path, {"host": EVIL_HOST})
            if path in HEALTH_PATHS:
                assert answer.status_code == 200, (method, path)
                continue
            assert answer.status_code == 403, (method, path, answer.text)
            text = answer.text
            assert "foreign_host" in text or "does not answer the host name" in text, text
        assert client.get("/api/totals", headers={"host": EVIL_HOST}).json()["error"][
            "message"].startswith("this server does not answer the host name 'evil.example:3000'")
        for host in ("localhost:3000", "127.0.0.1:3000", "[::1]:3000", "app.localhost",
                     "127.0.0.2"):
            answer = client.get("/api/totals", headers={"host": host})
            assert answer.status_code == 200, (host, answer.text)
            assert answer.json() == {"n": 1}
        for host in ("localhost.evil.example", "0.0.0.0:3000", "10.0.0.1", "example"):
            assert client.get("/api/totals", headers={"host": host}).status_code == 403, host


def test_configured_hosts_are_answered(model: Model, warehouse: Warehouse) -> None:
    access = AccessSettings(hosts=("analytics.internal", ".corp.example"))
    with TestClient(base_url=LOOPBACK, app=create_app(model, warehouse, access=access)) as client:
        for host in ("analytics.internal:3000", "a.corp.example", "corp.example", "localhost"):
            assert client.get("/api/totals", headers={"host": host}).status_code == 200, host
        for host in ("evil.example", "corp.example.evil", "xcorp.example"):
            assert client.get("/api/totals", headers={"host": host}).status_code == 403, host
    anything = AccessSettings(hosts=("*",))
    with TestClient(base_url=LOOPBACK, app=create_app(model, warehouse, access=anything)) as client:
        assert client.get("/api/totals", headers={"host": EVIL_HOST}).status_code == 200


def test_host_answers_are_remembered_within_a_bound(model: Model,
                                                    warehouse: Warehouse) -> None:
    """Each Host header is judged once and remembered; more names than are kept (callers
    choose them) are judged again, never answered by mistake."""
    access = AccessSettings(hosts=("analytics.internal",))
    with TestClient(base_url=LOOPBACK, app=create_app(model, warehouse, access=access)) as client:
        for round_ in range(2):
            for i in range(300):
                host = "analytics.internal" if i % 100 == 0 else f"evil{i}.example"
                expected = 200 if host == "analytics.internal" else 403
                found = client.get("/api/totals", headers={"host": host}).status_code
                assert found == expected, (round_, host)


def _access_on() -> tuple[str, AccessSettings]:
    key, key_id, key_hash = new_key()
    stored = StoredKey(key_id, key_hash, frozenset({"read", "ingest", "admin"}), Access())
    return key, AccessSettings(keys=(stored,),
                               cors_origins=("https://dashboards.example.com",))


@pytest.mark.parametrize("secured", [False, True], ids=["access-off", "access-on"])
def test_foreign_origins_are_refused_on_every_route(model: Model, warehouse: Warehouse,
                                                    secured: bool) -> None:
    """The probe's reproduction: ``/v1/query`` answered with ``Origin:
    http://evil.example:3000``. Public pages (health, the schema, the explore page's files)
    hold no data and answer any origin."""
    key, access = _access_on() if secured else ("", AccessSettings(
        cors_origins=("https://dashboards.example.com",)))
    credential = {"authorization": f"Bearer {key}"} if secured else {}
    app = create_app(model, warehouse, access=access)
    with TestClient(base_url=LOOPBACK, app=app) as client:
        for method, path in _requests(app):
            answer = _send(client, method, path, {**credential, "origin": EVIL_ORIGIN})
            if required_scope(path) is None:
                assert answer.status_code != 403, (method, path)
                continue
            assert answer.status_code == 403, (method, path, answer.text)
            assert "foreign_origin" in answer.text or "not accepted" in answer.text
        for origin in ("null", "http://app.localhost:3001", "http://localhost"):
            assert client.get("/api/totals", headers={**credential, "origin": origin}
                              ).status_code == 403, origin
        # the server's own origin (its explore page) and the CORS-allowed one are answered
        for origin in (LOOPBACK, "https://dashboards.example.com"):
            answer = client.post("/v1/query", json={"measures": ["events"]},
                                 headers={**credential, "origin": origin})
            assert answer.status_code == 200, (origin, answer.text)
        if secured:  # credentials guard every route: any host name is answered
            answer = client.get("/api/totals", headers={**credential, "host": EVIL_HOST})
            assert answer.status_code == 200


def test_options_lists_every_method_of_every_route(model: Model, warehouse: Warehouse) -> None:
    """The probe found OPTIONS on the Cube routes leaving POST out of ``Allow``."""
    app = create_app(model, warehouse)
    with TestClient(base_url=LOOPBACK, app=app) as client:
        for route in app.routes:
            methods = set(getattr(route, "methods", ()))
            if not methods:  # a mounted ASGI app (/mcp) answers for itself
                continue
            path = re.sub(r"\{(\w+):\w+\}", lambda m: PARAMETERS[m.group(1)], route.path)
            answer = client.options(path)
            assert answer.status_code == 204, (path, answer.text)
            assert set(answer.headers["allow"].split(", ")) == methods, (path, answer.headers)
    assert {"GET", "POST", "OPTIONS"} <= next(
        set(r.methods) for r in app.routes if r.path == "/cubejs-api/v1/load")  # type: ignore[attr-defined]
