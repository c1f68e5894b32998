"""Instants, grain buckets in a zone, and relative ranges, around Berlin's 2026 DST switch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from engine.time.ranges import (
    add_grains,
    ceil_instant,
    floor_instant,
    is_boundary,
    parse_instant,
    resolve_relative,
)

BERLIN = ZoneInfo("Europe/Berlin")
KOLKATA = ZoneInfo("Asia/Kolkata")
SANTIAGO = ZoneInfo("America/Santiago")
UTC_ZONE = ZoneInfo("UTC")
# Sunday 2026-03-29, the day Berlin moves from +01:00 to +02:00 at 01:00 UTC.
NOW = datetime(2026, 3, 29, 12, 34, 56, tzinfo=UTC)


def _u(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "zone", "expected"),
    [
        ("2026-03-29", BERLIN, "2026-03-28T23:00"),
        ("2026-03-29", UTC_ZONE, "2026-03-29T00:00"),
        ("2026-03-29T14:30", BERLIN, "2026-03-29T12:30"),
        ("2026-03-29 14:30:15", BERLIN, "2026-03-29T12:30:15"),
        ("2026-03-29T14:30:15.123", BERLIN, "2026-03-29T12:30:15.123000"),
        ("2026-03-29T14:30:15.123456+05:30", BERLIN, "2026-03-29T09:00:15.123456"),
        ("2026-03-29T14:30Z", BERLIN, "2026-03-29T14:30"),
        ("2026-03-29t14:30z", BERLIN, "2026-03-29T14:30"),
        ("2026-03-29T14:30-03:00", UTC_ZONE, "2026-03-29T17:30"),
        ("  2026-03-29T14:30  ", KOLKATA, "2026-03-29T09:00"),
        # Skipped by the DST switch: read with the offset before it (fold=0).
        ("2026-03-29T02:30", BERLIN, "2026-03-29T01:30"),
        # Occurs twice when DST ends: the first occurrence, still on +02:00 (fold=0).
        ("2026-10-25T02:30", BERLIN, "2026-10-25T00:30"),
    ],
)
def test_parse_instant_accepted_forms(text: str, zone: ZoneInfo, expected: str) -> None:
    parsed = parse_instant(text, zone)
    assert parsed == _u(expected)
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2026-3-29",
        "29.03.2026",
        "2026-03-29T14",
        "2026-03-29+02:00",
        "2026-03-29T14:30+2",
        "2026-03-29T14:30+24:00",
        "2026-03-29T14:30:15.1234567",
        "2026-03-29T14:30:15,5",
        "now",
    ],
)
def test_parse_instant_rejects_other_forms(text: str) -> None:
    with pytest.raises(ValueError, match=r"expected YYYY-MM-DD, YYYY-MM-DDTHH:MM, "):
        parse_instant(text, BERLIN)


@pytest.mark.parametrize(
    "text", ["2026-02-30", "2026-13-01", "2026-03-29T24:00", "2026-03-29T12:60"]
)
def test_parse_instant_rejects_impossible_dates(text: str) -> None:
    with pytest.raises(ValueError, match=rf"'{text}' is not a valid date or time"):
        parse_instant(text, BERLIN)


@pytest.mark.parametrize(
    ("grain", "zone", "start", "end"),
    [
        ("minute", BERLIN, "2026-03-29T12:34", "2026-03-29T12:35"),
        ("hour", BERLIN, "2026-03-29T12:00", "2026-03-29T13:00"),
        ("hour", KOLKATA, "2026-03-29T12:30", "2026-03-29T13:30"),
        ("day", BERLIN, "2026-03-28T23:00", "2026-03-29T22:00"),
        ("day", UTC_ZONE, "2026-03-29T00:00", "2026-03-30T00:00"),
        ("week", BERLIN, "2026-03-22T23:00", "2026-03-29T22:00"),
        ("week", UTC_ZONE, "2026-03-23T00:00", "2026-03-30T00:00"),
        ("month", BERLIN, "2026-02-28T23:00", "2026-03-31T22:00"),
        ("quarter", BERLIN, "2025-12-31T23:00", "2026-03-31T22:00"),
        ("year", BERLIN, "2025-12-31T23:00", "2026-12-31T23:00"),
    ],
)
def test_floor_and_ceil_instant_bracket_now(
    grain: str, zone: ZoneInfo, start: str, end: str
) -> None:
    assert floor_instant(NOW, grain, zone) == _u(start)
    assert ceil_instant(NOW, grain, zone) == _u(end)
    assert add_grains(_u(start), grain, 1, zone) == _u(end)
    assert add_grains(_u(end), grain, -1, zone) == _u(start)
    assert is_boundary(int(_u(start).timestamp()), grain, zone)
    assert not is_boundary(int(NOW.timestamp()), grain, zone)


def test_ceil_instant_keeps_boundary() -> None:
    monday = _u("2026-03-22T23:00")
    assert ceil_instant(monday, "week", BERLIN) == monday
    assert floor_instant(monday, "week", BERLIN) == monday


def test_berlin_day_lengths_follow_dst() -> None:
    def length(day: str) -> timedelta:
        start = parse_instant(day, BERLIN)
        return add_grains(start, "day", 1, BERLIN) - start

    assert length("2026-03-29") == timedelta(hours=23)
    assert length("2026-10-25") == timedelta(hours=25)
    assert length("2026-06-01") == timedelta(hours=24)


def test_floor_instant_hour_in_repeated_hour() -> None:
    # 2026-10-25 02:00-03:00 happens twice in Berlin; each occurrence is its own hour bucket.
    assert floor_instant(_u("2026-10-25T00:45"), "hour", BERLIN) == _u("2026-10-25T00:00")
    assert floor_instant(_u("2026-10-25T01:45"), "hour", BERLIN) == _u("2026-10-25T01:00")


def test_day_starts_after_skipped_midnight() -> None:
    # Santiago skipped 2025-09-07 00:00-01:00: that day starts at 01:00 -03:00.
    start = floor_instant(_u("2025-09-07T12:00"), "day", SANTIAGO)
    assert start == _u("2025-09-07T04:00")
    assert add_grains(_u("2025-09-06T04:00"), "day", 1, SANTIAGO) == start
    assert add_grains(start, "day", 1, SANTIAGO) == _u("2025-09-08T03:00")


def test_add_grains_hours_are_exact_seconds() -> None:
    assert add_grains(_u("2026-03-29T00:00"), "hour", 2, BERLIN) == _u("2026-03-29T02:00")
    assert add_grains(_u("2026-03-29T00:00"), "minute", -90, BERLIN) == _u("2026-03-28T22:30")


def test_add_grains_calendar_steps() -> None:
    assert add_grains(_u("2026-01-31T12:00"), "month", 1, UTC_ZONE) == _u("2026-02-28T12:00")
    assert add_grains(_u("2026-01-01T00:00"), "quarter", -1, UTC_ZONE) == _u("2025-10-01T00:00")
    assert add_grains(_u("2026-01-01T00:00"), "month", -13, UTC_ZONE) == _u("2024-12-01T00:00")
    assert add_grains(_u("2025-12-31T23:00"), "year", 2, BERLIN) == _u("2027-12-31T23:00")
    assert add_grains(_u("2026-03-22T23:00"), "week", 1, BERLIN) == _u("2026-03-29T22:00")


def test_add_grains_out_of_range() -> None:
    with pytest.raises(ValueError, match="supported years 1 to 9999"):
        add_grains(_u("2026-01-01T00:00"), "year", 10_000, UTC_ZONE)


def test_grain_functions_reject_unknown_grain_and_naive_time() -> None:
    with pytest.raises(ValueError, match="unknown grain 'fortnight'"):
        floor_instant(NOW, "fortnight", BERLIN)
    with pytest.raises(ValueError, match="no time zone"):
        floor_instant(NOW.replace(tzinfo=None), "day", BERLIN)
    with pytest.raises(ValueError, match="no time zone"):
        add_grains(NOW.replace(tzinfo=None), "day", 1, BERLIN)


def test_is_boundary_depends_on_zone() -> None:
    midnight_utc = int(_u("2026-03-29T00:00").timestamp())
    assert is_boundary(midnight_utc, "day", UTC_ZONE)
    assert not is_boundary(midnight_utc, "day", BERLIN)
    assert is_boundary(midnight_utc, "hour", BERLIN)
    assert not is_boundary(midnight_utc, "hour", KOLKATA)
    assert is_boundary(midnight_utc + 1800, "hour", KOLKATA)


@pytest.mark.parametrize(
    ("text", "zone", "start", "end"),
    [
        ("today", BERLIN, "2026-03-28T23:00", "2026-03-29T22:00"),
        ("today", UTC_ZONE, "2026-03-29T00:00", "2026-03-30T00:00"),
        ("yesterday", BERLIN, "2026-03-27T23:00", "2026-03-28T23:00"),
        ("yesterday", UTC_ZONE, "2026-03-28T00:00", "2026-03-29T00:00"),
        ("this minute", BERLIN, "2026-03-29T12:34", "2026-03-29T12:35"),
        ("last minute", BERLIN, "2026-03-29T12:33", "2026-03-29T12:34"),
        ("this hour", KOLKATA, "2026-03-29T12:30", "2026-03-29T13:30"),
        ("last 12 hours", BERLIN, "2026-03-29T00:00", "2026-03-29T12:00"),
        ("this day", BERLIN, "2026-03-28T23:00", "2026-03-29T22:00"),
        ("last 7 days", BERLIN, "2026-03-21T23:00", "2026-03-28T23:00"),
        ("last 7 days", UTC_ZONE, "2026-03-22T00:00", "2026-03-29T00:00"),
        ("this week", BERLIN, "2026-03-22T23:00", "2026-03-29T22:00"),
        ("this week", UTC_ZONE, "2026-03-23T00:00", "2026-03-30T00:00"),
        ("last week", BERLIN, "2026-03-15T23:00", "2026-03-22T23:00"),
        ("previous week", UTC_ZONE, "2026-03-16T00:00", "2026-03-23T00:00"),
        ("last 2 weeks", UTC_ZONE, "2026-03-09T00:00", "2026-03-23T00:00"),
        ("this month", BERLIN, "2026-02-28T23:00", "2026-03-31T22:00"),
        ("last month", BERLIN, "2026-01-31T23:00", "2026-02-28T23:00"),
        ("last 3 months", UTC_ZONE, "2025-12-01T00:00", "2026-03-01T00:00"),
        ("this quarter", UTC_ZONE, "2026-01-01T00:00", "2026-04-01T00:00"),
        ("last quarter", BERLIN, "2025-09-30T22:00", "2025-12-31T23:00"),
        ("last 4 quarters", UTC_ZONE, "2025-01-01T00:00", "2026-01-01T00:00"),
        ("this year", BERLIN, "2025-12-31T23:00", "2026-12-31T23:00"),
        ("last year", UTC_ZONE, "2025-01-01T00:00", "2026-01-01T00:00"),
        ("last 10 years", UTC_ZONE, "2016-01-01T00:00", "2026-01-01T00:00"),
    ],
)
def test_resolve_relative_forms(text: str, zone: ZoneInfo, start: str, end: str) -> None:
    assert resolve_relative(text, NOW, zone) == (_u(start), _u(end))


def test_resolve_relative_tolerates_case_and_whitespace() -> None:
    expected = resolve_relative("last 7 days", NOW, BERLIN)
    assert resolve_relative("  Last \t7   DAYS ", NOW, BERLIN) == expected
    assert resolve_relative("PREVIOUS 7 days", NOW, BERLIN) == expected
    assert resolve_relative("last 1 month", NOW, BERLIN) == resolve_relative(
        "last month", NOW, BERLIN
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "now",
        "next week",
        "last days",
        "this 2 days",
        "7 days",
        "last fortnight",
        "last -1 days",
    ],
)
def test_resolve_relative_rejects_unknown_forms(text: str) -> None:
    with pytest.raises(ValueError, match=r"unknown relative time range .*expected 'today'"):
        resolve_relative(text, NOW, BERLIN)


@pytest.mark.parametrize("text", ["last 0 days", "last 100001 days", "last 99999999999 days"])
def test_resolve_relative_rejects_count_out_of_range(text: str) -> None:
    with pytest.raises(ValueError, match="must be from 1 to 100000"):
        resolve_relative(text, NOW, BERLIN)


def test_resolve_relative_large_counts() -> None:
    assert resolve_relative("last 100000 minutes", NOW, UTC_ZONE)[0] == _u("2026-01-19T01:54")
    with pytest.raises(ValueError, match="supported years 1 to 9999"):
        resolve_relative("last 100000 years", NOW, UTC_ZONE)


def test_resolve_relative_needs_aware_now() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        resolve_relative("today", NOW.replace(tzinfo=None), BERLIN)
