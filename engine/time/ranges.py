"""Time ranges ``[from, to)``: parsing instants, grain buckets in a zone, relative ranges.

Every datetime returned is aware and in UTC. Grain buckets are taken on the wall clock of the
zone, the way ClickHouse's ``toStartOf*`` functions do with a time zone argument, in a
``Calendar``: weeks start on Monday (ISO) and fiscal years in January unless it says otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from semantic.model import GRAINS, MONTH_NAMES, QUERY_GRAINS, WEEKDAYS
from semantic.suggest import shown

EXACT_SECONDS = {"minute": 60, "hour": 3600}
MAX_COUNT = 100_000

INSTANT_FORMS = (
    "YYYY-MM-DD, YYYY-MM-DDTHH:MM, YYYY-MM-DDTHH:MM:SS or YYYY-MM-DDTHH:MM:SS.ffffff, "
    "with 'T' or a space, and optionally 'Z' or an offset like +02:00 after the time"
)
RELATIVE_FORMS = (
    "'today', 'yesterday', 'this <unit>', 'last <unit>', 'previous <unit>', "
    "'last N <unit>s' (N from 1 to 100000), "
    "where <unit> is minute, hour, day, week, month, quarter or year"
)

_INSTANT = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})"
    r"(?:[T ](?P<hour>\d{2}):(?P<minute>\d{2})"
    r"(?::(?P<second>\d{2})(?:\.(?P<fraction>\d{1,6}))?)?"
    r"(?P<offset>Z|[+-]\d{2}:\d{2})?)?",
    re.IGNORECASE,
)
_RELATIVE = re.compile(
    r"(?:(?P<this>this)|last|previous)\s+(?:(?P<count>\d+)\s+)?(?P<unit>[a-z]+?)(?P<plural>s?)"
)


@dataclass(frozen=True, slots=True)
class Calendar:
    """Where weeks and fiscal years start: ``week_start`` days after Monday (0-6), fiscal
    years in month ``fiscal_start`` (1-12)."""

    week_start: int = 0
    fiscal_start: int = 1

    @classmethod
    def named(cls, week_start: str, fiscal_year_start: str) -> Calendar:
        return cls(WEEKDAYS.index(week_start), MONTH_NAMES.index(fiscal_year_start) + 1)


#: ISO weeks and fiscal years that are calendar years
DEFAULT_CALENDAR = Calendar()
#: grain -> the calendar grain whose length its buckets have (fiscal quarters are 3 months)
LENGTHS = {"fiscal_quarter": "quarter", "fiscal_year": "year"}


def _check_grain(grain: str) -> None:
    if grain not in QUERY_GRAINS:
        raise ValueError(f"unknown grain '{grain}'; expected one of {', '.join(QUERY_GRAINS)}")


def parse_instant(text: str, zone: ZoneInfo) -> datetime:
    """Parse an ISO-like date or date-time; values without an offset are wall time in ``zone``.

    A wall time that does not exist (skipped by a DST change) or occurs twice is read with
    ``fold=0``: the offset in force before the change.

    >>> parse_instant("2026-03-29 12:00", ZoneInfo("Europe/Berlin")).isoformat()
    '2026-03-29T10:00:00+00:00'
    >>> parse_instant("2026-03-29T12:00:00.5Z", ZoneInfo("Europe/Berlin")).isoformat()
    '2026-03-29T12:00:00.500000+00:00'
    """
    match = _INSTANT.fullmatch(text.strip())
    error = f"cannot read '{shown(text)}' as a date or time; expected {INSTANT_FORMS}"
    if match is None:
        raise ValueError(error)
    parts = match.groupdict()
    tz: ZoneInfo | timezone = zone
    if parts["offset"] is not None:
        tz = _fixed_offset(parts["offset"], error)
    try:
        value = datetime(
            int(parts["year"]),
            int(parts["month"]),
            int(parts["day"]),
            int(parts["hour"] or 0),
            int(parts["minute"] or 0),
            int(parts["second"] or 0),
            int((parts["fraction"] or "0").ljust(6, "0")),
            tzinfo=tz,
        )
        return value.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"'{shown(text)}' is not a valid date or time: {exc}") from None


def _fixed_offset(text: str, error: str) -> timezone:
    if text.upper() == "Z":
        return UTC
    hours, minutes = int(text[1:3]), int(text[4:6])
    if hours > 23 or minutes > 59:
        raise ValueError(error)
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if text[0] == "-" else delta)


def floor_instant(t: datetime, grain: str, zone: ZoneInfo,
                  calendar: Calendar = DEFAULT_CALENDAR) -> datetime:
    """The start of the ``grain`` bucket of ``zone`` (and ``calendar``) that contains ``t``.

    >>> berlin = ZoneInfo("Europe/Berlin")
    >>> floor_instant(datetime(2026, 3, 29, 12, 34, tzinfo=UTC), "week", berlin).isoformat()
    '2026-03-22T23:00:00+00:00'
    >>> floor_instant(datetime(2013, 9, 30, tzinfo=UTC), "fiscal_year", UTC,
    ...               Calendar(fiscal_start=10)).isoformat()
    '2012-10-01T00:00:00+00:00'
    """
    _check_grain(grain)
    local = _aware(t).astimezone(zone)
    if grain == "minute":
        start = local.replace(second=0, microsecond=0)
    elif grain == "hour":
        start = local.replace(minute=0, second=0, microsecond=0)
    else:
        day = local.date()
        if grain == "week":
            day -= timedelta(days=(day.weekday() - calendar.week_start) % 7)
        elif grain == "month":
            day = day.replace(day=1)
        elif grain in ("quarter", "year", "fiscal_quarter", "fiscal_year"):
            months = 3 if grain.endswith("quarter") else 12
            first = calendar.fiscal_start if grain.startswith("fiscal") else 1
            month = (day.month - first) % months  # months into the bucket
            index = day.year * 12 + day.month - 1 - month
            day = date(index // 12, index % 12 + 1, 1)
        # fold=0: the first instant of the day even if midnight occurs twice; a skipped
        # midnight resolves to the instant the day's clock starts.
        start = datetime(day.year, day.month, day.day, tzinfo=zone)
    try:
        return start.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"the {grain} of {t.isoformat()} starts before year 1") from None


def ceil_instant(t: datetime, grain: str, zone: ZoneInfo,
                 calendar: Calendar = DEFAULT_CALENDAR) -> datetime:
    """The first ``grain`` boundary of ``zone`` at or after ``t`` (``t`` itself if it is one).

    >>> ceil_instant(datetime(2026, 3, 29, 0, 1, tzinfo=UTC), "day", UTC).isoformat()
    '2026-03-30T00:00:00+00:00'
    """
    start = floor_instant(t, grain, zone, calendar)
    return start if start == t else add_grains(start, grain, 1, zone)


def add_grains(t: datetime, grain: str, n: int, zone: ZoneInfo) -> datetime:
    """The instant ``n`` buckets after the boundary ``t`` (before it when ``n`` is negative).

    Minutes and hours are exact seconds; days and coarser move the wall clock of ``zone``,
    so a day can be 23 or 25 hours. A day of month past the target month's end is clamped.

    >>> berlin = ZoneInfo("Europe/Berlin")
    >>> add_grains(datetime(2026, 3, 28, 23, tzinfo=UTC), "day", 1, berlin).isoformat()
    '2026-03-29T22:00:00+00:00'
    """
    _check_grain(grain)
    _aware(t)
    grain = LENGTHS.get(grain, grain)
    try:
        if grain in EXACT_SECONDS:
            return (t + timedelta(seconds=n * EXACT_SECONDS[grain])).astimezone(UTC)
        local = t.astimezone(zone)
        if grain in ("day", "week"):
            day = local.date() + timedelta(days=n * (7 if grain == "week" else 1))
        else:
            months = n * {"month": 1, "quarter": 3, "year": 12}[grain]
            year, month0 = divmod(local.year * 12 + local.month - 1 + months, 12)
            day = date(year, month0 + 1, min(local.day, _days_in_month(year, month0 + 1)))
        # A boundary maps to the start of the target day, even where the clock skips midnight.
        clock = time() if t == datetime.combine(local.date(), time(), tzinfo=zone).astimezone(
            UTC) and grain not in EXACT_SECONDS else local.time()
        return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(
            f"moving {n} {grain}(s) from {t.isoformat()} leaves the supported years 1 to 9999"
        ) from None


def _days_in_month(year: int, month: int) -> int:
    if month == 12:
        return 31
    return (date(year, month + 1, 1) - timedelta(days=1)).day


def _aware(t: datetime) -> datetime:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{t.isoformat()} has no time zone; pass an aware datetime")
    return t


def is_boundary(epoch_seconds: int, grain: str, zone: ZoneInfo,
                calendar: Calendar = DEFAULT_CALENDAR) -> bool:
    """Whether the instant ``epoch_seconds`` starts a ``grain`` bucket of ``zone``.

    >>> is_boundary(1774738800, "day", ZoneInfo("Europe/Berlin"))  # 2026-03-28T23:00Z
    True
    """
    t = datetime.fromtimestamp(epoch_seconds, UTC)
    return floor_instant(t, grain, zone, calendar) == t


def resolve_relative(text: str, now: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The range ``[from, to)`` that a relative phrase names, evaluated at ``now`` in ``zone``.

    ``this <unit>`` is the current bucket; ``last <unit>`` (or ``previous``) the one complete
    bucket before it; ``last N <unit>s`` the N complete buckets before it.

    >>> now = datetime(2026, 3, 29, 12, 34, 56, tzinfo=UTC)
    >>> [t.isoformat() for t in resolve_relative("last 7 days", now, UTC)]
    ['2026-03-22T00:00:00+00:00', '2026-03-29T00:00:00+00:00']
    """
    _aware(now)
    phrase = " ".join(text.lower().split())
    error = f"unknown relative time range '{shown(text)}'; expected {RELATIVE_FORMS}"
    if phrase in ("today", "yesterday"):
        grain, this, count = "day", phrase == "today", 1
    else:
        match = _RELATIVE.fullmatch(phrase)
        if match is None or match["unit"] not in GRAINS:
            raise ValueError(error)
        grain, this = match["unit"], match["this"] is not None
        digits = match["count"] or "1"
        count = int(digits) if len(digits) <= 6 else MAX_COUNT + 1
        # 'this' and a bare unit take no count; 'last 1 days' and 'last 3 day' are tolerated.
        if (match["count"] is None and match["plural"]) or (this and match["count"] is not None):
            raise ValueError(error)
        if not 1 <= count <= MAX_COUNT:
            raise ValueError(f"the count in '{shown(text)}' must be from 1 to {MAX_COUNT}")
    current = floor_instant(now, grain, zone)
    if this:
        return current, add_grains(current, grain, 1, zone)
    return add_grains(current, grain, -count, zone), current
