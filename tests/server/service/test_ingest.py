"""Ingestion through ``POST /v1/sources/{source}/rows``: good batches are visible at once in
every endpoint, a batch with one bad row is rejected whole with the row and field named."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from litestar.testing import TestClient

from semantic import load_model_text
from server.app import create_app
from server.settings import OperatingLimits
from server.warehouse.statements import Warehouse
from tests.support import EVENTS_HEAD, LOOPBACK, model_text, served_events

MODEL = EVENTS_HEAD + """\
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
    with served_events(warehouse, database, "ts DateTime, region String, amount Int32, "
                       "note Nullable(String), score Nullable(Float64)", MODEL) as test_client:
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
        ("<a/>", "application/xml", "content-type",
         "unsupported content type 'application/xml'"),
        # a carriage return inside a field, and a field past the csv module's size limit
        ("ts,region,amount\n\u0093,\rx\n", "text/csv", "line 2", "fewer values"),
        ("ts,region,amount\n" + "x" * 200_000 + "\n", "text/csv", "body",
         "the body is not valid CSV: field larger than field limit"),
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
    with warehouse.pool.guarded(60, "an export", select) as client:  # the app never exports
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
    assert broken.json()["error"]["message"] == (
        "the body is not a Parquet file this source can read (it must hold the table's "
        "columns: ts, region, amount, note, score)")
    assert _totals(client) == {"n": 3, "rev": 3}


@pytest.mark.parametrize(
    ("value", "column", "message"),
    [
        ("-1", "ts", "-1 is out of range for DateTime (1970-01-01 00:00:00 to 2106-02-07"),
        ('"1969-12-31 23:59:59"', "ts", "out of range for DateTime"),
        ('"2106-02-08T00:00:00Z"', "ts", "out of range for DateTime"),
        ('"9999-12-31 23:59:59"', "ts", "out of range for DateTime"),
        ("1e30", "ts", "1e+30 seconds since the epoch is not a representable time"),
        ("NaN", "score", "nan is not a finite number"),
        ("1e400", "score", ": inf is not a finite number"),
        ("-Infinity", "score", ": -inf is not a finite number"),
    ],
)
def test_ingest_values_beyond_the_column_rejected_by_dry_run_and_insert_alike(
        client: TestClient, value: str, column: str, message: str) -> None:  # type: ignore[type-arg]
    row = {"ts": '"2026-01-01"', "region": '"eu"', "amount": "1", "score": "0.5"}
    row[column] = value
    body = "[{" + ", ".join(f'"{k}": {v}' for k, v in row.items()) + "}]"
    for query in ("?dry_run=true", ""):
        response = client.post(f"{ROWS}{query}", content=body,
                               headers={"content-type": "application/json"})
        assert response.status_code == 400, response.text
        assert response.json()["error"]["field"] == f"rows[0].{column}"
        assert message in response.json()["error"]["message"]
    assert _totals(client) == {"n": 0, "rev": 0}
    edge = client.post(ROWS, json=[{"ts": "2106-02-07T06:28:15Z", "region": "eu", "amount": 1},
                                   {"ts": 0, "region": "eu", "amount": 2}])
    assert edge.status_code == 200, edge.text  # the first and last instants a DateTime holds


def _limited(warehouse: Warehouse, database: str, **limits: object) -> TestClient:  # type: ignore[type-arg]
    model = load_model_text(model_text(MODEL, db=database), "test.yaml")
    bounded = Warehouse(warehouse.dsn, warehouse.location, limits=OperatingLimits(**limits))  # type: ignore[arg-type]
    return TestClient(base_url=LOOPBACK, app=create_app(model, bounded))


def test_ingest_nonfinite_floats_accepted_only_when_configured(
        client: TestClient, warehouse: Warehouse, database: str) -> None:  # type: ignore[type-arg]
    body = '[{"ts": "2026-01-01", "region": "eu", "amount": 1, "score": NaN}]'
    json_type = {"content-type": "application/json"}
    assert client.post(ROWS, content=body, headers=json_type).status_code == 400
    with _limited(warehouse, database, allow_nonfinite=True) as allowing:
        response = allowing.post(ROWS, content=body, headers=json_type)
        assert response.status_code == 200, response.text
    assert _totals(client) == {"n": 1, "rev": 1}


def test_ingest_body_and_batch_limits_agree_and_say_which_setting(
        warehouse: Warehouse, database: str, client: TestClient) -> None:  # type: ignore[type-arg]
    rows = [{"ts": "2026-01-01", "region": "eu", "amount": i} for i in range(3)]
    with _limited(warehouse, database, max_body_bytes=150, max_batch_rows=2) as small:
        too_big = small.post(ROWS, json=rows * 2)
        assert too_big.status_code == 413
        error = too_big.json()["error"]
        assert (error["code"], error["field"]) == ("body_too_large", "body")
        assert "150 bytes (SEMANTIC_MAX_BODY_BYTES)" in error["message"]
        too_many = small.post(ROWS, content="ts,region,amount\n" + "2026-01-01,eu,1\n" * 3,
                              headers={"content-type": "text/csv"})
        assert too_many.status_code == 400
        assert "at most 2 (SEMANTIC_MAX_BATCH_ROWS)" in too_many.json()["error"]["message"]
    assert _totals(client) == {"n": 0, "rev": 0}


def test_ingest_staged_load_goes_in_whole_on_commit(client: TestClient) -> None:  # type: ignore[type-arg]
    load = "load0001abcd"
    for amount in (1, 2):
        staged = client.post(f"{ROWS}?load={load}", json=[
            {"ts": "2026-01-01", "region": "eu", "amount": amount}] * 2)
        assert staged.status_code == 200, staged.text
        assert (staged.json()["inserted"], staged.json()["staged"]) == (0, 2)
    assert _totals(client) == {"n": 0, "rev": 0}  # nothing reaches the source before commit
    committed = client.post(f"/v1/sources/events/loads/{load}/commit")
    assert committed.status_code == 200, committed.text
    assert committed.json()["inserted"] == 4
    assert _totals(client) == {"n": 4, "rev": 6}
    again = client.post(f"/v1/sources/events/loads/{load}/commit")
    assert again.status_code == 404 and again.json()["error"]["code"] == "unknown_load"
    # a cancelled load leaves nothing behind
    assert client.post(f"{ROWS}?load=load0002abcd", json=rows_of(1)).status_code == 200
    assert client.delete("/v1/sources/events/loads/load0002abcd").status_code == 200
    assert client.post("/v1/sources/events/loads/load0002abcd/commit").status_code == 404
    assert _totals(client) == {"n": 4, "rev": 6}
    bad_id = client.post(f"{ROWS}?load=x';DROP", json=rows_of(1))
    assert bad_id.status_code == 400 and bad_id.json()["error"]["field"] == "load"


def rows_of(count: int) -> list[dict[str, object]]:
    return [{"ts": "2026-01-01", "region": "eu", "amount": 10}] * count

