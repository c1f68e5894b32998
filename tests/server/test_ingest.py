"""Ingestion through ``POST /v1/sources/{source}/rows``: good batches are visible at once in
every endpoint, a batch with one bad row is rejected whole with the row and field named."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlglot
from litestar.testing import TestClient

from semantic import load_model_text
from server.app import create_app
from server.operations import apply_model
from server.runtime import compile_against
from server.warehouse import Warehouse
from tests.support import model_text

MODEL = """
version: 1
rollup_database: {db}
sources:
  events:
    table: {db}.events
    time: ts
    dimensions:
      region: {{}}
      note: {{}}
    measures:
      events: {{agg: count}}
      revenue: {{agg: sum, column: amount}}
    rollups:
      totals: {{measures: [events, revenue]}}
      daily: {{dimensions: [region], grain: day, measures: [events, revenue]}}
endpoints:
  /api/totals:
    returns: object
    fields: {{n: events, rev: revenue}}
"""

ROWS = "/v1/sources/events/rows"


@pytest.fixture
def client(warehouse: Warehouse, database: str) -> Iterator[TestClient]:  # type: ignore[type-arg]
    warehouse.command(sqlglot.parse_one(
        f"CREATE TABLE {database}.events (ts DateTime, region String, amount Int32, "
        "note Nullable(String)) ENGINE = MergeTree ORDER BY ts", dialect="clickhouse"))
    model = load_model_text(model_text(MODEL, db=database), "test.yaml")
    apply_model(compile_against(model, warehouse), warehouse)
    with TestClient(app=create_app(model, warehouse)) as test_client:
        yield test_client


def _totals(client: TestClient) -> dict[str, object]:  # type: ignore[type-arg]
    return client.get("/api/totals").json()  # type: ignore[no-any-return]


def test_ingest_json_rows_visible_at_once(client: TestClient) -> None:  # type: ignore[type-arg]
    body = [{"ts": "2026-01-01T10:00:00Z", "region": "eu", "amount": 5, "note": None},
            {"ts": "2026-01-02 11:00:00", "region": "us", "amount": 7}]
    response = client.post(ROWS, json=body)
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] == 2
    assert _totals(client) == {"n": 2, "rev": 12}
    by_day = client.post("/v1/query", json={"measures": ["events"], "dimensions": ["region",
                                                                               "ts"],
                                            "grain": "day"}).json()["data"]
    assert by_day == [{"region": "eu", "ts": "2026-01-01", "events": 1},
                      {"region": "us", "ts": "2026-01-02", "events": 1}]


def test_ingest_csv_and_json_lines(client: TestClient) -> None:  # type: ignore[type-arg]
    csv_body = "ts,region,amount,note\n2026-01-01 00:00:00,eu,1,\n1767225600,us,2,x\n"
    response = client.post(ROWS, content=csv_body, headers={"content-type": "text/csv"})
    assert response.status_code == 200, response.text
    lines = '{"ts": "2026-01-03", "region": "eu", "amount": 3}\n\n' \
            '{"ts": "2026-01-04T00:00:00+01:00", "region": "eu", "amount": 4, "note": "y"}\n'
    response = client.post(ROWS, content=lines, headers={"content-type": "application/x-ndjson"})
    assert response.status_code == 200, response.text
    assert _totals(client) == {"n": 4, "rev": 10}
    notes = client.post("/v1/query", json={"measures": ["events"], "dimensions": ["note"]})
    assert notes.json()["data"] == [{"note": "x", "events": 1}, {"note": "y", "events": 1},
                                    {"note": None, "events": 2}]


@pytest.mark.parametrize(
    ("body", "content_type", "field", "message"),
    [
        ('[{"ts": "2026-01-01", "region": "eu", "amount": 1},'
         ' {"ts": "2026-01-01", "region": "eu", "amount": "lots"}]', "application/json",
         "rows[1].amount", "rows[1], column 'amount': expected an integer (Int32), got 'lots'"),
        ('[{"ts": "2026-01-01", "region": "eu", "amount": 1, "colour": "red"}]',
         "application/json", "rows[0].colour", "unknown column 'colour'"),
        ('[{"ts": "2026-01-01", "amount": 1}]', "application/json", "rows[0].region",
         "column 'region' is missing"),
        ('[{"ts": "2026-01-01", "region": null, "amount": 1}]', "application/json",
         "rows[0].region", "null is not allowed"),
        ('[{"ts": "yesterday", "region": "eu", "amount": 1}]', "application/json",
         "rows[0].ts", "expected a timestamp"),
        ('[{"ts": "2026-01-01", "region": "eu", "amount": 4294967296}]', "application/json",
         "rows[0].amount", "out of range for Int32"),
        ("ts,region,amount\n2026-01-01,eu,1\n2026-01-01,eu,x\n", "text/csv",
         "line 3.amount", "line 3, column 'amount'"),
        ("ts,region,amount\n2026-01-01,eu,1,9\n", "text/csv", "line 2", "more values"),
        ('{"ts": "2026-01-01", "region": "eu", "amount": 1}\nnot json\n',
         "application/x-ndjson", "line 2", "not JSON"),
        ("[]", "application/json", "rows", "no rows"),
        ("{}", "application/json", "body", "JSON array"),
        ("a,b", "application/xml", "content-type", "unsupported content type 'application/xml'"),
    ],
)
def test_ingest_rejects_bad_batch_whole(client: TestClient, body: str, content_type: str,  # type: ignore[type-arg]
                                        field: str, message: str) -> None:
    response = client.post(ROWS, content=body, headers={"content-type": content_type})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("invalid_rows", field)
    assert message in error["message"]
    assert _totals(client) == {"n": 0, "rev": 0}  # nothing of the batch was inserted


def test_ingest_unknown_source(client: TestClient) -> None:  # type: ignore[type-arg]
    response = client.post("/v1/sources/evnts/rows", json=[{"ts": "2026-01-01"}])
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "source"
    assert "did you mean 'events'" in response.json()["error"]["message"]


def _parquet(warehouse: Warehouse, select: str) -> bytes:
    """Parquet bytes written by ClickHouse itself."""
    with warehouse._client() as client:  # the test needs a raw export; the app never does
        return bytes(client.raw_query(f"{select} FORMAT Parquet"))


def test_ingest_parquet_checked_like_other_formats(client: TestClient,  # type: ignore[type-arg]
                                                   warehouse: Warehouse) -> None:
    good = _parquet(warehouse, "SELECT toDateTime('2026-01-01 10:00:00', 'UTC') AS ts, "
                               "'eu' AS region, toInt32(number) AS amount, "
                               "CAST(NULL, 'Nullable(String)') AS note FROM numbers(3)")
    parquet = {"content-type": "application/vnd.apache.parquet"}
    checked = client.post(f"{ROWS}?dry_run=true", content=good, headers=parquet)
    assert checked.status_code == 200, checked.text
    assert (checked.json()["inserted"], checked.json()["checked"]) == (0, 3)
    assert _totals(client) == {"n": 0, "rev": 0}  # a dry run inserts nothing
    response = client.post(ROWS, content=good, headers=parquet)
    assert response.status_code == 200, response.text
    assert _totals(client) == {"n": 3, "rev": 3}
    # A file without the region column: the row and field are named, nothing is inserted.
    missing = _parquet(warehouse, "SELECT toDateTime('2026-01-01 10:00:00', 'UTC') AS ts, "
                                  "toInt32(1) AS amount")
    response = client.post(ROWS, content=missing, headers=parquet)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "rows[0].region"
    broken = client.post(ROWS, content=b"PAR1 not really", headers=parquet)
    assert broken.status_code == 400
    assert broken.json()["error"]["field"] == "body"
    assert "could not read the Parquet data" in broken.json()["error"]["message"]
    assert _totals(client) == {"n": 3, "rev": 3}
