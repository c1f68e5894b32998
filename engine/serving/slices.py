"""Answers to a time range cut from the answer to the whole range.

A query grouped by its time bucket (``grain``) over a range whose ends fall on bucket
boundaries of its time zone reads each bucket whole: every row of its answer is exactly the row
of the same bucket in the answer to the same query without the range. That answer, once known,
therefore answers every aligned range of the same query by keeping the rows whose bucket starts
in the range, then applying the query's offset and limit; any measure qualifies (distinct counts
and quantiles included), and so do metrics and measure conditions (HAVING), which hold per row.

A dashboard's date picker asks one query shape over many ranges; the server keeps the whole
answer of the shape (when it is small and read from rollups) and cuts each range from it.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from engine.dialect.types import is_date_type
from engine.model.compiled import CompiledSource
from engine.query.request import DEFAULT_LIMIT, Query
from engine.time.ranges import floor_instant

#: rows the whole answer may have to be kept for cutting (more: ranges are answered directly)
WHOLE_LIMIT = DEFAULT_LIMIT


def whole_query(source: CompiledSource, query: Query) -> Query | None:
    """The query whose answer holds every aligned range of ``query`` (a normalized query), or
    None when ``query`` cannot be cut from one: no range, no time bucket among its dimensions,
    a range end that is not a bucket boundary of its grain in its time zone, or days of a
    ``Date`` time column asked in another zone than the model's."""
    time = source.time
    if query.interval is None or query.grain is None or time is None or \
            time.name not in query.dimensions or query.timezone is None or \
            query.fill is not None:  # a filled answer has buckets no whole answer has
        return None
    if is_date_type(time.type) and query.timezone != source.timezone:
        return None
    zone = ZoneInfo(query.timezone)
    for bound in query.interval:
        if bound is not None and floor_instant(bound, query.grain, zone, query.calendar) != bound:
            return None
    return replace(query, interval=None, offset=0, limit=WHOLE_LIMIT)


def _start(value: object, zone: ZoneInfo) -> datetime | None:
    """The instant a bucket value starts at: a date at midnight in ``zone`` (as
    ``floor_instant`` counts it), an aware datetime as it is; None for anything else."""
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo is not None else None
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=zone).astimezone(UTC)
    return None


def bucket_starts(values: tuple[list[Any], ...], columns: tuple[str, ...], time: str,
                  timezone: str) -> tuple[float, ...] | None:
    """The instant (epoch seconds) each row's time bucket starts at, in an answer's
    ``values`` (``columns`` order, buckets of ``timezone``), worked out once per kept answer;
    None when a bucket value is not one this module can place in time."""
    zone = ZoneInfo(timezone)
    seen: dict[object, float] = {}
    starts: list[float] = []
    for value in values[columns.index(time)]:
        found = seen.get(value)
        if found is None:
            instant = _start(value, zone)
            if instant is None:
                return None
            found = seen[value] = instant.timestamp()
        starts.append(found)
    return tuple(starts)


def cut(values: tuple[list[Any], ...], starts: tuple[float, ...],
        query: Query) -> tuple[tuple[list[Any], ...], bool]:
    """The answer to ``query`` (normalized, with an aligned range) from ``values``, the complete
    answer to its ``whole_query``, whose rows' buckets start at ``starts``: the kept rows
    column by column, and whether more rows follow its limit."""
    assert query.interval is not None and query.limit is not None
    start, end = query.interval
    low = start.timestamp() if start is not None else -math.inf
    high = end.timestamp() if end is not None else math.inf
    kept = [row for row, instant in enumerate(starts) if low <= instant < high]
    last = query.offset + query.limit
    shown = kept[query.offset:last]
    return tuple([column[row] for row in shown] for column in values), len(kept) > last
