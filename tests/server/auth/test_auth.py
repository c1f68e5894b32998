"""Access control over HTTP: keys and JWTs, scopes, 401/403 with WWW-Authenticate, row-level
security through every route, CORS and cross-site refusals."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from litestar.testing import TestClient

from engine.query.security import Access
from semantic import Model
from server.api.endpoints import ENDPOINTS
from server.app import create_app
from server.auth.keys import StoredKey, new_key
from server.auth.settings import AccessSettings
from server.auth.tokens import JwtSettings
from server.warehouse.statements import Warehouse
from tests.support import (
    EVENTS_HEAD,
    LOOPBACK,
    apply_text,
    create_events,
    fresh_database,
    insert_rows,
    model_text,
)

MODEL = EVENTS_HEAD + """\
    dimensions:
      tenant_id: {{}}
      region: {{}}
    measures:
      events: {{agg: count}}
      revenue: {{agg: sum, column: amount}}
    security:
      tenant: tenant_id
    rollups:
      totals: {{measures: [events, revenue]}}
      by_tenant_day: {{dimensions: [tenant_id], grain: day, measures: [events, revenue]}}
endpoints:
  /api/totals:
    returns: object
    fields: {{n: events, rev: revenue}}
"""

ROWS = [
    ("2026-01-01 10:00:00", 1, "us", 10),
    ("2026-01-01 11:00:00", 1, "eu", 20),
    ("2026-01-02 09:30:00", 2, "eu", 5),
    ("2026-01-03 23:59:59", 3, "us", 7),
]
SECRET = "test-secret-of-at-least-32-bytes-length"
TOTALS = {"measures": ["events", "revenue"]}


def _key(scopes: set[str], claims: dict[str, object] | None = None,
         members: list[str] | None = None) -> tuple[str, StoredKey]:
    key, key_id, key_hash = new_key()
    return key, StoredKey(key_id, key_hash, frozenset(scopes), Access.of(claims or {}, members))


@pytest.fixture(scope="module")
def model(warehouse: Warehouse) -> Iterator[Model]:
    """One secured source for the module (the tests only read it)."""
    with fresh_database(warehouse, "a") as database:
        table = create_events(warehouse, database,
                              "ts DateTime, tenant_id UInt32, region String, amount Int64")
        insert_rows(warehouse, table, ROWS)
        yield apply_text(warehouse, model_text(MODEL, db=database))


def _client(model: Model, warehouse: Warehouse,
            access: AccessSettings) -> TestClient:  # type: ignore[type-arg]
    return TestClient(base_url=LOOPBACK, app=create_app(model, warehouse, access=access))


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _token(claims: dict[str, Any], key: Any = SECRET, algorithm: str = "HS256",
           kid: str | None = None) -> str:
    payload = {"exp": int(time.time()) + 600, **claims}
    return jwt.encode(payload, key, algorithm=algorithm,
                      headers={"kid": kid} if kid else None)


def test_access_control_is_off_without_keys(model: Model, warehouse: Warehouse) -> None:
    with _client(model, warehouse, AccessSettings()) as client:
        answer = client.post("/v1/query", json=TOTALS)
        assert answer.status_code == 200
        assert answer.json()["data"] == [{"events": 4, "revenue": 42}]


def test_credentials_are_required_and_checked(model: Model, warehouse: Warehouse) -> None:
    key, stored = _key({"read"}, {"tenant": 1})
    with _client(model, warehouse, AccessSettings(keys=(stored,))) as client:
        missing = client.post("/v1/query", json=TOTALS)
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == 'Bearer realm="semantic"'
        body = missing.json()["error"]
        assert body["code"] == "unauthorized" and body["field"] is None
        assert body["request_id"] == missing.headers["x-request-id"]
        wrong = client.post("/v1/query", json=TOTALS, headers=_bearer(key[:-1] + "x"))
        assert wrong.status_code == 401
        assert wrong.json()["error"]["message"] == "unknown or revoked API key"
        assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
        basic = client.get("/v1/meta", headers={"Authorization": f"Basic {key}"})
        assert basic.status_code == 401
        assert client.get("/api/totals", headers=_bearer("garbage")).status_code == 401
        assert client.get("/healthz").status_code == 200
        assert client.get("/v1/meta", headers=_bearer(key)).status_code == 200
        # a bare token, as Cube's client sends it
        assert client.get("/v1/meta", headers={"Authorization": key}).status_code == 200


def test_endpoint_fast_path_refuses_as_the_route_does(model: Model,
                                                      warehouse: Warehouse) -> None:
    """A plain JSON GET of an endpoint, answered ahead of the router, is refused with the same
    status, body and headers as the route refuses it (``?format=json`` goes to the route), and
    carries its request id in both."""
    reader, stored = _key({"read"}, {"tenant": 1})
    writer, ingest = _key({"ingest"}, {"tenant": 1})
    settings = AccessSettings(keys=(stored, ingest), hosts=("app.localhost",))
    with _client(model, warehouse, settings) as client:
        endpoints = ENDPOINTS[client.app.state.semantic]
        cases: list[dict[str, str]] = [{}, _bearer("garbage"), _bearer(writer),
                                       {**_bearer(reader), "host": "evil.example"},
                                       _bearer(reader)]
        before = endpoints.fast
        for headers in cases:
            fast = client.get("/api/totals", headers=headers)
            routed = client.get("/api/totals?format=json", headers=headers)
            assert fast.status_code == routed.status_code, headers
            statuses = {401, 403} if headers is not cases[-1] else {200}
            assert fast.status_code in statuses, (headers, fast.text)
            for answer in (fast, routed):
                assert answer.headers["x-request-id"]
                if answer.status_code != 200:
                    assert answer.json()["error"]["request_id"] == answer.headers["x-request-id"]
            assert fast.json() == routed.json() if fast.status_code == 200 else \
                fast.json()["error"] | {"request_id": ""} == \
                routed.json()["error"] | {"request_id": ""}
            shown = {k: v for k, v in fast.headers.items() if k not in ("x-request-id",
                                                                         "x-semantic-cache")}
            assert shown == {k: v for k, v in routed.headers.items()
                             if k not in ("x-request-id", "x-semantic-cache")}, headers
        assert endpoints.fast == before + len(cases)


def test_scopes_guard_admin_and_ingestion(model: Model, warehouse: Warehouse) -> None:
    reader, reader_key = _key({"read"}, {"tenant": 1})
    writer, writer_key = _key({"ingest"})
    with _client(model, warehouse, AccessSettings(keys=(reader_key, writer_key))) as client:
        refused = client.post("/v1/admin/reload", headers=_bearer(reader))
        assert refused.status_code == 403
        assert refused.json()["error"] == {
            "code": "insufficient_scope", "field": None,
            "message": "this credential lacks the 'admin' scope (it has: read)",
            "request_id": refused.headers["x-request-id"]}
        assert 'scope="admin"' in refused.headers["www-authenticate"]
        row = {"ts": "2026-01-04 00:00:00", "tenant_id": 2, "region": "eu", "amount": 1}
        url = "/v1/sources/events/rows?dry_run=true"
        assert client.post(url, json=[row], headers=_bearer(reader)).status_code == 403
        assert client.post(url, json=[row], headers=_bearer(writer)).status_code == 200
        assert client.post("/v1/query", json=TOTALS, headers=_bearer(writer)).status_code == 403


def test_a_writer_carrying_a_claim_writes_only_its_rows(model: Model,
                                                       warehouse: Warehouse) -> None:
    """An ingest credential with the source's security claim may write only rows within it,
    whatever the body's format; one without the claim is a trusted writer."""
    scoped, scoped_key = _key({"ingest"}, {"tenant": [1, 3]})
    service, service_key = _key({"ingest"})
    url = "/v1/sources/events/rows?dry_run=true"
    mine = {"ts": "2026-01-04 00:00:00", "tenant_id": 3, "region": "eu", "amount": 1}
    other = {**mine, "tenant_id": 2}
    with _client(model, warehouse, AccessSettings(keys=(scoped_key, service_key))) as client:
        ok = client.post(url, json=[mine, mine], headers=_bearer(scoped))
        assert ok.status_code == 200 and ok.json()["checked"] == 2
        refused = client.post(url, json=[mine, other], headers=_bearer(scoped))
        assert refused.status_code == 403
        assert refused.json()["error"]["field"] == "rows[1]"
        assert "tenant_id = 2 is outside the credential's claim 'tenant'" in \
            refused.json()["error"]["message"]
        csv = "ts,tenant_id,region,amount\n2026-01-04 00:00:00,1,eu,1\n2026-01-04 00:00:00,2,eu,1\n"
        refused = client.post(url, content=csv, headers={**_bearer(scoped),
                                                         "content-type": "text/csv"})
        assert refused.status_code == 403 and refused.json()["error"]["field"] == "line 3"
        assert client.post(url, json=[mine, other], headers=_bearer(service)).status_code == 200


