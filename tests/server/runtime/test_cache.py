"""The result cache: hits are answers of the current data only (ingest, apply, reload and
outside writes each start a new version), concurrent misses run once, memory is bounded."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from semantic import load_model
from server.app import TABLE_HEADER, create_app
from server.operations.apply import apply_model
from server.runtime.cache import ENTRY_OVERHEAD, Cached, ResultCache
from server.runtime.compile import compile_against
from server.runtime.freshness import PartsWatcher
from server.service.answers import CACHE_HEADER
from server.warehouse.statements import Warehouse
from tests.support import (
    EVENTS_HEAD,
    LOOPBACK,
    apply_text,
    create_events,
    insert_rows,
    model_text,
    serving,
)

MODEL = EVENTS_HEAD + """\
    dimensions:
      region: {{}}
    measures:
      events: {{agg: count}}
      users: {{agg: count_distinct_approx, column: user}}
    rollups:
{rollups}
endpoints:
  /api/totals:
    returns: object
    fields: {{n: events, u: users}}
  /api/by-region:
    fields: {{region: region, n: events}}
"""
TOTALS = "      totals: {measures: [events, users]}"
BY_REGION = "      by_region: {dimensions: [region], measures: [events]}"
ROWS = [("2026-01-01 10:00:00", "us", "u1"), ("2026-01-02 11:00:00", "eu", "u2")]


def _source(warehouse: Warehouse, database: str) -> None:
    insert_rows(warehouse, create_events(warehouse, database,
                                         "ts DateTime, region String, user String"), ROWS)


def _write_model(path: Path, database: str, *rollups: str) -> None:
    path.write_text(model_text(MODEL, db=database, rollups="{rollups}")
                    .replace("{rollups}", "\n".join(rollups)))


@pytest.fixture
def served(warehouse: Warehouse, database: str,
           tmp_path: Path) -> Iterator[tuple[TestClient, Path]]:  # type: ignore[type-arg]
    _source(warehouse, database)
    path = tmp_path / "metrics.yaml"
    _write_model(path, database, TOTALS)
    model = load_model(path)
    apply_model(compile_against(model, warehouse), warehouse)
    with serving(warehouse, model, load=lambda: load_model(path)) as client:
        yield client, path


def test_cache_repeated_answer_is_a_hit_with_the_same_body(
        served: tuple[TestClient, Path]) -> None:  # type: ignore[type-arg]
    client, _ = served
    first = client.get("/api/totals")
    second = client.get("/api/totals")
    assert first.headers[CACHE_HEADER] == "miss" and second.headers[CACHE_HEADER] == "hit"
    assert second.content == first.content and second.json() == {"n": 2, "u": 2}
    assert second.headers[TABLE_HEADER] == first.headers[TABLE_HEADER]
    body = {"measures": ["events"], "dimensions": ["region"]}
    assert client.post("/v1/query", json=body).headers[CACHE_HEADER] == "miss"
    assert client.post("/v1/query", json=body).headers[CACHE_HEADER] == "hit"
    # force_raw is part of the key: the raw answer is computed, not taken from the routed one
    raw = client.post("/v1/query", json={**body, "force_raw": True})
    assert raw.headers[CACHE_HEADER] == "miss"
    assert raw.json()["data"] == client.post("/v1/query", json=body).json()["data"]
    stats = client.app.state.semantic.cache.stats()
    assert stats["hits"] >= 3 and stats["misses"] == 3 and stats["entries"] == 3


def test_cache_ingest_then_the_next_request_shows_the_new_rows(
        served: tuple[TestClient, Path]) -> None:  # type: ignore[type-arg]
    client, _ = served
    assert client.get("/api/totals").json() == {"n": 2, "u": 2}
    assert client.get("/api/totals").headers[CACHE_HEADER] == "hit"
    inserted = client.post("/v1/sources/events/rows", json=[
        {"ts": "2026-01-03T00:00:00Z", "region": "us", "user": "u3"}])
    assert inserted.status_code == 200, inserted.text
    after = client.get("/api/totals")
    assert after.headers[CACHE_HEADER] == "miss" and after.json() == {"n": 3, "u": 3}


def test_cache_write_through_the_warehouse_is_seen_by_the_next_request(
        served: tuple[TestClient, Path], warehouse: Warehouse,
        database: str) -> None:  # type: ignore[type-arg]
    """Loads and repairs write through the same warehouse as ingestion: any write counts."""
    client, _ = served
    assert client.get("/api/by-region").json() == [{"region": "eu", "n": 1},
                                                   {"region": "us", "n": 1}]
    insert_rows(warehouse, f"{database}.events", [("2026-01-04 00:00:00", "eu", "u9")])
    assert client.get("/api/by-region").json() == [{"region": "eu", "n": 2},
                                                   {"region": "us", "n": 1}]


def test_cache_apply_then_the_next_request_reads_the_new_rollup(
        served: tuple[TestClient, Path], database: str) -> None:  # type: ignore[type-arg]
    client, path = served
    before = client.get("/api/by-region")
    assert client.get("/api/by-region").headers[CACHE_HEADER] == "hit"
    assert before.headers[TABLE_HEADER] == f"{database}.events"  # no rollup has region yet
    _write_model(path, database, TOTALS, BY_REGION)
    assert client.post("/v1/admin/apply").status_code == 200
    after = client.get("/api/by-region")
    assert after.headers[CACHE_HEADER] == "miss"
    assert "_by_region_" in after.headers[TABLE_HEADER] and after.json() == before.json()


def test_cache_reload_starts_a_new_version(
        served: tuple[TestClient, Path], database: str) -> None:  # type: ignore[type-arg]
    client, path = served
    client.get("/api/totals")
    path.write_text(path.read_text().replace("fields: {n: events, u: users}",
                                             "fields: {count: events, u: users}"))
    assert client.post("/v1/admin/reload").status_code == 200
    reloaded = client.get("/api/totals")
    assert reloaded.headers[CACHE_HEADER] == "miss" and reloaded.json() == {"count": 2, "u": 2}


def test_parts_watcher_notices_writes_that_bypass_the_service(warehouse: Warehouse,
                                                              database: str) -> None:
    _source(warehouse, database)
    changes: list[int] = []
    watcher = PartsWatcher(warehouse, lambda: [database], interval=0.1,
                           on_change=lambda: changes.append(watcher.stamp))
    assert watcher.check()  # the first fingerprint
    assert not watcher.check()
    stamp = watcher.stamp
    insert_rows(warehouse, f"{database}.events", [("2026-01-05 00:00:00", "eu", "u5")])
    assert watcher.check() and watcher.stamp == stamp + 1
    assert changes == [stamp, stamp + 1]  # told of each change (stale rollups are found then)
    stop = threading.Event()
    thread = threading.Thread(target=watcher.run, args=(stop,))
    thread.start()
    try:
        insert_rows(warehouse, f"{database}.events", [("2026-01-06 00:00:00", "eu", "u6")])
        deadline = time.monotonic() + 10
        while watcher.stamp == stamp + 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert watcher.stamp == stamp + 2
    finally:
        stop.set()
        thread.join()


def test_cache_server_without_staleness_bound_does_not_cache(warehouse: Warehouse,
                                                             database: str) -> None:
    """On a ClickHouse server with max_staleness 0 outside writes cannot be bounded: off."""
    _source(warehouse, database)
    model = apply_text(warehouse, model_text(MODEL, db=database, rollups="{r}")
                       .replace("{r}", TOTALS))
    warehouse.embedded = False
    try:
        app = create_app(model, warehouse, max_staleness=0)
    finally:
        warehouse.embedded = True
    with TestClient(base_url=LOOPBACK, app=app) as client:
        assert [client.get("/api/totals").headers[CACHE_HEADER] for _ in range(2)] == \
            ["miss", "miss"]
    assert not app.state.semantic.cache.enabled


def test_result_cache_single_flight_runs_concurrent_misses_once() -> None:
    cache = ResultCache(1 << 20)
    calls = []
    gate = threading.Event()

    def compute() -> Cached:
        calls.append(1)
        gate.wait(5)
        return Cached(b"[1]", "t")

    results: list[Cached] = []
    threads = [threading.Thread(target=lambda: results.append(cache.fetch("k", compute)))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    gate.set()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len(results) == 8 and {r.body for r in results} == {b"[1]"}
    assert cache.misses == 8 and cache.get("k") is not None


def test_result_cache_answer_computed_across_a_new_version_is_not_stored() -> None:
    writes = [0]
    cache = ResultCache(1 << 20, stamp=lambda: writes[0])

    def compute() -> Cached:
        writes[0] += 1  # a write lands while the query runs
        return Cached(b"old", "t")

    assert cache.fetch("k", compute).body == b"old"
    assert cache.get("k") is None and cache.entries == 0
    assert cache.fetch("k", lambda: Cached(b"new", "t")).body == b"new"
    assert cache.get("k") is not None
    writes[0] += 1
    assert cache.get("k") is None  # any write drops every entry


def test_result_cache_is_bounded_in_bytes() -> None:
    body = b"x" * 1000
    size = Cached(body, "t").size
    cache = ResultCache(size * 3)
    for n in range(10):
        cache.fetch(n, lambda: Cached(body, "t"))
        assert cache.size_bytes <= cache.max_bytes
    assert cache.entries == 3 and cache.evictions == 7
    assert cache.get(9) is not None and cache.get(0) is None  # the oldest went first
    assert size > len(body) + ENTRY_OVERHEAD - 1
    cache.fetch("huge", lambda: Cached(b"y" * size * 4, "t"))
    assert cache.get("huge") is None  # larger than the whole cache: answered, not stored
