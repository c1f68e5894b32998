"""ClickHouse functions the engine writes: calls kept verbatim, the function that truncates a
time column to each grain, the grains a stored grain derives, and the table engines."""

from __future__ import annotations

from sqlglot import exp

from engine.time.ranges import DEFAULT_CALENDAR, Calendar
from semantic.model import FISCAL_GRAINS, QUERY_GRAINS


def call(name: str, *args: exp.Expr) -> exp.Anonymous:
    """A ClickHouse function call, kept verbatim (camelCase names survive generation).

    >>> call("uniqMerge", exp.column("u")).sql(dialect="clickhouse")
    'uniqMerge(u)'
    """
    return exp.Anonymous(this=name, expressions=list(args))


#: time grain -> the function that truncates a Date/DateTime to it.
GRAIN_FUNCTIONS: dict[str, str] = {
    "minute": "toStartOfMinute",
    "hour": "toStartOfHour",
    "day": "toDate",
    "week": "toMonday",
    "month": "toStartOfMonth",
    "quarter": "toStartOfQuarter",
    "year": "toStartOfYear",
}

#: grain -> type of its buckets (day and coarser are Dates, so JSON shows "2026-01-01").
GRAIN_TYPES: dict[str, str] = {
    "minute": "DateTime",
    "hour": "DateTime",
    "day": "Date",
    "week": "Date",
    "month": "Date",
    "quarter": "Date",
    "year": "Date",
    "fiscal_quarter": "Date",
    "fiscal_year": "Date",
}

#: stored grain -> the grains a query can get from it by truncating buckets again (in the
#: calendar the stored grain was cut in; ``derivable`` checks the calendars).
#: Weeks straddle months and years, so only week itself comes from a week rollup.
DERIVABLE_GRAINS: dict[str, frozenset[str]] = {
    "minute": frozenset(QUERY_GRAINS),
    "hour": frozenset(QUERY_GRAINS) - {"minute"},
    "day": frozenset(QUERY_GRAINS) - {"minute", "hour"},
    "week": frozenset({"week"}),
    "month": frozenset({"month", "quarter", "year", *FISCAL_GRAINS}),
    "quarter": frozenset({"quarter", "year", *FISCAL_GRAINS}),
    "year": frozenset({"year", "fiscal_year"}),
}


def derivable(stored: str, stored_calendar: Calendar, grain: str, calendar: Calendar) -> bool:
    """Whether ``grain`` buckets of ``calendar`` are unions of ``stored`` buckets cut in
    ``stored_calendar``: a week rollup serves weeks starting on its day; quarter and year
    rollups serve the fiscal quarters and years that start with their buckets."""
    if grain not in DERIVABLE_GRAINS[stored]:
        return False
    if stored == "week":
        return calendar.week_start == stored_calendar.week_start
    if stored in ("quarter", "year") and grain in FISCAL_GRAINS:
        months = 12 if stored == "year" else 3  # fiscal buckets start on stored ones
        return (calendar.fiscal_start - 1) % months == 0
    return True


def bucket_call(grain: str, value: exp.Expr, zone: str | None,
                calendar: Calendar = DEFAULT_CALENDAR) -> exp.Expr:
    """``value`` (a time, or a bucket of a finer grain) truncated to ``grain`` of ``calendar``
    (in ``zone``, None for a Date): ``toMonday(ts, 'UTC')``; a week starting on another day is
    the Monday-week of the day moved back, moved forward again; a fiscal quarter or year is
    the calendar one of the day moved back by the fiscal start, moved forward again."""
    zoned = [exp.Literal.string(zone)] if zone is not None else []
    shift = {"week": calendar.week_start,
             "fiscal_quarter": (calendar.fiscal_start - 1) % 3,
             "fiscal_year": calendar.fiscal_start - 1}.get(grain, 0)
    calendar_grain = {"fiscal_quarter": "quarter", "fiscal_year": "year"}.get(grain, grain)
    if not shift:
        return call(GRAIN_FUNCTIONS[calendar_grain], value, *zoned)
    day = call("toDate", value, *zoned)
    n = exp.Literal.number(shift)
    if grain == "week":
        return call("addDays", call("toMonday", call("subtractDays", day, n)), n.copy())
    return call("addMonths", call(GRAIN_FUNCTIONS[calendar_grain],
                                  call("subtractMonths", day, n)), n.copy())


ROLLUP_ENGINE = "AggregatingMergeTree"
SOURCE_ENGINE = "MergeTree"


def grain_step(grain: str) -> exp.Interval:
    """One bucket of a day-or-coarser grain as an interval (a fiscal quarter is 3 months)."""
    unit = {"fiscal_quarter": "QUARTER", "fiscal_year": "YEAR"}.get(grain, grain.upper())
    return exp.Interval(this=exp.Literal.string("1"), unit=exp.var(unit))