def test_key_claims_restrict_rows_on_every_route(model: Model, warehouse: Warehouse) -> None:
    one, one_key = _key({"read"}, {"tenant": 1})
    two, two_key = _key({"read"}, {"tenant": [2, 3]})
    with _client(model, warehouse, AccessSettings(keys=(one_key, two_key))) as client:
        answer = client.post("/v1/query", json=TOTALS, headers=_bearer(one))
        assert answer.json()["data"] == [{"events": 2, "revenue": 30}]
        assert answer.json()["meta"]["rollup"] == "by_tenant_day"
        answer = client.post("/v1/query", json=TOTALS, headers=_bearer(two))
        assert answer.json()["data"] == [{"events": 2, "revenue": 12}]
        # the caller's own filters cannot widen the restriction
        wider = {**TOTALS, "dimensions": ["tenant_id"],
                 "filters": [{"member": "tenant_id", "op": "in", "value": [1, 2, 3]}]}
        rows = client.post("/v1/query", json=wider, headers=_bearer(one)).json()["data"]
        assert rows == [{"tenant_id": 1, "events": 2, "revenue": 30}]
        raw = client.post("/v1/query", json={**TOTALS, "force_raw": True}, headers=_bearer(one))
        assert raw.json()["data"] == [{"events": 2, "revenue": 30}]
        assert client.get("/api/totals", headers=_bearer(two)).json() == {"n": 2, "rev": 12}
        # answers in other formats too, each caller's kept apart in the result cache
        for _ in range(2):
            assert client.post("/v1/query?format=csv", json=TOTALS, headers=_bearer(one)
                               ).text == '"events","revenue"\n2,30\n'
            assert client.get("/api/totals?format=csv", headers=_bearer(two)
                              ).text == '"n","rev"\n2,12\n'
            assert client.get("/api/totals?format=csv", headers=_bearer(one)
                              ).text == '"n","rev"\n2,30\n'
        explained = client.post("/v1/explain", json=TOTALS, headers=_bearer(one)).json()
        verdicts = {c["rollup"]: c["reason"] for c in explained["candidates"]}
        assert verdicts == {"totals": "security_filter_not_covered", "by_tenant_day": None}
        assert explained["parameters"] == {"p0": [1]}


