"""The reference scenario (SCENARIO.md) at 5M rows, through the HTTP app."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlglot
from litestar.testing import TestClient

from semantic import load_model
from server.app import TABLE_HEADER, create_app
from server.operations.apply import apply_model, fill_demo, load_demo
from server.runtime.compile import compile_against
from server.warehouse.statements import Warehouse
from tests.support import LOOPBACK

ROOT = Path(__file__).resolve().parents[3]
ROWS = 5_000_000

# The scenario's own SQL, written out here independently of the engine.
RAW_METRICS = "SELECT count(), uniq(user_id), sum(revenue) FROM analytics.events"
RAW_BREAKDOWN = ("SELECT region, toDate(event_ts) AS day, count() AS cnt FROM analytics.events "
                 "GROUP BY region, day ORDER BY region, day")


def _raw(warehouse: Warehouse, sql: str) -> list[tuple[object, ...]]:
    return warehouse.query(sqlglot.parse_one(sql, dialect="clickhouse")).rows


@pytest.fixture(scope="module")
def scenario(warehouse: Warehouse) -> Iterator[TestClient]:  # type: ignore[type-arg]
    fill_demo(warehouse, ROWS, seed=1, table="analytics.events", append=False)
    model = load_model(ROOT / "metrics.yaml")
    apply_model(compile_against(model, warehouse), warehouse)
    with TestClient(base_url=LOOPBACK, app=create_app(model, warehouse)) as client:
        yield client
    for database in ("semantic", "analytics"):
        warehouse.command(sqlglot.parse_one(f"DROP DATABASE IF EXISTS {database}"))


def _expected_metrics(warehouse: Warehouse) -> dict[str, object]:
    count, users, revenue = _raw(warehouse, RAW_METRICS)[0]
    return {"total_events": count, "unique_users": users, "total_revenue": revenue}


def _expected_breakdown(warehouse: Warehouse) -> list[dict[str, object]]:
    return [{"region": r, "day": d.isoformat(), "cnt": c}
            for r, d, c in _raw(warehouse, RAW_BREAKDOWN)]


def test_scenario_metrics_equal_raw_and_come_from_a_rollup(
        scenario: TestClient, warehouse: Warehouse) -> None:  # type: ignore[type-arg]
    response = scenario.get("/api/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers[TABLE_HEADER].startswith("semantic.events_totals_")
    body = response.json()
    assert list(body) == ["total_events", "unique_users", "total_revenue"]
    assert body == _expected_metrics(warehouse)
    assert body["total_events"] == ROWS
    assert isinstance(body["total_revenue"], int)


def test_scenario_breakdown_equals_raw_group_by_row_for_row(
        scenario: TestClient, warehouse: Warehouse) -> None:  # type: ignore[type-arg]
    response = scenario.get("/api/breakdown")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers[TABLE_HEADER].startswith("semantic.events_region_daily_")
    body = response.json()
    assert len(body) == 270
    assert list(body[0]) == ["region", "day", "cnt"]
    assert body == _expected_breakdown(warehouse)


# users joined by hand, with SQL's NULL for an event whose user has no row
RAW_BY_COUNTRY = ("SELECT u.country, count(), sum(e.revenue), uniqExact(e.user_id) "
                  "FROM analytics.events AS e LEFT JOIN analytics.users AS u "
                  "ON e.user_id = u.user_id GROUP BY u.country ORDER BY u.country "
                  "SETTINGS join_use_nulls = 1")


def test_scenario_by_country_joins_users_from_a_rollup_and_follows_them(
        scenario: TestClient, warehouse: Warehouse) -> None:  # type: ignore[type-arg]
    response = scenario.get("/api/by-country")
    assert response.status_code == 200
    assert response.headers[TABLE_HEADER].startswith("semantic.events_users_all_")
    expected = [{"country": c, "cnt": n, "revenue": r, "users": u}
                for c, n, r, u in _raw(warehouse, RAW_BY_COUNTRY)]
    assert response.json() == expected
    assert [row["country"] for row in expected] == ["BR", "DE", "FR", "JP", "US", None]
    assert 0 < expected[-1]["cnt"] < ROWS // 50  # about 1 % of events have no user row
    # a user moves to another country: the next answer shows it (the rollup keeps user_id)
    warehouse.command(sqlglot.parse_one(
        "ALTER TABLE analytics.users UPDATE country = 'FR' WHERE country = 'BR' "
        "SETTINGS mutations_sync = 2", dialect="clickhouse"))
    moved = scenario.get("/api/by-country")
    assert moved.headers[TABLE_HEADER].startswith("semantic.events_users_all_")
    assert moved.json() == [{"country": c, "cnt": n, "revenue": r, "users": u}
                            for c, n, r, u in _raw(warehouse, RAW_BY_COUNTRY)]
    assert [row["country"] for row in moved.json()] == ["DE", "FR", "JP", "US", None]


def test_scenario_new_rows_show_up_immediately(
        scenario: TestClient, warehouse: Warehouse) -> None:  # type: ignore[type-arg]
    before = scenario.get("/api/metrics").json()
    load_demo(warehouse, 1000, seed=99, table="analytics.events")
    after = scenario.get("/api/metrics").json()
    assert after["total_events"] == before["total_events"] + 1000
    assert after == _expected_metrics(warehouse)
    assert scenario.get("/api/breakdown").json() == _expected_breakdown(warehouse)


def test_scenario_time_functions_come_from_rollups_and_equal_the_rows(
        scenario: TestClient, warehouse: Warehouse) -> None:  # type: ignore[type-arg]
    """metrics.yaml's time functions by region and day over February, and month over month:
    from rollups, equal to raw, and to sums of the days the test reads itself."""
    daily = {(r, d): (c, v) for r, d, c, v in _raw(
        warehouse, "SELECT region, toDate(event_ts) AS day, count(), sum(revenue) FROM "
                   "analytics.events GROUP BY region, day")}
    body = {"measures": ["total_events", "events_7d", "revenue_mtd", "events_all_time",
                         "events_week_before"], "dimensions": ["region"], "grain": "day",
            "time_range": {"from": "2026-02-01", "to": "2026-03-01"}}
    routed = scenario.post("/v1/query", json=body).json()
    assert "analytics.events" not in routed["meta"]["tables"], routed["meta"]
    raw = scenario.post("/v1/query", json={**body, "force_raw": True}).json()
    assert [{k: v for k, v in r.items() if k != "revenue_mtd"} for r in routed["data"]] == \
        [{k: v for k, v in r.items() if k != "revenue_mtd"} for r in raw["data"]]
    assert len(routed["data"]) == 3 * 28
    for row in routed["data"]:
        day = datetime.date.fromisoformat(row["event_ts"])

        def events(days: range, region: str = row["region"], last: datetime.date = day) -> int:
            return sum(daily.get((region, last - datetime.timedelta(days=n)), (0, 0))[0]
                       for n in days)
        assert row["total_events"] == events(range(1))
        assert row["events_7d"] == events(range(7))
        assert row["events_all_time"] == events(range((day - datetime.date(2026, 1, 1)).days + 1))
        assert row["events_week_before"] == events(range(7, 8))
        month = sum(daily.get((row["region"], day - datetime.timedelta(days=n)), (0, 0))[1]
                    for n in range(day.day))
        assert row["revenue_mtd"] == pytest.approx(month, rel=1e-12)
    body = {"measures": ["total_events"], "dimensions": ["region"], "grain": "month",
            "compare": {"offset": "1 month"},
            "time_range": {"from": "2026-02-01", "to": "2026-04-01"}}
    routed = scenario.post("/v1/query", json=body).json()
    assert routed["meta"]["rollup"] == "region_daily"
    assert routed["data"] == scenario.post("/v1/query", json={**body, "force_raw": True}
                                           ).json()["data"]
    for row in routed["data"]:
        month = datetime.date.fromisoformat(row["event_ts"])
        before = month.replace(month=month.month - 1)
        assert row["total_events__compare"] == sum(
            c for (r, d), (c, _) in daily.items()
            if r == row["region"] and (d.year, d.month) == (before.year, before.month))
