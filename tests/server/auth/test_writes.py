"""Writes under row-level security: a claim with no values writes no rows on any write path
(JSON, JSON lines, CSV, Parquet, a staged batch), a null claim is refused, and a staged load
belongs to the credential that staged it (another gets 404; a commit checks the committer's
claims against the staged rows)."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot
from litestar.testing import TestClient

from engine.query.security import Access
from semantic import Model
from server.app import create_app
from server.auth.keys import StoredKey, new_key
from server.auth.settings import AccessSettings
from server.auth.tokens import JwtSettings
from server.warehouse.statements import Warehouse
from tests.support import EVENTS_HEAD, LOOPBACK, apply_text, create_events, model_text

SECRET = "test-secret-of-at-least-32-bytes-length"
BODY = """\
    dimensions:
      tenant_id: {{}}
      region: {{}}
    measures:
      events: {{agg: count}}
    rollups:
      by_tenant: {{dimensions: [tenant_id], measures: [events]}}
"""
SECURED = EVENTS_HEAD + BODY + """\
    security:
      regions: region
"""
OPEN = EVENTS_HEAD + BODY
ROWS = "/v1/sources/events/rows"
WEST = {"ts": "2026-01-04 00:00:00", "tenant_id": 2, "region": "us-west"}
EAST = {**WEST, "region": "us-east"}


@pytest.fixture
def source(warehouse: Warehouse, database: str) -> str:
    create_events(warehouse, database, "ts DateTime, tenant_id UInt32, region String")
    return database


def _model(warehouse: Warehouse, database: str, text: str = SECURED) -> Model:
    return apply_text(warehouse, model_text(text, db=database))


def _key(claims: dict[str, object] | None = None) -> tuple[str, StoredKey]:
    key, key_id, key_hash = new_key()
    return key, StoredKey(key_id, key_hash, frozenset({"ingest", "read"}), Access.of(claims or {}))


def _token(**claims: Any) -> str:
    return jwt.encode({"exp": int(time.time()) + 600, "scope": "ingest read", **claims}, SECRET)


def _bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def _client(model: Model, warehouse: Warehouse,
            *keys: StoredKey) -> TestClient:  # type: ignore[type-arg]
    access = AccessSettings(keys=keys, jwt=JwtSettings(secret=SECRET))
    return TestClient(base_url=LOOPBACK, app=create_app(model, warehouse, access=access))


def _count(warehouse: Warehouse, database: str) -> int:
    return int(warehouse.query(sqlglot.parse_one(
        f"SELECT count() FROM {database}.events")).rows[0][0])


def _parquet(rows: list[dict[str, object]]) -> bytes:
    table = pa.table({"ts": pa.array([r["ts"] for r in rows]).cast(pa.timestamp("s")),
                      "tenant_id": pa.array([r["tenant_id"] for r in rows], pa.uint32()),
                      "region": [r["region"] for r in rows]})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _bodies(row: dict[str, object]) -> Iterator[tuple[str, bytes, str]]:
    """The same one-row batch in every format a write path takes."""
    yield "json", json.dumps([row]).encode(), "application/json"
    yield "ndjson", json.dumps(row).encode() + b"\n", "application/x-ndjson"
    yield "csv", (f"ts,tenant_id,region\n{row['ts']},{row['tenant_id']},{row['region']}\n"
                  .encode()), "text/csv"
    yield "parquet", _parquet([row]), "application/vnd.apache.parquet"


def test_an_empty_claim_writes_no_rows_on_any_write_path(warehouse: Warehouse,
                                                        source: str) -> None:
    """The probe's reproduction: a token ``{"scope": "ingest", "regions": []}`` inserted a
    us-west row. An empty claim means no rows, as it does for reads; so does an API key's."""
    model = _model(warehouse, source)
    empty_key, empty_stored = _key({"regions": []})
    credentials = {"jwt": _token(sub="ann", regions=[]), "key": empty_key}
    with _client(model, warehouse, empty_stored) as client:
        for who, credential in credentials.items():
            assert client.post("/v1/query", json={"measures": ["events"]},
                               headers=_bearer(credential)).status_code == 403, who
            for fmt, body, content_type in _bodies(WEST):
                for url in (ROWS, f"{ROWS}?dry_run=true", f"{ROWS}?load=stage0001{fmt}"):
                    answer = client.post(url, content=body, headers={
                        **_bearer(credential), "content-type": content_type})
                    assert answer.status_code == 403, (who, fmt, url, answer.text)
                    error = answer.json()["error"]
                    assert error["code"] == "forbidden" and error["field"] == "source"
                    assert "claim 'regions' holds no values" in error["message"]
    assert _count(warehouse, source) == 0