def test_caller_without_the_claim_gets_403_not_rows(model: Model, warehouse: Warehouse) -> None:
    key, stored = _key({"read"})
    with _client(model, warehouse, AccessSettings(keys=(stored,))) as client:
        for answer in (client.post("/v1/query", json=TOTALS, headers=_bearer(key)),
                       client.get("/api/totals", headers=_bearer(key))):
            assert answer.status_code == 403
            error = answer.json()["error"]
            assert error["code"] == "forbidden" and error["field"] == "source"
            assert "claim 'tenant'" in error["message"]


def test_members_limit_what_a_key_reads(model: Model, warehouse: Warehouse) -> None:
    key, stored = _key({"read"}, {"tenant": 1}, ["events"])
    whole, whole_stored = _key({"read"}, {"tenant": 1})
    with _client(model, warehouse, AccessSettings(keys=(stored, whole_stored))) as client:
        ok = client.post("/v1/query", json={"measures": ["events"]}, headers=_bearer(key))
        assert ok.json()["data"] == [{"events": 2}]
        refused = client.post("/v1/query", json=TOTALS, headers=_bearer(key))
        assert refused.status_code == 403
        assert refused.json()["error"]["field"] == "measures[1]"
        # the schema shows the same key only what it may read
        meta = client.get("/v1/meta", headers=_bearer(key)).json()
        (source,) = meta["sources"]
        assert [m["name"] for m in source["measures"] + source["metrics"]] == ["events"]
        assert [r["measures"] for r in source["rollups"]] == [["events"], ["events"]]
        assert {d["name"] for d in source["dimensions"]} <= {"ts"}  # no tenant_id, region
        assert meta["endpoints"] == []  # /api/totals also returns revenue
        full = client.get("/v1/meta", headers=_bearer(whole)).json()
        assert [m["name"] for m in full["sources"][0]["measures"]] == ["events", "revenue"]
        assert {"tenant_id", "region"} <= {d["name"] for d in full["sources"][0]["dimensions"]}
        assert [e["path"] for e in full["endpoints"]] == ["/api/totals"]


