"""Answers to aligned time ranges cut from the kept answer to the whole range: equal to the
raw table's answer for every range, grain, zone, order, limit and measure condition, never
stale, and not used where they cannot be exact."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import TestClient

from engine.serving import slices
from server.app import TABLE_HEADER
from server.service.answers import CACHE_HEADER
from server.warehouse.statements import Warehouse
from tests.support import (
    EVENTS_HEAD,
    fresh_database,
    served_events,
)

COLUMNS = "ts DateTime, region String, user String, revenue UInt32"
MODEL = EVENTS_HEAD + """\
    dimensions:
      region: {{}}
    measures:
      events: {{agg: count}}
      users: {{agg: count_distinct_approx, column: user}}
      revenue: {{agg: sum, column: revenue}}
      top: {{agg: max, column: revenue}}
    metrics:
      per_user: {{sql: revenue / users}}
    rollups:
      daily: {{dimensions: [region], grain: day, measures: [events, users, revenue, top]}}
      hourly: {{dimensions: [region], grain: hour, measures: [events, users, revenue, top]}}
"""
START = datetime(2026, 3, 20, tzinfo=UTC)  # the data spans a change to summer time in Berlin


def _rows(count: int, seed: int) -> list[tuple[Any, ...]]:
    rng = random.Random(seed)
    return [((START + timedelta(seconds=rng.randrange(20 * 86400))).strftime(
        "%Y-%m-%d %H:%M:%S"), rng.choice(["us", "eu", "ap"]), f"u{rng.randrange(200)}",
        rng.randrange(100)) for _ in range(count)]


@pytest.fixture(scope="module")
def client(warehouse: Warehouse) -> Iterator[TestClient]:  # type: ignore[type-arg]
    with fresh_database(warehouse) as database:
        # two parts
        with served_events(warehouse, database, COLUMNS, MODEL,
                           _rows(3000, 1), _rows(1000, 2)) as served:
            yield served


def _ask(client: TestClient, body: dict[str, Any]) -> Any:  # type: ignore[type-arg]
    response = client.post("/v1/query", json=body)
    assert response.status_code == 200, response.text
    return response


def _raw(client: TestClient, body: dict[str, Any]) -> Any:  # type: ignore[type-arg]
    return _ask(client, {**body, "force_raw": True}).json()["data"]


def _cuts(client: TestClient) -> int:  # type: ignore[type-arg]
    return int(client.app.state.semantic.cache.stats()["cuts"])


def _day(offset: int) -> str:
    return (START + timedelta(days=offset)).date().isoformat()


CASES: list[dict[str, Any]] = [
    {"measures": ["events", "users"], "dimensions": ["region"], "grain": "day"},
    {"measures": ["revenue", "per_user"], "grain": "day",
     "order": [{"member": "revenue", "direction": "desc"}], "limit": 3},
    {"measures": ["events", "top"], "dimensions": ["region"], "grain": "day", "offset": 4,
     "limit": 5},
    {"measures": ["users"], "grain": "day", "timezone": "Europe/Berlin"},
    {"measures": ["events"], "dimensions": ["region"], "grain": "week"},
    {"measures": ["events", "revenue"], "grain": "day",
     "filters": [{"member": "region", "op": "in", "values": ["us", "eu"]},
                 {"member": "events", "op": "gt", "values": [60]}]},
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_cut_answers_equal_the_raw_answers_for_aligned_ranges(
        client: TestClient, case: int) -> None:  # type: ignore[type-arg]
    body = CASES[case]
    before = _cuts(client)
    rng = random.Random(case)
    ranges = [(_day(0), _day(20)), (_day(3), _day(4)), (None, _day(9)), (_day(12), None)]
    ranges += [tuple(sorted(rng.sample([_day(d) for d in range(-2, 24)], 2)))
               for _ in range(6)]
    if body["grain"] == "week":  # Mondays
        ranges = [("2026-03-23", "2026-04-06"), ("2026-03-30", None), (None, "2026-03-30")]
    asked = 0
    for start, end in ranges:
        time_range = {k: v for k, v in (("from", start), ("to", end)) if v is not None}
        query = {**body, "time_range": time_range}
        served = _ask(client, query)
        assert served.headers[CACHE_HEADER] == "miss"
        assert served.json()["data"] == _raw(client, query), (start, end)
        assert "_daily_" in served.headers[TABLE_HEADER] or \
            "_hourly_" in served.headers[TABLE_HEADER]
        asked += 1
    # every one but the first was cut: the first range of a query runs as asked (a query
    # asked once pays for nothing more), the whole answer is kept from the second on
    assert _cuts(client) - before == asked - 1


def test_cut_answers_follow_hour_ranges_in_a_zone(
        client: TestClient) -> None:  # type: ignore[type-arg]
    """Berlin hours (across the change to summer time) are cut from the hourly rollup; Kolkata
    hours (half an hour off UTC) no rollup can serve, so they are run on the raw table."""
    ranges = [("2026-03-29T00:00:00", "2026-03-30T06:00:00"),
              ("2026-03-21T13:00:00", "2026-03-21T14:00:00")]
    for zone, cut in (("Europe/Berlin", True), ("Asia/Kolkata", False)):
        body = {"measures": ["events", "users"], "dimensions": ["region"], "grain": "hour",
                "timezone": zone}
        before = _cuts(client)
        for start, end in ranges:
            query = {**body, "time_range": {"from": start, "to": end}}
            assert _ask(client, query).json()["data"] == _raw(client, query)
        assert _cuts(client) - before == (len(ranges) - 1 if cut else 0), zone


def test_unaligned_ranges_are_run_not_cut(client: TestClient) -> None:  # type: ignore[type-arg]
    before = _cuts(client)
    query = {"measures": ["events"], "dimensions": ["region"], "grain": "day",
             "time_range": {"from": "2026-03-22T06:00:00", "to": "2026-03-25"}}
    assert _ask(client, query).json()["data"] == _raw(client, query)
    no_bucket = {"measures": ["events"], "dimensions": ["region"],
                 "time_range": {"from": "2026-03-22", "to": "2026-03-25"}}
    assert _ask(client, no_bucket).json()["data"] == _raw(client, no_bucket)
    assert _cuts(client) == before


def test_a_whole_answer_larger_than_kept_is_not_cut(
        client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[type-arg]
    monkeypatch.setattr(slices, "WHOLE_LIMIT", 10)  # 60 region-days: more than kept
    before = _cuts(client)
    query = {"measures": ["events"], "dimensions": ["region"], "grain": "day",
             "filters": [{"member": "region", "op": "ne", "values": ["nowhere"]}],
             "time_range": {"from": _day(2), "to": _day(5)}}
    assert _ask(client, query).json()["data"] == _raw(client, query)
    assert _cuts(client) == before


def test_cut_answers_are_never_stale(warehouse: Warehouse, database: str) -> None:
    """Ingest, then the very next range (cut from a whole answer kept before the write)
    shows the new rows."""
    body = {"measures": ["events", "users"], "grain": "day"}
    with served_events(warehouse, database, COLUMNS, MODEL, _rows(200, 3)) as client:
        first = {**body, "time_range": {"from": _day(1), "to": _day(3)}}
        assert _ask(client, first).json()["data"] == _raw(client, first)
        inserted = client.post("/v1/sources/events/rows", json=[
            {"ts": f"{_day(5)}T10:00:00Z", "region": "us", "user": "new", "revenue": 1}])
        assert inserted.status_code == 200, inserted.text
        second = {**body, "time_range": {"from": _day(5), "to": _day(6)}}
        cuts = _cuts(client)
        after = _ask(client, second).json()["data"]
        assert after == _raw(client, second)
        assert _cuts(client) == cuts + 1
        assert after[0]["events"] == sum(1 for ts, *_ in _rows(200, 3)
                                         if ts.startswith(_day(5))) + 1


def test_a_range_of_a_kept_whole_answer_is_cut_without_planning(
        client: TestClient) -> None:  # type: ignore[type-arg]
    """Once the whole answer is kept, a new range of the same query is answered on the event
    loop from its normalized form alone: no plan of the range is made or cached."""
    runtime = client.app.state.semantic.started
    body = {"measures": ["events"], "dimensions": ["region"], "grain": "day"}
    for start in (1, 3):  # the whole answer is kept from the second range asked on
        _ask(client, {**body, "time_range": {"from": _day(start), "to": _day(start + 1)}})
    plans = len(runtime._plans)
    second = {**body, "time_range": {"from": _day(6), "to": _day(8)}}
    before = _cuts(client)
    assert _ask(client, second).json()["data"] == _raw(client, second)
    assert _cuts(client) == before + 1
    assert len(runtime._plans) == plans + 2  # the raw comparison's plan (two keys), no other
    again = _ask(client, second)
    assert again.headers[CACHE_HEADER] == "hit" and _cuts(client) == before + 1


def test_a_cut_answer_says_it_read_nothing_from_clickhouse(
        client: TestClient) -> None:  # type: ignore[type-arg]
    """The probe found cut answers carrying ``meta.statistics: null``: they say what was read
    (nothing: the numbers came from the kept answer), as a run answer says what ClickHouse
    read."""
    body = {"measures": ["revenue"], "dimensions": ["region"], "grain": "day"}
    _ask(client, {**body, "time_range": {"from": _day(0), "to": _day(2)}})
    before = _cuts(client)
    cut = _ask(client, {**body, "time_range": {"from": _day(3), "to": _day(5)}}).json()
    assert _cuts(client) == before + 1
    assert cut["meta"]["statistics"] == {"rows_read": 0, "bytes_read": 0, "elapsed_ms": 0.0,
                                         "from_cache": True}
    run = _ask(client, {**body, "force_raw": True,
                        "time_range": {"from": _day(3), "to": _day(5)}}).json()
    assert run["meta"]["statistics"]["rows_read"] > 0
    assert run["meta"]["statistics"]["from_cache"] is False


def test_a_query_asked_once_plans_and_runs_only_itself(
        client: TestClient) -> None:  # type: ignore[type-arg]
    """A first-seen range (an analyst exploring, a BI tool) is planned and run as asked: the
    whole answer it could be cut from is neither planned nor run until a second range of the
    same query is asked."""
    runtime = client.app.state.semantic.started
    body = {"measures": ["users"], "dimensions": ["region"], "grain": "day",
            "timezone": "America/New_York"}
    cache = client.app.state.semantic.cache

    def kept() -> int:
        return sum(1 for key in cache._entries if key[0] == "whole")

    plans, before, wholes = len(runtime._plans), _cuts(client), kept()
    _ask(client, {**body, "time_range": {"from": _day(2), "to": _day(4)}})
    assert len(runtime._plans) == plans + 2  # the query as asked and normalized, nothing else
    assert kept() == wholes and _cuts(client) == before  # no whole answer run
    _ask(client, {**body, "time_range": {"from": _day(5), "to": _day(7)}})
    assert _cuts(client) == before + 1 and kept() == wholes + 1  # now kept, and cut from
