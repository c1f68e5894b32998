"""``fill``: every bucket of the range at the grain, for each group of the other dimensions
that appears in the answer; counts and sums 0 (``zero``), every other measure null; from
rollups and raw rows alike, across a DST change, in every format. Checked against answers
computed here from the rows inserted."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from litestar.testing import TestClient

from server.warehouse.statements import Warehouse
from tests.support import EVENTS_HEAD, assert_error, fresh_database, served_events

MODEL = EVENTS_HEAD + """\
    timezone: Europe/Berlin
    dimensions:
      region: {{}}
    measures:
      events: {{agg: count}}
      amount: {{agg: sum, column: amount}}
      top: {{agg: max, column: amount}}
      users: {{agg: count_distinct, column: user}}
    metrics:
      per_event: amount / events
    rollups:
      hourly: {{dimensions: [region], grain: hour, measures: [events, amount, top, users]}}
"""
#: rows around Berlin's DST change (2026-03-29 02:00 -> 03:00), with gaps of days and hours
ROWS = [
    ("2026-03-26 10:00:00", "eu", "a", 5),
    ("2026-03-26 11:30:00", "us", "b", 7),
    ("2026-03-28 23:15:00", "eu", "a", 1),  # 00:15 on the 29th in Berlin
    ("2026-03-29 01:10:00", "eu", "c", 2),  # 03:10 in Berlin (summer time from 02:00)
    ("2026-03-31 09:00:00", "us", "b", 3),
]


@pytest.fixture(scope="module")
def client(warehouse: Warehouse) -> Iterator[TestClient]:  # type: ignore[type-arg]
    with fresh_database(warehouse, "fill") as db, served_events(
            warehouse, db, "ts DateTime, region String, user String, amount Int64", MODEL,
            ROWS) as client:
        yield client


def _expected(grain: str, zone: str, start: datetime, end: datetime, fill: str,
              by_region: bool) -> list[tuple[Any, ...]]:
    """(region?, bucket, events, amount, top) for every bucket of [start, end) in ``zone``."""
    tz = ZoneInfo(zone)
    groups: dict[Any, dict[Any, list[int]]] = defaultdict(dict)
    for ts, region, _, amount in ROWS:
        at = datetime.fromisoformat(ts).replace(tzinfo=UTC)
        if not start <= at < end:
            continue
        local = at.astimezone(tz)
        bucket: Any = local.date() if grain == "day" else local.replace(minute=0, second=0)
        groups[region if by_region else None].setdefault(bucket, []).append(amount)
    buckets: list[Any] = []
    at = start.astimezone(tz)
    if grain == "day":
        day = at.date()
        while datetime.combine(day, datetime.min.time(), tz) < end:
            buckets.append(day)
            day += timedelta(days=1)
    else:
        instant = at.replace(minute=0, second=0).astimezone(UTC)
        while instant < end:
            buckets.append(instant.astimezone(tz))
            instant += timedelta(hours=1)
    empty = 0 if fill == "zero" else None
    rows = []
    for group in sorted(groups, key=str):
        for bucket in buckets:
            amounts = groups[group].get(bucket)
            values = (len(amounts), sum(amounts), max(amounts)) if amounts else \
                (empty, empty, None)
            rows.append(((group,) if by_region else ()) + (bucket, *values))
    return rows


def _rows(answer: dict[str, Any], by_region: bool, grain: str) -> list[tuple[Any, ...]]:
    found = []
    for row in answer["data"]:
        bucket: Any = date.fromisoformat(row["ts"]) if grain == "day" else \
            datetime.fromisoformat(row["ts"])
        found.append(((row["region"],) if by_region else ()) + (
            bucket, row["events"], row["amount"], row["top"]))
    return found


@pytest.mark.parametrize(("grain", "zone", "start", "end"), [
    ("day", "Europe/Berlin", "2026-03-25T12:00:00Z", "2026-04-02T00:00:00Z"),
    ("hour", "Europe/Berlin", "2026-03-28T22:00:00Z", "2026-03-29T04:00:00Z"),  # DST change
    ("hour", "Asia/Kolkata", "2026-03-26T09:00:00Z", "2026-03-26T13:00:00Z"),  # :30 hours
])
@pytest.mark.parametrize("fill", ["zero", "null"])
@pytest.mark.parametrize("force_raw", [False, True])
def test_fill_returns_every_bucket_of_each_group(client: TestClient,  # type: ignore[type-arg]
                                                 grain: str, zone: str, start: str, end: str,
                                                 fill: str, force_raw: bool) -> None:
    bounds = datetime.fromisoformat(start), datetime.fromisoformat(end)
    for by_region in (True, False):
        body = {"measures": ["events", "amount", "top"], "grain": grain, "timezone": zone,
                "dimensions": ["region"] if by_region else [], "fill": fill,
                "time_range": {"from": start, "to": end}, "force_raw": force_raw}
        answer = client.post("/v1/query", json=body)
        assert answer.status_code == 200, answer.text
        assert _rows(answer.json(), by_region, grain) == _expected(
            grain, zone, *bounds, fill, by_region), body
        if force_raw:
            assert answer.json()["meta"]["rollup"] is None


def test_fill_keeps_the_order_limit_metrics_and_formats(
        client: TestClient) -> None:  # type: ignore[type-arg]
    body = {"measures": ["events", "per_event", "users"], "dimensions": ["region"],
            "grain": "day", "fill": "zero", "order": ["-ts", "region"], "limit": 3,
            "time_range": {"from": "2026-03-28", "to": "2026-04-02"}}
    answer = client.post("/v1/query", json=body).json()
    assert [(r["ts"], r["region"], r["events"], r["per_event"], r["users"])
            for r in answer["data"]] == [("2026-04-01", "eu", 0, None, 0),
                                         ("2026-04-01", "us", 0, None, 0),
                                         ("2026-03-31", "eu", 0, None, 0)]
    assert answer["meta"]["truncated"] is True
    text = client.post("/v1/query", json={**body, "format": "csv", "limit": 10}).text
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["region", "ts", "events", "per_event", "users"]
    assert len(rows) == 11 and ["us", "2026-03-31", "1", "3", "1"] in rows  # 5 days x 2


def test_fill_errors_name_the_field(client: TestClient) -> None:  # type: ignore[type-arg]
    base = {"measures": ["events"], "grain": "day",
            "time_range": {"from": "2026-03-01", "to": "2026-04-01"}}
    error = assert_error(client.post("/v1/query", json={**base, "fill": "zeros"}), 400, "fill")
    assert "did you mean 'zero'" in error["message"]
    assert_error(client.post("/v1/query", json={**base, "fill": 0}), 400, "fill")
    no_grain = {k: v for k, v in base.items() if k != "grain"}
    assert "needs a 'grain'" in assert_error(client.post(
        "/v1/query", json={**no_grain, "fill": "zero"}), 400, "fill")["message"]
    assert "both 'from' and 'to'" in assert_error(client.post("/v1/query", json={
        **base, "fill": "zero", "time_range": {"from": "2026-03-01"}}), 400, "fill")["message"]
    assert "coarser grain" in assert_error(client.post("/v1/query", json={
        "measures": ["events"], "grain": "minute", "fill": "zero",
        "time_range": {"from": "2026-01-01", "to": "2026-12-01"}}), 400, "fill")["message"]