def test_hs256_tokens(model: Model, warehouse: Warehouse) -> None:
    access = AccessSettings(jwt=JwtSettings(secret=SECRET, audience="dash"))
    with _client(model, warehouse, access) as client:
        good = _token({"sub": "ann", "scope": "read", "tenant": 3, "aud": "dash"})
        answer = client.post("/v1/query", json=TOTALS, headers=_bearer(good))
        assert answer.json()["data"] == [{"events": 1, "revenue": 7}]
        refusals = {
            "expired": _token({"scope": "read", "tenant": 3, "aud": "dash",
                               "exp": int(time.time()) - 3600}),
            "wrong key": _token({"scope": "read", "tenant": 3, "aud": "dash"}, "x" * 40),
            "wrong audience": _token({"scope": "read", "tenant": 3, "aud": "other"}),
            "no exp": jwt.encode({"scope": "read", "tenant": 3, "aud": "dash"}, SECRET),
            "alg none": jwt.encode({"scope": "read", "exp": int(time.time()) + 60}, None,
                                   algorithm="none"),
        }
        for why, token in refusals.items():
            answer = client.post("/v1/query", json=TOTALS, headers=_bearer(token))
            assert answer.status_code == 401, why
        no_scope = _token({"scope": "ingest", "tenant": 3, "aud": "dash"})
        assert client.post("/v1/query", json=TOTALS,
                           headers=_bearer(no_scope)).status_code == 403


def test_rs256_tokens_against_a_jwks_file(model: Model, warehouse: Warehouse,
                                          tmp_path: Path) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [{**public, "kid": "k1",
                                                              "use": "sig", "alg": "RS256"}]}))
    access = AccessSettings(jwt=JwtSettings(jwks_file=tmp_path / "jwks.json"))
    with _client(model, warehouse, access) as client:
        token = _token({"scope": ["read"], "tenant": 2}, private, "RS256", "k1")
        answer = client.post("/v1/query", json=TOTALS, headers=_bearer(token))
        assert answer.json()["data"] == [{"events": 1, "revenue": 5}]
        forged = _token({"scope": "read", "tenant": 2}, SECRET)  # HS256 not configured
        assert client.post("/v1/query", json=TOTALS, headers=_bearer(forged)).status_code == 401


