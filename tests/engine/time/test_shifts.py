"""Windows, offsets, periods and previous periods against grains and calendars; which stored
grains serve which in another calendar."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from engine.dialect.functions import derivable
from engine.time.ranges import Calendar, add_grains, floor_instant
from engine.time.shifts import (
    check_offset,
    check_period,
    period_fits,
    previous_period,
    shift_buckets,
    window_buckets,
)
from semantic.model import Duration, parse_duration

BERLIN = ZoneInfo("Europe/Berlin")
OCTOBER = Calendar(fiscal_start=10)


def test_durations_read_singular_and_plural_units() -> None:
    assert parse_duration("7 days") == Duration(7, "day")
    assert parse_duration(" 1 year ") == Duration(1, "year")
    assert str(Duration(1, "week")) == "1 week" and str(Duration(4, "week")) == "4 weeks"
    for bad in ("7", "days", "0 days", "7 fortnights", "1.5 days", "-1 day"):
        with pytest.raises(ValueError, match="N unit"):
            parse_duration(bad)


def test_windows_are_whole_buckets_of_the_grain() -> None:
    assert window_buckets(Duration(7, "day"), "day") == 7
    assert window_buckets(Duration(4, "week"), "day") == 28
    assert window_buckets(Duration(14, "day"), "week") == 2
    assert window_buckets(Duration(2, "quarter"), "month") == 6
    assert window_buckets(Duration(1, "year"), "fiscal_quarter") == 4
    assert window_buckets(Duration(48, "hour"), "hour") == 48
    for window, grain in ((Duration(1, "month"), "day"), (Duration(10, "day"), "week"),
                          (Duration(1, "day"), "hour"), (Duration(4, "month"), "quarter")):
        with pytest.raises(ValueError, match="not a whole number"):
            window_buckets(window, grain)


def test_offsets_land_on_bucket_starts() -> None:
    check_offset(Duration(1, "month"), "day")  # clamped at a month's end
    check_offset(Duration(2, "week"), "week")
    check_offset(Duration(1, "year"), "fiscal_quarter")
    with pytest.raises(ValueError, match="use hours"):
        check_offset(Duration(1, "day"), "hour")
    with pytest.raises(ValueError, match="use weeks"):
        check_offset(Duration(1, "month"), "week")
    assert shift_buckets(Duration(1, "year"), "month") == 12
    assert shift_buckets(Duration(14, "day"), "week") == 2
    assert shift_buckets(Duration(1, "month"), "day") is None  # depends on the day


def test_periods_are_unions_of_the_grain_in_the_calendar() -> None:
    assert period_fits("fiscal_year", "fiscal_quarter", OCTOBER)
    assert period_fits("fiscal_year", "quarter", OCTOBER)  # October starts a quarter
    assert not period_fits("fiscal_year", "quarter", Calendar(fiscal_start=11))
    assert not period_fits("year", "fiscal_quarter", Calendar(fiscal_start=11))
    assert period_fits("year", "fiscal_quarter", Calendar(fiscal_start=4))
    assert not period_fits("month", "week", OCTOBER)
    with pytest.raises(ValueError, match="to-date periods at week grain: week"):
        check_period("month", "week", OCTOBER)


def test_previous_periods_in_the_largest_unit_that_measures_the_range() -> None:
    def at(*parts: int) -> datetime:
        return datetime(*parts, tzinfo=UTC)

    assert previous_period(at(2013, 3, 1), at(2013, 5, 1), UTC) == Duration(2, "month")
    assert previous_period(at(2013, 3, 3), at(2013, 3, 10), UTC) == Duration(7, "day")
    assert previous_period(at(2012, 10, 1), at(2013, 10, 1), UTC) == Duration(1, "year")
    # two Berlin days over the change to summer time: 47 hours at hour grain
    start, end = at(2024, 3, 29, 23), at(2024, 3, 31, 22)
    assert previous_period(start, end, BERLIN) == Duration(2, "day")
    assert previous_period(start, end, BERLIN, "hour") == Duration(47, "hour")


def test_calendar_buckets() -> None:
    day = datetime(2013, 9, 30, 12, tzinfo=UTC)  # a Monday
    assert floor_instant(day, "fiscal_year", UTC, OCTOBER) == datetime(2012, 10, 1, tzinfo=UTC)
    assert floor_instant(day, "fiscal_quarter", UTC, OCTOBER) == datetime(2013, 7, 1,
                                                                         tzinfo=UTC)
    assert floor_instant(day, "week", UTC, Calendar(week_start=6)) == datetime(
        2013, 9, 29, tzinfo=UTC)  # Sunday
    assert floor_instant(day, "week", UTC, Calendar(week_start=2)) == datetime(
        2013, 9, 25, tzinfo=UTC)  # Wednesday
    assert add_grains(datetime(2012, 10, 1, tzinfo=UTC), "fiscal_quarter", 2, UTC) == \
        datetime(2013, 4, 1, tzinfo=UTC)


def test_stored_grains_serve_calendars_they_align_with() -> None:
    iso, sunday = Calendar(), Calendar(week_start=6)
    assert derivable("day", iso, "week", sunday)
    assert derivable("week", sunday, "week", sunday)
    assert not derivable("week", iso, "week", sunday)
    assert derivable("month", iso, "fiscal_year", Calendar(fiscal_start=11))
    assert derivable("quarter", iso, "fiscal_year", Calendar(fiscal_start=4))
    assert not derivable("quarter", iso, "fiscal_quarter", Calendar(fiscal_start=11))
    assert not derivable("year", iso, "fiscal_year", OCTOBER)
    assert derivable("year", iso, "fiscal_year", iso)
