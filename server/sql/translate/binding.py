"""Binding: a translated statement's parameters, times from the clock and bounds of the time
column replaced by values, each time it runs."""

from __future__ import annotations

import datetime as dt
import re
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlglot import exp

from server.sql.errors import INVALID_PARAMETER, UNSUPPORTED, SqlError
from server.sql.translate.builder import (
    After,
    Moment,
    Naive,
    Param,
    Spread,
    Translated,
    from_clock,
    naive_time,
)
from server.sql.translate.conditions import LIKE, NOT_LIKE, like_filter, negated
from server.sql.types import (
    TEXT,
    PgType,
)

#: the clock of the statement being bound (``bind``'s ``now``)
_NOW: ContextVar[dt.datetime | None] = ContextVar("sql_now", default=None)

# -- parameters ---------------------------------------------------------------------------


def _bound(value: object, values: list[object]) -> object:
    if isinstance(value, Param):
        if value.index >= len(values):
            raise SqlError("08P01", f"the statement uses ${value.index + 1} but "
                           f"{len(values)} parameter(s) were bound")
        value = values[value.index]
        if isinstance(value, list | tuple):
            raise SqlError("42883", "a list (array) parameter is compared as one value; write "
                           "= ANY($n) to compare with each of its items")
    if isinstance(value, Moment):
        return evaluate_moment(value.expression, _NOW.get() or dt.datetime.now(dt.UTC)
                               ).isoformat(" ")
    if isinstance(value, Naive):
        bound = _bound(value.value, values)
        return naive_time(bound) if isinstance(bound, str) else bound
    if isinstance(value, After):
        instant = _floor(_instant(_bound(value.value, values)), value.step)
        return (instant + value.step).isoformat(" ")
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat(" ") if isinstance(value, dt.datetime) else value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        raise SqlError(INVALID_PARAMETER, "a NULL parameter in a comparison is never true; "
                       "use IS NULL")
    if not isinstance(value, str | int | float):
        return str(value)
    return value


_SHIFTS = {"second": "seconds", "minute": "minutes", "hour": "hours", "day": "days",
           "week": "weeks", "month": "months", "quarter": "quarters", "year": "years"}


def _interval(node: exp.Interval) -> tuple[int, str]:
    """``INTERVAL '-30 day'``: how many of which unit."""
    unit = node.args.get("unit")
    text = f"{node.this.name} {unit.name if unit is not None else ''}".strip().lower()
    found = re.fullmatch(r"([+-]?\d+)\s+([a-z]+?)s?", text)
    if found is None or found.group(2) not in _SHIFTS:
        raise SqlError(UNSUPPORTED, f"INTERVAL '{text}': write one count of one unit, "
                       "INTERVAL '7 days'")
    return int(found.group(1)), found.group(2)