@pytest.fixture
def jwks_server() -> Iterator[tuple[str, ec.EllipticCurvePrivateKey]]:
    """A loopback JWKS endpoint (ES256) on a port of this test's own."""
    private = ec.generate_private_key(ec.SECP256R1())
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private.public_key()))
    body = json.dumps({"keys": [{**public, "kid": "e1", "use": "sig", "alg": "ES256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/jwks.json", private
    finally:
        server.shutdown()
        server.server_close()


def test_es256_tokens_against_a_jwks_url(model: Model, warehouse: Warehouse,
                                         jwks_server: tuple[str, Any]) -> None:
    url, private = jwks_server
    access = AccessSettings(jwt=JwtSettings(jwks_url=url))
    with _client(model, warehouse, access) as client:
        token = _token({"scope": "read", "tenant": 1}, private, "ES256", "e1")
        answer = client.post("/v1/query", json=TOTALS, headers=_bearer(token))
        assert answer.json()["data"] == [{"events": 2, "revenue": 30}]
        unknown = _token({"scope": "read", "tenant": 1}, ec.generate_private_key(
            ec.SECP256R1()), "ES256", "e2")
        assert client.post("/v1/query", json=TOTALS, headers=_bearer(unknown)).status_code == 401


def test_cors_preflight_answers_only_configured_origins(model: Model,
                                                        warehouse: Warehouse) -> None:
    preflight = {"Origin": "https://dash.example.com", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type"}
    with _client(model, warehouse, AccessSettings()) as client:
        answer = client.options("/v1/query", headers=preflight)
        assert "access-control-allow-origin" not in answer.headers
        answer = client.post("/v1/query", json=TOTALS, headers={"Origin": preflight["Origin"]})
        assert "access-control-allow-origin" not in answer.headers
    key, stored = _key({"read"}, {"tenant": 1})
    access = AccessSettings(keys=(stored,), cors_origins=("https://dash.example.com",))
    with _client(model, warehouse, access) as client:
        answer = client.options("/v1/query", headers=preflight)
        assert answer.status_code in (200, 204)
        assert answer.headers["access-control-allow-origin"] == "https://dash.example.com"
        assert "authorization" in answer.headers["access-control-allow-headers"].lower()
        other = client.options("/v1/query", headers={**preflight, "Origin": "https://evil.test"})
        assert other.headers.get("access-control-allow-origin") != "https://evil.test"
        answer = client.post("/v1/query", json=TOTALS,
                             headers={"Origin": preflight["Origin"], **_bearer(key)})
        assert answer.headers["access-control-allow-origin"] == "https://dash.example.com"


def test_admin_and_ingestion_refuse_cross_site_requests(model: Model,
                                                        warehouse: Warehouse) -> None:
    with _client(model, warehouse, AccessSettings()) as client:
        foreign = client.post("/v1/admin/reload", headers={"Origin": "https://evil.test"})
        assert foreign.status_code == 403
        assert foreign.json()["error"]["code"] == "foreign_origin"
        form = client.post("/v1/admin/apply", content=b"a=1",
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert form.status_code == 415
        assert form.json()["error"]["code"] == "unsupported_media_type"
        for kind in ("multipart/form-data; boundary=x", "text/plain"):
            answer = client.post("/v1/sources/events/rows", content=b"ts,tenant_id\n",
                                 headers={"Content-Type": kind})
            assert answer.status_code == 415, kind
        answer = client.post("/v1/sources/events/rows", content=b"[]",
                             headers={"Origin": "https://evil.test",
                                      "Content-Type": "application/json"})
        assert answer.status_code == 403
        # queries are refused cross-site too (a foreign page could read the answer through
        # DNS rebinding); CORS-allowed origins are answered (test_hosts.py)
        assert client.post("/v1/query", json=TOTALS,
                           headers={"Origin": "https://evil.test"}).status_code == 403


def test_cached_answers_never_cross_callers(model: Model, warehouse: Warehouse) -> None:
    """The result cache is keyed by the query after row-level security is added: a cached
    answer of one caller is never served to a caller with another restriction."""
    one_key, one = _key({"read"}, {"tenant": 1})
    two_key, two = _key({"read"}, {"tenant": 2})
    with _client(model, warehouse, AccessSettings(keys=(one, two))) as client:
        for _ in range(2):  # the second round is answered from the cache
            first = client.get("/api/totals", headers=_bearer(one_key))
            second = client.get("/api/totals", headers=_bearer(two_key))
            queried = client.post("/v1/query", json=TOTALS, headers=_bearer(two_key))
            assert first.json() == {"n": 2, "rev": 30}
            assert second.json() == {"n": 1, "rev": 5}
            assert queried.json()["data"] == [{"events": 1, "revenue": 5}]
        assert {first.headers["x-semantic-cache"], second.headers["x-semantic-cache"],
                queried.headers["x-semantic-cache"]} == {"hit"}


def test_ranges_cut_from_kept_answers_hold_only_the_callers_rows(model: Model,
                                                                 warehouse: Warehouse) -> None:
    """A range cut from a whole answer kept for one tenant is never served to another: the
    kept answer is keyed by the query with the caller's restriction."""
    one, one_key = _key({"read"}, {"tenant": 1})
    two, two_key = _key({"read"}, {"tenant": [2, 3]})
    daily = {"measures": ["events", "revenue"], "grain": "day"}
    with _client(model, warehouse, AccessSettings(keys=(one_key, two_key))) as client:
        def ask(key: str, start: str, end: str) -> Any:
            answer = client.post("/v1/query", headers=_bearer(key), json={
                **daily, "time_range": {"from": start, "to": end}})
            assert answer.status_code == 200, answer.text
            return answer.json()["data"]

        cache = client.app.state.semantic.cache
        assert ask(one, "2026-01-01", "2026-01-02") == [
            {"ts": "2026-01-01", "events": 2, "revenue": 30}]
        assert ask(two, "2026-01-01", "2026-01-02") == []
        assert ask(one, "2026-01-01", "2026-01-04") == [
            {"ts": "2026-01-01", "events": 2, "revenue": 30}]
        assert ask(two, "2026-01-01", "2026-01-04") == [
            {"ts": "2026-01-02", "events": 1, "revenue": 5},
            {"ts": "2026-01-03", "events": 1, "revenue": 7}]
        # each tenant's first range runs as asked; its second is cut from its own kept answer
        assert cache.stats()["cuts"] == 2


def test_a_tenant_sees_no_figure_over_other_tenants_rows(model: Model,
                                                        warehouse: Warehouse) -> None:
    """The probe's reproduction: ``region_daily`` showing 270 rows (3 regions x 90 days) let
    a tenant count tenants. Rollup sizes, explain's estimates, rows and bytes read and
    /metrics are over every tenant's rows: a tenant's credential sees none of them."""
    tenant, tenant_key = _key({"read"}, {"tenant": 1})
    scraper, scraper_key = _key({"metrics"})
    body = {"measures": ["events"], "dimensions": ["tenant_id"], "grain": "day"}
    with _client(model, warehouse, AccessSettings()) as open_client:
        meta = open_client.get("/v1/meta").json()
        assert any(r["rows"] for r in meta["sources"][0]["rollups"]), meta  # the whole figure
        explained = open_client.post("/v1/explain", json=body).json()
        assert any(c["rows"] for c in explained["candidates"]), explained
    access = AccessSettings(keys=(tenant_key, scraper_key))
    with _client(model, warehouse, access) as client:
        meta = client.get("/v1/meta", headers=_bearer(tenant)).json()
        assert meta["sources"][0]["rollups"], meta
        for rollup in meta["sources"][0]["rollups"]:
            assert rollup["rows"] is None and rollup["bytes"] is None, rollup
        explained = client.post("/v1/explain", json=body, headers=_bearer(tenant)).json()
        assert explained["estimate"] == {"read_bytes": None, "rows": None, "tables": None}
        for candidate in explained["candidates"]:
            assert [candidate[k] for k in ("rows", "bytes", "read_bytes", "estimated_ms")] == [
                None] * 4, candidate
        answer = client.post("/v1/query", json=body, headers=_bearer(tenant))
        assert answer.status_code == 200
        statistics = answer.json()["meta"]["statistics"]
        assert statistics is not None and statistics["rows_read"] is None
        assert statistics["bytes_read"] is None
        refused = client.get("/metrics", headers=_bearer(tenant))
        assert refused.status_code == 403
        assert "lacks the 'metrics' scope" in refused.json()["error"]["message"]
        scraped = client.get("/metrics", headers=_bearer(scraper))
        assert scraped.status_code == 200 and "semantic_" in scraped.text