def test_a_null_claim_writes_no_rows(warehouse: Warehouse, source: str) -> None:
    model = _model(warehouse, source)
    null = _token(sub="ann", regions=None)
    with _client(model, warehouse) as client:
        for fmt, body, content_type in _bodies(WEST):
            for url in (ROWS, f"{ROWS}?load=stage0002{fmt}"):
                answer = client.post(url, content=body, headers={
                    **_bearer(null), "content-type": content_type})
                assert answer.status_code == 403, (fmt, url, answer.text)
    assert _count(warehouse, source) == 0


def test_a_staged_load_belongs_to_the_credential_that_staged_it(warehouse: Warehouse,
                                                               source: str) -> None:
    """The probe's reproduction: a writer limited to us-east cancelled another writer's load,
    and committed a load a service key staged (putting us-west rows in)."""
    model = _model(warehouse, source)
    east, east_stored = _key({"regions": ["us-east"]})
    other_east, other_stored = _key({"regions": ["us-east"]})
    service, service_stored = _key()
    with _client(model, warehouse, east_stored, other_stored, service_stored) as client:
        load = "sharedid0001"
        assert client.post(f"{ROWS}?load={load}", json=[EAST],
                           headers=_bearer(east)).status_code == 200
        for intruder in (other_east, service, _token(sub="bob", regions=["us-east"])):
            cancel = client.delete(f"/v1/sources/events/loads/{load}", headers=_bearer(intruder))
            assert cancel.status_code == 404, cancel.text
            assert cancel.json()["error"]["code"] == "unknown_load"
            commit = client.post(f"/v1/sources/events/loads/{load}/commit",
                                 headers=_bearer(intruder))
            assert commit.status_code == 404, commit.text
        assert _count(warehouse, source) == 0
        committed = client.post(f"/v1/sources/events/loads/{load}/commit",
                                headers=_bearer(east))
        assert committed.status_code == 200 and committed.json()["inserted"] == 1
        assert _count(warehouse, source) == 1

        # a service key's load of us-west rows cannot be committed (or seen) by the east writer
        staged = "serviceload1"
        assert client.post(f"{ROWS}?load={staged}", json=[WEST],
                           headers=_bearer(service)).status_code == 200
        assert client.post(f"/v1/sources/events/loads/{staged}/commit",
                           headers=_bearer(east)).status_code == 404
        assert _count(warehouse, source) == 1
        # the same load id staged by two credentials is two loads
        assert client.post(f"{ROWS}?load={staged}", json=[EAST],
                           headers=_bearer(east)).status_code == 200
        mine = client.post(f"/v1/sources/events/loads/{staged}/commit", headers=_bearer(east))
        assert mine.status_code == 200 and mine.json()["inserted"] == 1
        theirs = client.post(f"/v1/sources/events/loads/{staged}/commit",
                             headers=_bearer(service))
        assert theirs.status_code == 200 and theirs.json()["inserted"] == 1
        assert _count(warehouse, source) == 3
        # a token's load is its subject's with its claims: another subject's token gets 404
        ann = _token(sub="ann", regions=["us-east"])
        assert client.post(f"{ROWS}?load=tokenload01", json=[EAST],
                           headers=_bearer(ann)).status_code == 200
        assert client.delete("/v1/sources/events/loads/tokenload01",
                             headers=_bearer(_token(sub="bob", regions=["us-east"]))
                             ).status_code == 404
        again = _token(sub="ann", regions=["us-east"])  # a refreshed token of the same caller
        assert client.delete("/v1/sources/events/loads/tokenload01",
                             headers=_bearer(again)).status_code == 200


def test_a_commit_checks_the_committers_claims(warehouse: Warehouse, source: str) -> None:
    """Rows staged while the source had no security cannot be committed by a credential whose
    claim (now enforced) excludes them."""
    east, east_stored = _key({"regions": ["us-east"]})
    with _client(_model(warehouse, source, OPEN), warehouse, east_stored) as client:
        assert client.post(f"{ROWS}?load=beforesec01", json=[EAST, WEST],
                           headers=_bearer(east)).status_code == 200
    with _client(_model(warehouse, source), warehouse, east_stored) as client:
        commit = client.post("/v1/sources/events/loads/beforesec01/commit",
                             headers=_bearer(east))
        assert commit.status_code == 403, commit.text
        assert commit.json()["error"]["field"] == "load"
        assert ("1 staged rows have a region outside the credential's claim 'regions'"
                in commit.json()["error"]["message"])
        assert _count(warehouse, source) == 0
        assert client.delete("/v1/sources/events/loads/beforesec01",
                             headers=_bearer(east)).status_code == 200