def _moved(moment: dt.datetime, count: int, unit: str) -> dt.datetime:
    """``moment`` moved by ``count`` units in calendar arithmetic, on the wall clock (a
    month from the 31st lands on the last day of the shorter month, as PostgreSQL does)."""
    if unit in ("month", "quarter", "year"):
        months = count * {"month": 1, "quarter": 3, "year": 12}[unit]
        index = moment.year * 12 + moment.month - 1 + months
        year, month = divmod(index, 12)
        last = (dt.date(year + (month + 1) // 12, (month + 1) % 12 + 1, 1)
                - dt.timedelta(days=1)).day
        return moment.replace(year=year, month=month + 1, day=min(moment.day, last))
    return moment + dt.timedelta(**{_SHIFTS[unit]: count})


def _truncated(moment: dt.datetime, unit: str) -> dt.datetime:
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    cuts = {"second": moment.replace(microsecond=0),
            "minute": moment.replace(second=0, microsecond=0),
            "hour": moment.replace(minute=0, second=0, microsecond=0), "day": day,
            "week": day - dt.timedelta(days=day.weekday()), "month": day.replace(day=1),
            "quarter": day.replace(day=1, month=(day.month - 1) // 3 * 3 + 1),
            "year": day.replace(day=1, month=1)}
    if unit not in cuts:
        raise SqlError(UNSUPPORTED, f"date_trunc('{unit}', ...) of the clock: the units are "
                       f"{', '.join(cuts)}")
    return cuts[unit]


def evaluate_moment(node: exp.Expression, now: dt.datetime) -> dt.datetime:
    """A value computed from the clock, at ``now`` (an aware time in the session's zone).

    >>> import sqlglot, zoneinfo
    >>> now = dt.datetime(2026, 3, 31, 15, 30, tzinfo=zoneinfo.ZoneInfo("UTC"))
    >>> def at(text):
    ...     return evaluate_moment(sqlglot.parse_one(text, read="postgres"), now).isoformat()
    >>> at("now() - interval '7 days'"), at("date_trunc('day', now() + interval '-30 day')")
    ('2026-03-24T15:30:00+00:00', '2026-03-01T00:00:00+00:00')
    >>> at("date_trunc('month', current_date) - interval '1 month'"), at("current_date - 1")
    ('2026-02-01T00:00:00+00:00', '2026-03-30T00:00:00+00:00')
    >>> at("now() - interval '1 month'")
    '2026-02-28T15:30:00+00:00'
    """
    if isinstance(node, exp.Paren):
        return evaluate_moment(node.this, now)
    if isinstance(node, exp.CurrentDate):
        return _truncated(now, "day")
    if from_clock(node):
        return now
    if isinstance(node, exp.TimestampTrunc | exp.DateTrunc):
        unit = node.unit.name.lower() if node.unit is not None else ""
        return _truncated(evaluate_moment(node.this, now), unit)
    if isinstance(node, exp.Cast) and node.to.this in (exp.DType.DATE, exp.DType.DATE32):
        return _truncated(evaluate_moment(node.this, now), "day")
    if isinstance(node, exp.Cast):
        return evaluate_moment(node.this, now)
    if isinstance(node, exp.Add | exp.Sub):
        sign = 1 if isinstance(node, exp.Add) else -1
        moment = evaluate_moment(node.this, now)
        by = node.expression
        if isinstance(by, exp.Interval):
            count, unit = _interval(by)
            return _moved(moment, sign * count, unit)
        if isinstance(by, exp.Literal) and not by.is_string and by.this.isdigit():
            return _moved(moment, sign * int(by.this), "day")  # a date plus days
    raise SqlError(UNSUPPORTED, f"{node.sql('postgres')[:200]}: a time computed from the clock "
                   "is now(), current_date, date_trunc of them and +/- INTERVAL 'n unit'")


def _floor(instant: dt.datetime, step: dt.timedelta) -> dt.datetime:
    """The last value of the column's resolution at or before ``instant``: a strict bound
    moves from there by one step (``> 03.5`` is ``>= 04`` at whole seconds).

    >>> str(_floor(dt.datetime(2026, 3, 1, 0, 0, 3, 500000), dt.timedelta(seconds=1)))
    '2026-03-01 00:00:03'
    """
    if step >= dt.timedelta(days=1):
        return instant.replace(hour=0, minute=0, second=0, microsecond=0)
    micros = step // dt.timedelta(microseconds=1)
    return instant - dt.timedelta(microseconds=(instant.second * 1_000_000
                                                + instant.microsecond) % micros)


def _instant(value: object) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None) if value.tzinfo is None else value
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    try:
        return dt.datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise SqlError("22007", f"invalid input syntax for type timestamp: {value!r}") from None


@dataclass(frozen=True, slots=True)
class Bound:
    """A statement's query with its parameters bound."""

    body: dict[str, Any]
    #: more rows than the limit is an error (the statement did not bound its rows itself)
    strict: bool
    #: ``LIMIT 0``: no rows (the query is still checked and run)
    empty: bool


def bind(translated: Translated, values: list[object], now: dt.datetime | None = None) -> Bound:
    """The body with every parameter (and bound of the time column) replaced by its value;
    times computed from the clock are evaluated at ``now`` (aware, in the session's zone;
    default: the present, UTC)."""
    token = _NOW.set(now)
    try:
        return _bind(translated, values)
    finally:
        _NOW.reset(token)


def _bind(translated: Translated, values: list[object]) -> Bound:

    def leaf(node: dict[str, Any]) -> dict[str, Any]:
        items: list[object] = []
        for value in node.get("values", ()):
            if isinstance(value, Spread):  # x = ANY($1): the list's items
                listed = values[value.index] if value.index < len(values) else None
                if not isinstance(listed, list | tuple):
                    raise SqlError("42883", "= ANY($n) takes a list (an array) parameter")
                items += [_bound(v, values) for v in listed if v is not None]
            else:
                items.append(_bound(value, values))
        if node["op"] in (LIKE, NOT_LIKE):
            op, items = like_filter(node["member"], items[0])
            if node["op"] == NOT_LIKE:
                op = negated({"member": node["member"], "op": op})["op"]
            return {**node, "op": op, "values": items}
        if "values" in node and not items:
            raise SqlError(UNSUPPORTED, f"the list compared with {node['member']} is empty")
        return {**node, "values": items} if "values" in node else node

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if "member" in node and "op" in node:
                return leaf(node)
            return {k: None if k in ("limit", "offset") and isinstance(v, Param)
                    and v.index < len(values) and values[v.index] is None  # LIMIT NULL
                    else walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, Param | After | Naive | Moment):
            return _bound(node, values)
        return node

    body: dict[str, Any] = walk(translated.body)
    if body.get("offset", 0) is None:
        del body["offset"]
    strict, empty = not translated.limited, translated.empty
    limit = body.get("limit")
    if limit is None or (isinstance(limit, int) and limit > translated.max_rows):
        # no LIMIT (or NULL, ALL, more than an answer may have): all rows, or an error
        body["limit"], strict = translated.max_rows, True
    elif limit == 0:
        body["limit"], empty = 1, True
    return Bound(body, strict, empty)


def parameter_types(translated: Translated, count: int) -> list[PgType]:
    return [translated.parameters.get(i, TEXT) for i in range(count)]
