"""Answers in Cube's shape: values formatted as Cube's ClickHouse driver formats them, time
under both of Cube's keys, annotations, and the meta description (fast: no warehouse)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from server.cube.members import Cubes
from server.cube.meta import cube_meta
from server.cube.results import annotation, cube_value, result_rows
from server.cube.translate import translate_query
from tests.reference import compiled_reference
from tests.server.cube.conftest import NOW


@pytest.fixture(scope="module")
def cubes() -> Cubes:
    return Cubes(compiled_reference().sources)


@pytest.mark.parametrize(("value", "shown"), [
    (5000000, "5000000"), (247486808.0, "247486808"), (49.5, "49.5"), (1e-07, "1e-7"),
    (Decimal("2.50"), "2.5"), (float("nan"), None), (None, None), ("us-east", "us-east"),
    (True, True), (dt.date(2026, 1, 1), "2026-01-01T00:00:00.000"),
    (dt.datetime(2026, 3, 29, 3, 0, 0, 123456, tzinfo=ZoneInfo("Europe/Berlin")),
     "2026-03-29T03:00:00.123"),
])
def test_cube_value_formats_like_cubes_clickhouse_driver(value: object, shown: object) -> None:
    assert cube_value(value) == shown


def test_result_rows_key_time_by_granularity_and_by_member(cubes: Cubes) -> None:
    t = translate_query({"measures": ["events.total_events"], "dimensions": ["events.region"],
                         "timeDimensions": [{"dimension": "events.event_ts",
                                             "granularity": "day"}]}, cubes, NOW)
    rows = result_rows(t, ("region", "event_ts", "total_events"),
                       (["eu"], [dt.date(2026, 1, 2)], [7]))
    assert rows == [{"events.region": "eu", "events.event_ts.day": "2026-01-02T00:00:00.000",
                     "events.event_ts": "2026-01-02T00:00:00.000",
                     "events.total_events": "7"}]
    notes = annotation(t)
    assert set(notes) == {"measures", "dimensions", "segments", "timeDimensions"}
    assert notes["measures"]["events.total_events"]["type"] == "number"
    assert notes["measures"]["events.total_events"]["shortTitle"] == "Total Events"
    assert notes["dimensions"]["events.region"]["type"] == "string"
    assert notes["timeDimensions"]["events.event_ts.day"]["granularity"]["name"] == "day"
    assert notes["timeDimensions"]["events.event_ts"]["type"] == "time"


def test_cube_meta_describes_every_member(cubes: Cubes) -> None:
    cube, users = cube_meta(cubes)["cubes"]  # the dimension table is a cube of its own
    assert users["name"] == "users" and [d["name"] for d in users["dimensions"]] == [
        "users.country", "users.plan"]
    # a query names one cube: each is a component of its own (its joins are its members)
    assert (cube["connectedComponent"], users["connectedComponent"]) == (1, 2)
    assert cube["name"] == "events" and cube["type"] == "cube" and cube["segments"] == []
    measures = {m["name"]: m for m in cube["measures"]}
    assert measures["events.total_events"]["aggType"] == "count"
    assert measures["events.exact_users"]["aggType"] == "countDistinct"
    assert measures["events.paying_share"]["aggType"] == "number"  # a metric
    assert measures["events.total_events"]["description"] == "Number of events."
    dimensions = {d["name"]: d for d in cube["dimensions"]}
    assert dimensions["events.event_ts"]["type"] == "time"
    assert [g["name"] for g in dimensions["events.event_ts"]["granularities"]][:3] == [
        "minute", "hour", "day"]
    assert all(m["isVisible"] and m["public"] for m in cube["measures"] + cube["dimensions"])
