"""Metrics at /metrics, the request log, per-answer statistics and the values API, on a small
data set in the real embedded engine."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlglot import exp

from semantic import load_model_text
from server.app import create_app
from server.observability.logs import make_handler
from server.observability.metrics import WarehouseHealth
from server.warehouse.statements import Warehouse
from tests.support import (
    EVENTS_HEAD,
    LOOPBACK,
    model_text,
    served_events,
)

MODEL = EVENTS_HEAD + """\
    dimensions:
      region: {{}}
      tier: {{}}
    measures:
      events: {{agg: count}}
      revenue: {{agg: sum, column: amount}}
    rollups:
      by_region_day: {{dimensions: [region], grain: day, measures: [events, revenue]}}
endpoints:
  /api/totals:
    returns: object
    fields: {{n: events}}
"""

#: 120 rows in 30 region-days
ROWS = [(f"2026-01-{1 + i % 10:02d} {i % 24:02d}:00:00", ("us", "eu", "asia")[i % 3],
         ("free", "pro")[i % 2], i) for i in range(120)]

Client = TestClient  # type: ignore[type-arg]


@pytest.fixture
def client(warehouse: Warehouse, database: str) -> Iterator[Client]:
    broken = model_text(MODEL, db=database).replace("agg: sum", "agg: summ")
    with served_events(warehouse, database, "ts DateTime, region String, tier String, "
                       "amount Int64", MODEL, ROWS,
                       load=lambda: load_model_text(broken, "test.yaml")) as test:
        yield test


def _scrape(client: Client) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples}


def _value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
           **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_counters_move_with_requests(client: Client, database: str) -> None:
    before = _scrape(client)
    body = {"measures": ["events"], "dimensions": ["region"]}
    assert client.post("/v1/query", json=body).status_code == 200
    assert client.post("/v1/query", json={**body, "force_raw": True}).status_code == 200
    raw = {"measures": ["events"], "dimensions": ["tier"]}  # no rollup has tier
    assert client.post("/v1/query", json=raw).status_code == 200
    assert client.post("/v1/query", json={"measures": ["nope"]}).status_code == 400
    assert client.get("/api/totals").json() == {"n": 120}
    rows = [{"ts": "2026-02-01T00:00:00", "region": "us", "tier": "pro", "amount": 1}] * 3
    assert client.post("/v1/sources/events/rows", json=rows).status_code == 200
    after = _scrape(client)

    def moved(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    query = {"method": "POST", "route": "/v1/query"}
    assert moved("semantic_http_requests_total", **query, status="200") == 3
    assert moved("semantic_http_requests_total", **query, status="400") == 1
    assert moved("semantic_http_request_duration_seconds_count", **query) == 4
    assert moved("semantic_http_requests_total", method="GET", route="/api/totals",
                 status="200") == 1
    # the query by region and the endpoint's totals come from the rollup
    assert moved("semantic_answers_total", source="events", rollup="by_region_day") == 2
    assert moved("semantic_answers_total", source="events", rollup="") == 2
    assert moved("semantic_raw_fallbacks_total", source="events") == 1  # not the forced one
    assert moved("semantic_ingested_rows_total", source="events") == 3
    # the forced raw query alone reads the 120 source rows
    assert moved("semantic_clickhouse_read_rows_total") >= 120
    assert moved("semantic_clickhouse_read_bytes_total") > 0
    assert moved("semantic_clickhouse_query_duration_seconds_count", kind="query") >= 4
    assert _value(after, "semantic_warehouse_up") == 1
    table = next(dict(labels)["table"] for name, labels in after
                 if name == "semantic_rollup_ready")
    assert _value(after, "semantic_rollup_ready", source="events", rollup="by_region_day",
                  table=table) == 1
    assert _value(after, "semantic_rollup_rows", source="events", rollup="by_region_day") > 0
    age = _value(after, "semantic_source_newest_data_age_seconds", source="events")
    assert 0 < age < 10 * 365 * 86400  # the newest row is 2026-02-01


def test_metrics_result_cache_hits_and_misses(client: Client) -> None:
    before = _scrape(client)
    body = {"measures": ["events"], "dimensions": ["tier"], "limit": 7}
    first = client.post("/v1/query", json=body)
    second = client.post("/v1/query", json=body)
    after = _scrape(client)

    def moved(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert first.status_code == second.status_code == 200
    assert first.json()["data"] == second.json()["data"]
    assert moved("semantic_result_cache_lookups_total", result="miss") == 1
    assert moved("semantic_result_cache_lookups_total", result="hit") == 1
    assert _value(after, "semantic_result_cache_entries") >= 1
    assert 0 < _value(after, "semantic_result_cache_bytes") <= _value(
        after, "semantic_result_cache_max_bytes")


def test_metrics_unmatched_routes_are_one_label(client: Client) -> None:
    before = _scrape(client)
    response = client.put("/no/such/route")
    assert response.status_code in (404, 405)
    assert response.headers["X-Request-Id"]
    after = _scrape(client)
    labels = {"method": "PUT", "route": "unmatched", "status": str(response.status_code)}
    assert _value(after, "semantic_http_requests_total", **labels) - \
        _value(before, "semantic_http_requests_total", **labels) == 1


def test_query_meta_carries_clickhouse_statistics(client: Client, warehouse: Warehouse,
                                                  database: str) -> None:
    body = {"measures": ["events"], "dimensions": ["region"]}
    routed = client.post("/v1/query", json=body).json()["meta"]
    raw = client.post("/v1/query", json={**body, "force_raw": True}).json()["meta"]
    rollup_rows = warehouse.query(exp.select("count()").from_(routed["table"])).rows[0][0]
    # ClickHouse reads the whole (tiny) tables: every rollup row, every source row
    assert routed["statistics"]["rows_read"] == rollup_rows == 30
    assert raw["statistics"]["rows_read"] == 120
    assert raw["statistics"]["bytes_read"] > routed["statistics"]["bytes_read"] > 0
    assert raw["statistics"]["elapsed_ms"] >= 0


def test_explain_estimates_before_running(client: Client, database: str) -> None:
    body = {"measures": ["events"], "dimensions": ["region"],
            "time_range": {"from": "2026-01-02", "to": "2026-01-05"}}
    explained = client.post("/v1/explain", json=body).json()
    chosen = next(c for c in explained["candidates"] if c["chosen"])
    estimate = explained["estimate"]
    assert estimate["read_bytes"] == chosen["read_bytes"] > 0
    assert [t["table"] for t in estimate["tables"]] == [explained["table"]]
    assert estimate["rows"] == estimate["tables"][0]["rows"] > 0


def test_values_api_lists_distinct_values_through_rollups(client: Client, database: str) -> None:
    answer = client.get("/v1/sources/events/dimensions/region/values").json()
    assert answer["values"] == ["asia", "eu", "us"]
    assert answer["truncated"] is False
    assert answer["table"].startswith(f"{database}.events_by_region_day_")
    assert client.get("/v1/sources/events/dimensions/region/values?limit=2").json() == {
        **answer, "values": ["asia", "eu"], "truncated": True}
    tiers = client.get("/v1/sources/events/dimensions/tier/values?contains=r").json()
    assert tiers["values"] == ["free", "pro"]
    assert tiers["table"] == f"{database}.events"
    for path, field in (("region/values?limit=0", "limit"), ("region/values?limit=x", "limit"),
                        ("regio/values", "dimension"), ("ts/values", "dimension"),
                        ("region/values?sort=1", "sort")):
        response = client.get(f"/v1/sources/events/dimensions/{path}")
        assert response.status_code == 400, path
        assert response.json()["error"]["field"] == field
    assert client.get("/v1/sources/nope/dimensions/region/values").json()["error"][
        "field"] == "source"


@contextmanager
def captured(fmt: str) -> Iterator[io.StringIO]:
    """Every log line at INFO and above, through the handler ``configure_logging`` installs
    (the one format, the request-id filter), written to a string."""
    root = logging.getLogger()
    stream = io.StringIO()
    handler, level = make_handler(fmt, stream), root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    with captured("json") as stream:
        yield stream


def test_request_log_one_json_line_per_request_with_its_id(client: Client,
                                                           log_lines: io.StringIO) -> None:
    body = {"measures": ["events"], "dimensions": ["region"]}
    response = client.post("/v1/query", json=body, headers={"X-Request-Id": "req-obs-1"})
    refused = client.post("/v1/admin/reload", headers={"X-Request-Id": "req-obs-2"})
    assert refused.status_code == 422
    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    access = [line for line in lines if line["logger"] == "server.access"]
    assert [line["request_id"] for line in access] == ["req-obs-1", "req-obs-2"]
    first = access[0]
    meta = response.json()["meta"]
    assert (first["method"], first["path"], first["status"]) == ("POST", "/v1/query", 200)
    assert first["tables"] == meta["tables"]
    assert first["rows"] == 3
    assert first["read_rows"] == meta["statistics"]["rows_read"] > 0
    assert first["read_bytes"] == meta["statistics"]["bytes_read"] > 0
    assert first["latency_ms"] > 0
    refusal = [line for line in lines if "reload refused" in line["message"]]
    assert len(refusal) == 1
    assert refusal[0]["level"] == "WARNING"
    assert refusal[0]["request_id"] == "req-obs-2"
    assert "error: aggregation 'summ' is not one of" in refusal[0]["message"]
    assert "[unknown-agg]" in refusal[0]["message"]


def test_plain_log_line_names_the_request(client: Client) -> None:
    with captured("plain") as stream:
        client.get("/api/totals", headers={"X-Request-Id": "plain-1"})
    line = next(line for line in stream.getvalue().splitlines() if "server.access" in line)
    assert " INFO server.access [req=plain-1]: GET /api/totals 200 " in line
    assert "rows=1 read_rows=" in line


def test_warehouse_outage_logged_once_per_change(caplog: pytest.LogCaptureFixture) -> None:
    health = WarehouseHealth("clickhouse.test")
    with caplog.at_level(logging.INFO, logger="server.observability.metrics"):
        health.reached()
        for _ in range(3):
            health.unreachable("connection refused")
        health.reached()
        health.reached()
        health.unreachable("connection refused")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "ClickHouse at clickhouse.test is unavailable (answering 503 until it is back): "
        "connection refused",
        "ClickHouse at clickhouse.test is available again",
        "ClickHouse at clickhouse.test is unavailable (answering 503 until it is back): "
        "connection refused",
    ]


def test_outage_logged_once_not_per_request(caplog: pytest.LogCaptureFixture,
                                            database: str) -> None:
    # nothing listens on port 9 of the loopback: every request finds ClickHouse down
    down = Warehouse("http://127.0.0.1:9", "http://127.0.0.1:9", pool_size=1)
    model = load_model_text(model_text(MODEL, db=database), "test.yaml")
    with caplog.at_level(logging.INFO), \
            TestClient(base_url=LOOPBACK, app=create_app(model, down)) as test:
        statuses = [test.post("/v1/query", json={"measures": ["events"]}).status_code
                    for _ in range(3)]
        samples = _scrape(test)
    assert statuses == [503, 503, 503]
    assert _value(samples, "semantic_warehouse_up") == 0
    # at least the first statement met the outage; later requests may be refused by the
    # circuit breaker without reaching ClickHouse at all
    assert _value(samples, "semantic_clickhouse_errors_total", code="warehouse_unavailable") >= 1
    # said once, when the server starts without it; the requests add nothing
    outages = [r for r in caplog.records if r.levelno >= logging.WARNING
               and r.name.startswith("server.")]
    assert len(outages) == 1
    assert outages[0].getMessage().startswith("starting without the warehouse (answering 503)")


def test_configure_logging_one_json_format_for_every_logger() -> None:
    # in a child process: configuring logging replaces the root handlers of the process
    script = ("import logging; from server.observability.logs import configure_logging; "
              "configure_logging('json'); logging.getLogger('uvicorn.error').info('started'); "
              "logging.getLogger('uvicorn.access').info('dropped'); "
              "logging.getLogger('clickhouse_connect.driver').warning('retrying'); "
              "logging.getLogger('server.x').warning('careful %s', 1)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[3], timeout=60, check=True)
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert [(line["logger"], line["level"], line["message"], line["request_id"])
            for line in lines] == [("uvicorn.error", "INFO", "started", None),
                                   ("server.x", "WARNING", "careful 1", None)]


def test_cli_refuses_an_unknown_log_format(monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from server.cli import main

    monkeypatch.setenv("SEMANTIC_LOG_FORMAT", "xml")
    assert main(["validate"]) == 2
    assert "SEMANTIC_LOG_FORMAT must be one of plain, json, not 'xml'" in capsys.readouterr().err


def test_metric_updates_wait_for_the_response_and_none_is_lost_after_it() -> None:
    """``after_response`` updates are made once the request is answered; one asked later (a
    worker thread still running the statement of a request cut at shutdown, in a copy of its
    context) is made at once rather than dropped."""
    import contextvars

    from server.observability.requests import Observed, after_response

    made: list[str] = []
    scope = {"type": "http", "method": "GET", "path": "/x", "headers": []}
    observed = Observed(scope)  # type: ignore[arg-type]
    after_response(made.append, "during")
    worker = contextvars.copy_context()  # the context a worker thread runs the statement in
    assert made == []
    observed.finish()
    assert made == ["during"]
    worker.run(after_response, made.append, "late")
    assert made == ["during", "late"]
    after_response(made.append, "outside a request")
    assert made == ["during", "late", "outside a request"]
