"""Answers in CSV, Parquet and Arrow: read back (csv module, pyarrow) and compared with the
JSON answer of the same query, on ``/v1/query`` and the generated endpoints; format
negotiation; headers; the result cache; a large answer streamed whole."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
from litestar.testing import TestClient
from sqlglot import parse_one

from engine.query.limits import QueryLimits
from engine.query.request import Query
from engine.serving.output import answer_statement
from semantic import load_model_text
from server.app import TABLE_HEADER, create_app
from server.operations.apply import apply_model
from server.runtime.compile import compile_against
from server.service.answers import CACHE_HEADER
from server.service.formatted import CACHEABLE_BYTES, read_ahead, read_head
from server.settings import Limits, OperatingLimits
from server.warehouse.statements import Warehouse
from tests.server.conftest import TYPED_MODEL, Served
from tests.support import EVENTS_HEAD, LOOPBACK, build, fresh_database, insert_rows, model_text

Client = TestClient  # type: ignore[type-arg]

#: /v1/query bodies over the typed model of ``served``: rollups and the raw table, every
#: dimension type, an hour grain in another zone (instants), order, limit and offset
QUERIES: list[dict[str, Any]] = [
    {"measures": ["events", "revenue", "users"]},
    {"measures": ["events", "revenue"], "dimensions": ["region", "ts"], "grain": "day",
     "order": ["region", "-ts"]},
    {"measures": ["events"], "dimensions": ["region", "level", "ts"], "grain": "hour",
     "timezone": "Asia/Kolkata", "order": ["ts", "region"]},
    {"measures": ["revenue", "users"], "dimensions": ["plan", "price", "day", "id"],
     "order": ["id"], "force_raw": True},
    {"measures": ["events"], "dimensions": ["region"], "order": ["-events", "region"],
     "limit": 2, "offset": 1},
    {"measures": ["events"], "dimensions": ["region"],
     "filters": [{"member": "region", "op": "eq", "value": "nowhere"}]},
    # a comparison: the JSON answer computes the changes from the rows, the formats in SQL
    {"measures": ["events", "revenue"], "dimensions": ["region", "ts"], "grain": "day",
     "time_range": {"from": "2026-01-01", "to": "2026-02-03"}, "compare": {"offset": "1 day"},
     "order": ["region", "ts"]},
    {"measures": ["revenue", "events"], "dimensions": ["ts"], "grain": "month",
     "time_range": {"from": "2026-01-01", "to": "2026-03-01"},
     "compare": {"offset": "previous_period"}, "order": ["-revenue__change_ratio"]},
]


def _csv(body: bytes) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(body.decode())))
    return rows[0], rows[1:]


def _table(body: bytes, answer_format: str) -> pa.Table:
    if answer_format == "parquet":
        return pq.read_table(io.BytesIO(body))
    return ipc.open_stream(body).read_all()


def _same_text(json_value: Any, text: str) -> bool:
    """A JSON value and its CSV field: null is empty, numbers equal as numbers, an instant
    is the wall-clock time of its zone."""
    if json_value is None:
        return text == ""
    if isinstance(json_value, bool):
        return text == str(int(json_value))
    if isinstance(json_value, int | float):
        return math.isclose(float(text), json_value, rel_tol=1e-12)
    if isinstance(json_value, str) and "T" in json_value and json_value[:4].isdigit():
        return datetime.fromisoformat(json_value).replace(tzinfo=None) == \
            datetime.fromisoformat(text)
    return bool(json_value == text)


def _same_value(json_value: Any, value: Any) -> bool:
    """A JSON value and its Arrow value (as pyarrow's ``to_pylist`` gives it)."""
    if json_value is None or value is None:
        return json_value is None and value is None
    if isinstance(value, datetime):
        return datetime.fromisoformat(json_value) == value
    if isinstance(value, date):
        return bool(json_value == value.isoformat())
    if isinstance(value, int | float | Decimal):
        return math.isclose(float(value), json_value, rel_tol=1e-12)
    if isinstance(value, UUID):  # Arrow's and Parquet's UUID type
        return bool(json_value == str(value))
    return bool(json_value == value)


def assert_csv_matches(body: bytes, rows: list[dict[str, Any]], names: list[str]) -> None:
    header, records = _csv(body)
    assert header == names
    assert len(records) == len(rows)
    for record, row in zip(records, rows, strict=True):
        assert all(_same_text(row[n], t) for n, t in zip(names, record, strict=True)), \
            (record, row)


def assert_table_matches(table: pa.Table, rows: list[dict[str, Any]],
                         names: list[str]) -> None:
    assert table.column_names == names
    found = table.to_pylist()
    assert len(found) == len(rows)
    for record, row in zip(found, rows, strict=True):
        assert all(_same_value(row[n], record[n]) for n in names), (record, row)


def test_query_answers_match_json_in_every_format(served: Served) -> None:
    client = served.client
    for body in QUERIES:
        answer = client.post("/v1/query", json=body)
        assert answer.status_code == 200, answer.text
        rows, meta = answer.json()["data"], answer.json()["meta"]
        names = meta["columns"]
        table = answer.headers[TABLE_HEADER]
        csv_answer = client.post("/v1/query?format=csv", json=body)
        assert csv_answer.status_code == 200, csv_answer.text
        assert csv_answer.headers["content-type"] == "text/csv; charset=utf-8"
        assert_csv_matches(csv_answer.content, rows, names)
        assert csv_answer.headers[TABLE_HEADER] == table
        assert "content-disposition" not in csv_answer.headers
        for answer_format in ("parquet", "arrow"):
            binary = client.post("/v1/query", json={**body, "format": answer_format})
            assert binary.status_code == 200, binary.text
            assert binary.headers[TABLE_HEADER] == table
            assert binary.headers["x-request-id"]
            extension = "parquet" if answer_format == "parquet" else "arrows"
            assert binary.headers["content-disposition"] == \
                f'attachment; filename="events.{extension}"'
            assert_table_matches(_table(binary.content, answer_format), rows, names)


def test_instants_are_shown_in_the_query_zone(served: Served) -> None:
    body = {"measures": ["events"], "dimensions": ["ts"], "grain": "hour",
            "timezone": "America/New_York", "order": ["ts"], "limit": 1}
    assert served.client.post("/v1/query", json=body).json()["data"] == [
        {"ts": "2026-01-01T05:00:00-05:00", "events": 1}]
    text = served.client.post("/v1/query?format=csv", json=body).text
    assert text == '"ts","events"\n"2026-01-01 05:00:00",1\n'
    arrow = _table(served.client.post("/v1/query?format=arrow", json=body).content, "arrow")
    assert str(arrow.schema.field("ts").type) == "timestamp[s, tz=America/New_York]"


def test_endpoints_answer_every_format(served: Served) -> None:
    client = served.client
    rows = client.get("/api/by-region").json()
    names = ["region", "day", "n"]
    csv_answer = client.get("/api/by-region?format=csv")
    assert csv_answer.headers[TABLE_HEADER] == client.get("/api/by-region").headers[TABLE_HEADER]
    assert_csv_matches(csv_answer.content, rows, names)
    for answer_format in ("parquet", "arrow"):
        binary = client.get(f"/api/by-region?format={answer_format}&limit=50")
        assert binary.status_code == 200, binary.text
        assert binary.headers["content-disposition"].startswith(
            'attachment; filename="api-by-region.')
        assert_table_matches(_table(binary.content, answer_format), rows, names)
    # filtered by a dimension parameter, and an object endpoint as one row
    eu = client.get("/api/by-region", params={"region": "eu", "format": "csv"}).text
    assert eu == '"region","day","n"\n"eu","2026-01-02",1\n'
    assert client.get("/api/totals").json() == {"n": 4, "rev": 42}
    assert client.get("/api/totals", headers={"Accept": "text/csv"}).text == '"n","rev"\n4,42\n'


def test_format_parameter_wins_over_accept(served: Served) -> None:
    client = served.client
    body = {"measures": ["events"]}
    csv_accept = {"Accept": "text/csv"}
    assert client.post("/v1/query", json=body, headers=csv_accept).text == '"events"\n4\n'
    for accept in ("application/x-parquet", "application/vnd.apache.parquet",
                   "text/html;q=0.9, application/vnd.apache.parquet"):
        answer = client.post("/v1/query", json=body, headers={"Accept": accept})
        assert answer.headers["content-type"] == "application/vnd.apache.parquet"
        assert pq.read_table(io.BytesIO(answer.content)).to_pylist() == [{"events": 4}]
    arrow = client.post("/v1/query?format=arrow", json=body, headers=csv_accept)
    assert arrow.headers["content-type"] == "application/vnd.apache.arrow.stream"
    as_json = client.post("/v1/query", json={**body, "format": "json"}, headers=csv_accept)
    assert as_json.headers["content-type"] == "application/json"
    assert as_json.json()["data"] == [{"events": 4}]
    for accept in ("*/*", "text/html, application/xhtml+xml, */*;q=0.8", "application/*"):
        assert client.post("/v1/query", json=body, headers={"Accept": accept}).json()[
            "data"] == [{"events": 4}]
    assert client.post("/v1/query", json=body, headers={"Accept": "text/*"}).text == \
        '"events"\n4\n'
    endpoint = client.get("/api/totals?format=json", headers=csv_accept)
    assert endpoint.json() == {"n": 4, "rev": 42}
    assert endpoint.headers["vary"] == "Accept"


def test_unknown_formats_are_refused_naming_the_field(served: Served) -> None:
    client = served.client
    body = {"measures": ["events"]}
    for answer in (client.post("/v1/query?format=xml", json=body),
                   client.post("/v1/query", json={**body, "format": "xml"}),
                   client.get("/api/totals?format=xml")):
        assert answer.status_code == 400
        error = answer.json()["error"]
        assert error["field"] == "format"
        assert error["message"] == ("unknown format 'xml'; use one of json, csv, parquet, "
                                    "arrow")
    twice = client.post("/v1/query?format=csv", json={**body, "format": "parquet"})
    assert twice.status_code == 400 and twice.json()["error"]["field"] == "format"
    typed = client.post("/v1/query", json={**body, "format": 3})
    assert typed.status_code == 400 and typed.json()["error"]["field"] == "format"
    for answer in (client.post("/v1/query", json=body, headers={"Accept": "application/xml"}),
                   client.get("/api/totals", headers={"Accept": "text/csv;q=0, image/png"})):
        assert answer.status_code == 406
        assert answer.headers["content-type"] == "application/json"
        error = answer.json()["error"]
        assert error["code"] == "not_acceptable" and error["field"] == "Accept"
    explained = client.post("/v1/explain", json={**body, "format": "xml"})
    assert explained.status_code == 400 and explained.json()["error"]["field"] == "format"


def test_formatted_answers_obey_row_caps(served: Served) -> None:
    model = load_model_text(model_text(TYPED_MODEL, db=served.database), "test.yaml")
    limited = create_app(model, served.warehouse, limits=Limits(QueryLimits(rows=2)))
    with TestClient(base_url=LOOPBACK, app=limited) as client:
        body = {"measures": ["events"], "dimensions": ["region"], "order": ["region"]}
        too_many = client.post("/v1/query?format=csv", json={**body, "limit": 3})
        assert too_many.status_code == 400 and too_many.json()["error"]["field"] == "limit"
        assert client.get("/api/by-region?format=parquet&limit=3").status_code == 400
        # without a limit, the default limit, as in JSON
        rows = client.post("/v1/query", json=body).json()["data"]
        assert len(rows) == 3
        assert_csv_matches(client.post("/v1/query?format=csv", json=body).content, rows,
                           ["region", "events"])


BIG_MODEL = EVENTS_HEAD + """\
    dimensions:
      id: {{}}
      region: {{}}
      minute: {{sql: "toStartOfMinute(ts)"}}
    measures:
      events: {{agg: count}}
      revenue: {{agg: sum, column: amount}}
      avg_big: {{agg: avg, column: amount, filter: amount > 1000}}
    rollups:
      by_region_day: {{dimensions: [region], grain: day, measures: [events, revenue]}}
endpoints:
  /api/ids:
    fields: {{id: id, n: events}}
    order: [id]
"""
BIG_ROWS = 120_000


@dataclass
class Big:
    client: Client
    database: str
    warehouse: Warehouse


@pytest.fixture(scope="module")
def big(warehouse: Warehouse) -> Iterator[Big]:
    """120,000 events with distinct ids, and a server allowing answers of 100,000 rows."""
    with fresh_database(warehouse, "fmt") as database:
        warehouse.command(parse_one(
            f"CREATE TABLE {database}.events (ts DateTime, id String, region String, "
            "amount Int64) ENGINE = MergeTree ORDER BY ts", dialect="clickhouse"))
        warehouse.command(parse_one(
            f"INSERT INTO {database}.events SELECT toDateTime('2026-01-01') + number * 7, "
            "concat('evt_', leftPad(toString(number), 6, '0')), "
            "['eu', 'us', 'asia'][number % 3 + 1], number % 100 "
            f"FROM numbers({BIG_ROWS})", dialect="clickhouse"))
        model = load_model_text(model_text(BIG_MODEL, db=database), "test.yaml")
        apply_model(compile_against(model, warehouse), warehouse)
        limits = Limits(QueryLimits(rows=100_000))
        app = create_app(model, warehouse, limits=limits)
        with TestClient(base_url=LOOPBACK, app=app) as client:
            yield Big(client, database, warehouse)


def test_large_answers_stream_whole(big: Big) -> None:
    body = {"measures": ["events", "revenue"], "dimensions": ["id"], "order": ["-id"],
            "limit": 100_000}
    rows = big.client.post("/v1/query", json=body).json()["data"]
    assert len(rows) == 100_000 and rows[0]["id"] == "evt_119999"
    for answer_format in ("csv", "parquet", "arrow"):
        with big.client.stream("POST", f"/v1/query?format={answer_format}", json=body) as answer:
            assert answer.status_code == 200
            assert answer.headers[CACHE_HEADER] == "miss"
            content = answer.read()  # the test client gathers the chunks of a stream
        # past CACHEABLE_BYTES an answer is sent as it is read (no length) and not kept;
        # compressed Parquet of these rows stays below it, and is kept
        streamed = len(content) > CACHEABLE_BYTES
        assert streamed or answer_format == "parquet"
        assert ("content-length" in answer.headers) is not streamed
        if answer_format == "csv":
            assert_csv_matches(content, rows, ["id", "events", "revenue"])
        else:
            assert_table_matches(_table(content, answer_format), rows, ["id", "events", "revenue"])
        again = big.client.post(f"/v1/query?format={answer_format}", json=body)
        assert again.headers[CACHE_HEADER] == ("miss" if streamed else "hit")
        assert again.content == content
    endpoint = big.client.get("/api/ids?format=csv&limit=100000")
    assert "content-length" not in endpoint.headers
    header, records = _csv(endpoint.content)
    assert header == ["id", "n"] and len(records) == 100_000
    assert records[0] == ["evt_000000", "1"] and records[-1] == ["evt_099999", "1"]


def test_warehouse_streams_csv_in_chunks(big: Big) -> None:
    _, compiled, runtime = build(big.warehouse, model_text(BIG_MODEL, db=big.database))
    plan = runtime.plan(Query("events", ("events",), ("id",), limit=100_000))
    statement = answer_statement(plan, compiled.sources["events"])
    chunks = big.warehouse.stream(statement, plan.parameters, "CSV", raw=True,
                                  chunk_bytes=64 * 1024)
    first = next(chunks)
    assert 0 < len(first) <= 64 * 1024
    rest = list(chunks)
    assert len(rest) > 10
    assert (first + b"".join(rest)).count(b"\n") == 100_000


def test_a_slow_reader_holds_memory_not_a_connection(big: Big) -> None:
    """The rest of a large answer is read from ClickHouse whatever the download's pace, so
    the connection is free again while the caller still reads."""
    one = Warehouse(big.warehouse.dsn, big.warehouse.location,
                    limits=OperatingLimits(pool_size=1, queue_timeout=30))
    _, compiled, runtime = build(one, model_text(BIG_MODEL, db=big.database))
    plan = runtime.plan(Query("events", ("events",), ("id",), limit=100_000))
    chunks = one.stream(answer_statement(plan, compiled.sources["events"]), plan.parameters,
                        "CSV", raw=True)
    head: list[bytes] = []
    rest = read_head(chunks, head)
    assert rest is not None
    queued = read_ahead(rest)  # nobody reads it yet
    assert one.query(parse_one("SELECT 1", dialect="clickhouse")).rows == [(1,)]
    body = b"".join(head) + b"".join(iter(queued.get, None))
    assert body.count(b"\n") == 100_000


def test_nan_is_null_and_other_datetimes_are_timestamps(big: Big) -> None:
    body = {"measures": ["events", "avg_big"], "dimensions": ["region", "minute"],
            "order": ["minute", "region"], "limit": 3}
    rows = big.client.post("/v1/query", json=body).json()["data"]
    assert [row["avg_big"] for row in rows] == [None, None, None]
    assert_csv_matches(big.client.post("/v1/query?format=csv", json=body).content, rows,
                       ["region", "minute", "events", "avg_big"])
    arrow = _table(big.client.post("/v1/query?format=arrow", json=body).content, "arrow")
    assert arrow.column("avg_big").to_pylist() == [None, None, None]
    assert pa.types.is_timestamp(arrow.schema.field("minute").type)


def test_cached_formatted_answers_are_never_stale(warehouse: Warehouse, database: str) -> None:
    warehouse.command(parse_one(f"CREATE TABLE {database}.events (ts DateTime, id String, "
                                "region String, amount Int64) ENGINE = MergeTree ORDER BY ts",
                                dialect="clickhouse"))
    insert_rows(warehouse, f"{database}.events", [("2026-01-01 00:00:00", "a", "eu", 5)])
    model = load_model_text(model_text(BIG_MODEL, db=database), "test.yaml")
    apply_model(compile_against(model, warehouse), warehouse)
    body = {"measures": ["events", "revenue"], "dimensions": ["region"], "order": ["region"]}
    with TestClient(base_url=LOOPBACK, app=create_app(model, warehouse)) as client:
        first = client.post("/v1/query?format=csv", json=body)
        assert first.headers[CACHE_HEADER] == "miss"
        assert first.text == '"region","events","revenue"\n"eu",1,5\n'
        again = client.post("/v1/query?format=csv", json=body)
        assert again.headers[CACHE_HEADER] == "hit" and again.text == first.text
        # the same query in another format is another entry
        assert client.post("/v1/query?format=parquet", json=body).headers[CACHE_HEADER] == "miss"
        assert client.post("/v1/query", json=body).headers[CACHE_HEADER] == "miss"
        ingested = client.post("/v1/sources/events/rows", json=[
            {"ts": "2026-01-02 00:00:00", "id": "b", "region": "us", "amount": 7}])
        assert ingested.status_code == 200, ingested.text
        fresh = client.post("/v1/query?format=csv", json=body)
        assert fresh.headers[CACHE_HEADER] == "miss"
        assert fresh.text == '"region","events","revenue"\n"eu",1,5\n"us",1,7\n'
        parquet = client.post("/v1/query", json=body, headers={"Accept": "application/x-parquet"})
        assert pq.read_table(io.BytesIO(parquet.content)).to_pylist() == [
            {"region": "eu", "events": 1, "revenue": 5}, {"region": "us", "events": 1,
                                                            "revenue": 7}]


def test_openapi_lists_the_formats(served: Served) -> None:
    document = served.client.get("/openapi.json").json()
    for path, method in (("/v1/query", "post"), ("/api/by-region", "get")):
        operation = document["paths"][path][method]
        assert set(operation["responses"]["200"]["content"]) == {
            "application/json", "text/csv", "application/vnd.apache.parquet",
            "application/vnd.apache.arrow.stream"}
        assert "406" in operation["responses"]
        assert any(p["name"] == "format" for p in operation["parameters"])
    assert "text/csv" not in document["paths"]["/v1/explain"]["post"]["responses"]["200"][
        "content"]
