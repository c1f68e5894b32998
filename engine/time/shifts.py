"""Durations along the calendar: how many buckets of a grain a window holds, whether moving a
bucket by an offset lands on a bucket, the length of a range as a comparison moves it.

Units fall in three families that never mix: minutes and hours are exact seconds; days and
weeks move the wall clock of a zone by whole days (a day can be 23 or 25 hours); months,
quarters and years move the calendar by whole months, a day past the target month's end
clamped to its last day (``2013-03-31`` one month back is ``2013-02-28``), as ClickHouse's
``subtractMonths`` does.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from engine.time.ranges import Calendar, add_grains
from semantic.model import PERIODS, Duration

#: unit -> (family, size in the family's base unit)
UNITS: dict[str, tuple[str, int]] = {
    "minute": ("clock", 1), "hour": ("clock", 60),
    "day": ("days", 1), "week": ("days", 7),
    "month": ("months", 1), "quarter": ("months", 3), "year": ("months", 12),
    # grains only: a fiscal quarter or year is as long as a calendar one
    "fiscal_quarter": ("months", 3), "fiscal_year": ("months", 12),
}
#: the largest unit first: the one ``previous_period`` names a range's length in
#: (weeks are said in days, as a week is 7 of them wherever it starts)
LARGEST_FIRST: tuple[str, ...] = ("year", "quarter", "month", "day", "hour", "minute")
def _plural(unit: str) -> str:
    return f"{unit}s"


def size(duration: Duration) -> tuple[str, int]:
    """A duration's family and length in the family's base unit."""
    family, unit_size = UNITS[duration.unit]
    return family, duration.count * unit_size


def window_buckets(window: Duration, grain: str) -> int:
    """How many ``grain`` buckets a rolling window holds. Raises ``ValueError`` unless it is a
    whole number of them (``7 days`` at day grain: 7; ``1 month`` at day grain: refused)."""
    family, length = size(window)
    grain_family, grain_size = UNITS[grain]
    if family != grain_family or length % grain_size:
        raise ValueError(f"a window of {window} is not a whole number of {_plural(grain)}: "
                         f"{_suggest(grain)}")
    return length // grain_size


def check_offset(by: Duration, grain: str | None) -> None:
    """Raise ``ValueError`` unless moving a ``grain`` bucket's start back by ``by`` lands on a
    bucket's start: minutes and hours move minute and hour buckets; days and weeks move day
    buckets (and week buckets by whole weeks); months, quarters and years move day buckets
    (clamped at a month's end) and month, quarter and year buckets by whole ones of theirs.
    Without a grain any offset moves the range."""
    if grain is None:
        return
    family, length = size(by)
    grain_family, grain_size = UNITS[grain]
    if grain == "day" and family == "months":
        return
    if family != grain_family or length % grain_size:
        raise ValueError(f"{by} back from the start of a {grain} is not the start of a "
                         f"{grain}: {_suggest(grain)}")


def shift_buckets(by: Duration, grain: str) -> int | None:
    """How many ``grain`` buckets back ``by`` moves every bucket (None when it depends on the
    bucket: months at day grain, clamped at a month's end). ``by`` fits ``grain``
    (``check_offset``)."""
    family, length = size(by)
    grain_family, grain_size = UNITS[grain]
    return length // grain_size if family == grain_family else None


def _suggest(grain: str) -> str:
    return {
        "minute": "use minutes or hours",
        "hour": "use hours (24 hours for a day: days are 23 or 25 hours at a DST change)",
        "day": "use days or weeks",
        "week": "use weeks",
        "month": "use months, quarters or years",
        "quarter": "use quarters or years",
        "year": "use years",
        "fiscal_quarter": "use quarters or years",
        "fiscal_year": "use years",
    }[grain]


def _months(grain: str, calendar: Calendar) -> tuple[int, int] | None:
    """A month-family grain's length in months and the month (0-based, modulo its length) its
    buckets start in."""
    if grain == "month":
        return 1, 0
    if grain in ("quarter", "year"):
        return (3 if grain == "quarter" else 12), 0
    if grain in ("fiscal_quarter", "fiscal_year"):
        length = 3 if grain == "fiscal_quarter" else 12
        return length, (calendar.fiscal_start - 1) % length
    return None


def period_fits(period: str, grain: str, calendar: Calendar) -> bool:
    """Whether a ``period`` is made of whole ``grain`` buckets (both in ``calendar``)."""
    if grain in ("minute", "hour", "day"):
        return True
    if grain == "week" or period == "week":
        return grain == period
    outer, inner = _months(period, calendar), _months(grain, calendar)
    assert outer is not None and inner is not None
    return outer[0] % inner[0] == 0 and (outer[1] - inner[1]) % inner[0] == 0


def check_period(period: str, grain: str, calendar: Calendar) -> None:
    """Raise ``ValueError`` unless ``period`` is made of whole ``grain`` buckets."""
    if not period_fits(period, grain, calendar):
        fitting = [p for p in PERIODS if period_fits(p, grain, calendar)]
        raise ValueError(f"a {period} is not made of whole {_plural(grain)} (a week can "
                         f"straddle two months, a quarter two fiscal quarters); to-date "
                         f"periods at {grain} grain: {', '.join(fitting) or 'none'}")


def move_back(t: datetime, by: Duration, zone: ZoneInfo) -> datetime:
    """The instant ``by`` before ``t`` on the wall clock of ``zone`` (months clamped)."""
    return add_grains(t, by.unit, -by.count, zone)


def previous_period(start: datetime, end: datetime, zone: ZoneInfo,
                    grain: str | None = None) -> Duration:
    """The length of ``[start, end)`` in the largest unit that measures it exactly (moving
    ``start`` forward by it gives ``end``): ``[2013-03-01, 2013-05-01)`` is 2 months,
    ``[2013-03-03, 2013-03-10)`` 7 days. At minute and hour grain, in hours or minutes (the
    units that move those buckets: two days over a DST change are 47 or 49 hours). Raises
    ``ValueError`` if no whole number of minutes measures it."""
    seconds = (end - start).total_seconds()
    units = [u for u in LARGEST_FIRST
             if grain is None or UNITS[u][0] == UNITS[grain][0] or
             (grain == "day" and UNITS[u][0] == "months")]
    for unit in units:
        family, unit_size = UNITS[unit]
        rough = seconds / {"clock": 60, "days": 86_400, "months": 30.436875 * 86_400}[family]
        estimate = round(rough / unit_size)
        for count in (estimate - 1, estimate, estimate + 1):
            try:
                if count >= 1 and add_grains(start, unit, count, zone) == end:
                    return Duration(count, unit)
            except ValueError:  # past year 9999
                continue
    raise ValueError("the time range is not a whole number of minutes, so it has no previous "
                     "period; give 'compare' an offset such as '1 day'")
