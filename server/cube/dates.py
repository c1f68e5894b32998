"""Cube's date ranges read as Cube reads them, turned into our half-open ranges.

Cube's ranges include both ends: ``["2026-01-01", "2026-01-07"]`` runs from midnight on the
1st to ``2026-01-07T23:59:59.999``, and a timestamp end includes that millisecond. Values are
wall times of the query's time zone; like Cube (which reads them with ``moment.utc(...)``), a
value written with an offset is first turned into UTC wall time, which is then read in that
zone. Our ranges are ``[from, to)``: a date end moves to the next midnight, a timestamp end one
millisecond on. Relative strings follow Cube's ``dateParser``: ``today``, ``yesterday``,
``tomorrow``, ``this|last|next <unit>``, ``last|next N <units>``, ``from X to Y`` and a single
date, with ISO weeks.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from engine.query.request import QueryError
from engine.time.ranges import add_grains, floor_instant, parse_instant
from semantic.model import GRAINS
from semantic.suggest import shown

#: an instant range ``[start, end)``, UTC; None for an open side
Bounds = tuple[datetime | None, datetime | None]

MILLISECOND = timedelta(milliseconds=1)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_UNITS = "|".join(GRAINS)
_ONE = re.compile(rf"^(this|last|next)\s+({_UNITS})$")
_MANY = re.compile(rf"^(last|next)\s+(\d{{1,6}})\s+({_UNITS})s?$")
_FROM_TO = re.compile(r"^from\s+(.+?)\s+to\s+(.+)$")
RELATIVE_FORMS = ("'today', 'yesterday', 'tomorrow', 'this|last|next <unit>', "
                  "'last|next N <units>', 'from <date> to <date>' or a date, where <unit> is "
                  + ", ".join(GRAINS))


def _wall(text: str, zone: ZoneInfo, field: str) -> datetime:
    """A date or time as Cube reads it: the UTC wall time of what was written (milliseconds
    kept), read in ``zone``; returned as a UTC instant."""
    try:
        utc_wall = parse_instant(text, ZoneInfo("UTC"))
    except ValueError as exc:
        raise QueryError(field, str(exc)) from None
    wall = utc_wall.replace(microsecond=utc_wall.microsecond // 1000 * 1000, tzinfo=None)
    try:
        return parse_instant(wall.isoformat(), zone)
    except ValueError as exc:  # pragma: no cover - a wall time parse_instant just wrote
        raise QueryError(field, str(exc)) from None


def range_start(text: object, zone: ZoneInfo, field: str) -> datetime:
    """The first instant a range starting at ``text`` includes."""
    return _wall(_text(text, field), zone, field)


def range_end(text: object, zone: ZoneInfo, field: str) -> datetime:
    """The first instant after a range ending (inclusively) at ``text``; a range ending on the
    last supported day (9999-12-31) has no such instant and is refused, as the query API
    refuses it."""
    text = _text(text, field)
    start = _wall(text, zone, field)
    try:
        if _DATE.match(text.strip()):
            return add_grains(start, "day", 1, zone)
        return start + MILLISECOND
    except (ValueError, OverflowError):
        raise QueryError(field, f"a range ending at '{shown(text)}' ends past the supported "
                         "years 1 to 9999; end it on 9999-12-30 at the latest, or leave "
                         "the end out") from None


def _text(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise QueryError(field, "a date or time is a string like '2026-01-31' or "
                         "'2026-01-31T12:00:00.000'")
    return value


def resolve_relative(text: str, zone: ZoneInfo, now: datetime, field: str) -> tuple[
        datetime, datetime]:
    """A relative range as ``[start, end)`` at ``now``.

    >>> now = datetime(2026, 3, 29, 12, 34, tzinfo=UTC)
    >>> [t.isoformat() for t in resolve_relative("last 7 days", ZoneInfo("UTC"), now, "d")]
    ['2026-03-22T00:00:00+00:00', '2026-03-29T00:00:00+00:00']
    """
    try:
        return _relative(text, zone, now, field)
    except (ValueError, OverflowError) as exc:
        raise QueryError(field, f"the date range '{shown(text)}' leaves the supported years "
                         f"1 to 9999 ({exc})") from None


def _relative(text: str, zone: ZoneInfo, now: datetime, field: str) -> tuple[
        datetime, datetime]:
    phrase = " ".join(text.lower().split())
    days = {"today": 0, "yesterday": -1, "tomorrow": 1}
    if phrase in days:
        start = add_grains(floor_instant(now, "day", zone), "day", days[phrase], zone)
        return start, add_grains(start, "day", 1, zone)
    one, many = _ONE.match(phrase), _MANY.match(phrase)
    if one or many:
        if one:
            unit, first, count = one[2], {"this": 0, "last": -1, "next": 1}[one[1]], 1
        else:
            assert many is not None
            unit, count = many[3], int(many[2])
            if count < 1:
                raise QueryError(field, f"the count in '{shown(text)}' must be at least 1")
            first = -count if many[1] == "last" else 1
        current = floor_instant(now, unit, zone)
        return (add_grains(current, unit, first, zone),
                add_grains(current, unit, first + count, zone))
    between = _FROM_TO.match(phrase)
    if between:
        start = floor_instant(_wall(between[1], zone, field), "day", zone)
        end = add_grains(floor_instant(_wall(between[2], zone, field), "day", zone), "day", 1,
                         zone)
        return start, end
    try:
        start = floor_instant(_wall(phrase, zone, field), "day", zone)
    except QueryError:
        raise QueryError(field, f"cannot read the date range '{shown(text)}'; use a "
                         f"[from, to] pair or {RELATIVE_FORMS}") from None
    return start, add_grains(start, "day", 1, zone)


def resolve_range(value: object, zone: ZoneInfo, now: datetime,
                  field: str) -> tuple[datetime, datetime]:
    """A ``dateRange`` (a relative string, or a list of one or two dates or times) as
    ``[start, end)``."""
    if isinstance(value, str):
        start, end = resolve_relative(value, zone, now, field)
    elif isinstance(value, list) and 1 <= len(value) <= 2:
        start = range_start(value[0], zone, f"{field}[0]")
        end = range_end(value[-1], zone, f"{field}[{len(value) - 1}]")
    else:
        raise QueryError(field, "a date range is a [from, to] pair of dates or times, or a "
                         f"relative string: {RELATIVE_FORMS}")
    if end <= start:
        raise QueryError(field, "the date range ends before it starts")
    return start, end


def local_text(instant: datetime, zone: ZoneInfo) -> str:
    """An instant as Cube writes times: local wall time with milliseconds.

    >>> local_text(datetime(2026, 3, 29, 10, tzinfo=UTC), ZoneInfo("Europe/Berlin"))
    '2026-03-29T12:00:00.000'
    """
    local = instant.astimezone(zone)
    return (f"{local.year:04d}-" + local.strftime("%m-%dT%H:%M:%S.")
            + f"{local.microsecond // 1000:03d}")


def cube_range(bounds: tuple[datetime, datetime], zone: ZoneInfo) -> list[str]:
    """A ``[start, end)`` range as Cube's inclusive pair, as its normalized queries show it."""
    start, end = bounds
    return [local_text(start, zone), local_text(end - MILLISECOND, zone)]


def intersect(ranges: list[Bounds], field: str) -> Bounds | None:
    """Where every range holds (None when nothing restricts time)."""
    if not ranges:
        return None
    starts = [s for s, _ in ranges if s is not None]
    ends = [e for _, e in ranges if e is not None]
    start, end = (max(starts) if starts else None), (min(ends) if ends else None)
    if start is not None and end is not None and end <= start:
        raise QueryError(field, "the date ranges and date filters of this query leave no time "
                         "to query")
    return start, end


def utc_text(instant: datetime | None) -> str | None:
    return instant.astimezone(UTC).isoformat() if instant is not None else None
