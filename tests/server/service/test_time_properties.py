"""Property: time functions (rolling, to-date, cumulative, offset) and comparisons, routed to
rollups and read from the raw table, equal what the test computes itself over the rows, for
random measures of every aggregation kind, windows, periods, offsets, grains, time zones (the
model's Berlin and New York, both changing clocks), ranges with ragged ends, days without rows
and several groups.

The truth is written here from the definitions: at the bucket B of the query's grain (in its
zone), ``rolling`` aggregates the rows from the start of the bucket ``window - 1`` buckets
before B to B's end; ``to_date`` from the start of the period holding B; ``cumulative``
everything before B's end; ``offset`` the bucket whose start is B's start moved back (a month
back from the 29th-31st is the shorter month's last day); a comparison is each value at the
bucket moved back. Over no rows, counts and sums are 0 and the rest null.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.query.request import Filter, Query, TimeRange
from server.runtime.compiled import Runtime
from server.warehouse.statements import Warehouse
from tests.support import (
    EVENTS_HEAD,
    build,
    create_events,
    fresh_database,
    insert_rows,
    model_text,
)

MODEL = EVENTS_HEAD + """\
    timezone: Europe/Berlin
    week_start: sunday
    fiscal_year_start: october
    dimensions: {{region: {{}}}}
    measures:
      n: {{agg: count}}
      users: {{agg: count_distinct, column: user_id}}
      amount: {{agg: sum, column: amount}}
      avg_amount: {{agg: avg, column: amount}}
      max_amount: {{agg: max, column: amount}}
      p50: {{agg: median, column: amount, method: exact}}
    metrics:
      n_7d: {{rolling: {{measure: n, window: 7 days}}}}
      users_2w: {{rolling: {{measure: users, window: 2 weeks}}}}
      amount_3m: {{rolling: {{measure: amount, window: 3 months}}}}
      max_48h: {{rolling: {{measure: max_amount, window: 48 hours}}}}
      avg_2q: {{rolling: {{measure: avg_amount, window: 2 quarters}}}}
      n_wtd: {{to_date: {{measure: n, period: week}}}}
      users_mtd: {{to_date: {{measure: users, period: month}}}}
      p50_qtd: {{to_date: {{measure: p50, period: quarter}}}}
      amount_ytd: {{to_date: {{measure: amount, period: year}}}}
      n_fqtd: {{to_date: {{measure: n, period: fiscal_quarter}}}}
      users_fytd: {{to_date: {{measure: users, period: fiscal_year}}}}
      n_all: {{cumulative: {{measure: n}}}}
      users_all: {{cumulative: {{measure: users}}}}
      n_lm: {{offset: {{measure: n, by: 1 month}}}}
      users_ly: {{offset: {{measure: users, by: 1 year}}}}
      amount_lw: {{offset: {{measure: amount, by: 1 week}}}}
      max_3h: {{offset: {{measure: max_amount, by: 3 hours}}}}
      per_user_2w: {{sql: n_7d / users_2w}}
    rollups:
      hourly:
        dimensions: [region]
        grain: hour
        measures: [n, users, amount, avg_amount, max_amount, p50]
      daily:
        dimensions: [region]
        grain: day
        measures: [n, users, amount, max_amount]
      weekly:
        dimensions: [region]
        grain: week
        measures: [n, users]
      monthly:
        grain: month
        measures: [n, users, amount, avg_amount, p50]
"""

MODEL_ZONE = "Europe/Berlin"
FIRST = datetime(2023, 1, 1, tzinfo=UTC)
LAST = datetime(2024, 12, 31, tzinfo=UTC)
REGIONS = ("eu", "us", "apac")

#: measure -> (aggregate over a list of rows (user, amount), value over no rows)
MEASURES: dict[str, Callable[[list[tuple[int, int]]], Any]] = {
    "n": len,
    "users": lambda rows: len({u for u, _ in rows}),
    "amount": lambda rows: sum(a for _, a in rows),
    "avg_amount": lambda rows: sum(a for _, a in rows) / len(rows) if rows else None,
    "max_amount": lambda rows: max(a for _, a in rows) if rows else None,
    "p50": lambda rows: _median_exact([a for _, a in rows]) if rows else None,
}
#: time function -> (kind, measure, argument): window/by as (count, unit), period
FUNCTIONS: dict[str, tuple[str, str, Any]] = {
    "n_7d": ("rolling", "n", (7, "day")), "users_2w": ("rolling", "users", (2, "week")),
    "amount_3m": ("rolling", "amount", (3, "month")),
    "max_48h": ("rolling", "max_amount", (48, "hour")),
    "avg_2q": ("rolling", "avg_amount", (2, "quarter")),
    "n_wtd": ("to_date", "n", "week"), "users_mtd": ("to_date", "users", "month"),
    "p50_qtd": ("to_date", "p50", "quarter"), "amount_ytd": ("to_date", "amount", "year"),
    "n_fqtd": ("to_date", "n", "fiscal_quarter"), "users_fytd": ("to_date", "users", "fiscal_year"),
    "n_all": ("cumulative", "n", None), "users_all": ("cumulative", "users", None),
    "n_lm": ("offset", "n", (1, "month")), "users_ly": ("offset", "users", (1, "year")),
    "amount_lw": ("offset", "amount", (1, "week")), "max_3h": ("offset", "max_amount", (3, "hour")),
}
MONTHS = {"month": 1, "quarter": 3, "year": 12, "fiscal_quarter": 3, "fiscal_year": 12}
#: the model's calendar and the overrides queries try
WEEK_STARTS = ("sunday", "monday", "wednesday")
FISCAL_STARTS = ("october", "january", "february")
WEEKDAY = {"monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4,
           "saturday": 5, "sunday": 6}
MONTH = {"january": 1, "february": 2, "october": 10}


def _in_buckets(count: int, unit: str, grain: str) -> int:
    """How many ``grain`` buckets ``count`` ``unit``s are (the test only asks whole ones)."""
    if grain in MONTHS:
        return count * MONTHS[unit] // MONTHS[grain]
    days = {"day": 1, "week": 7}
    if grain in days:
        return count * days[unit] // days[grain]
    return count  # hours at hour grain


def _median_exact(values: list[int]) -> float:
    """ClickHouse's quantileExact(0.5): the element at floor(0.5 * n) of the sorted values."""
    return float(sorted(values)[len(values) // 2])


# the calendar, written here -------------------------------------------------------------
def _floor(t: datetime, unit: str, zone: ZoneInfo, week_start: str = "monday",
           fiscal_start: str = "january") -> datetime:
    """The start of the bucket holding ``t``: weeks from ``week_start``, fiscal quarters and
    years from the first of ``fiscal_start``."""
    local = t.astimezone(zone)
    if unit == "hour":
        return local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
    day = local.date()
    if unit == "week":
        day -= timedelta(days=(day.weekday() - WEEKDAY[week_start]) % 7)
    elif unit in MONTHS:
        first = MONTH[fiscal_start] if unit.startswith("fiscal") else 1
        back = (day.month - first) % MONTHS[unit]  # months since the bucket began
        index = day.year * 12 + day.month - 1 - back
        day = date(index // 12, index % 12 + 1, 1)
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def _move(t: datetime, count: int, unit: str, zone: ZoneInfo) -> datetime:
    """``t`` moved by ``count`` units (negative: back) on the wall clock of ``zone``; a day of
    month past the target month's end is its last day."""
    if unit == "hour":
        return t + timedelta(hours=count)
    local = t.astimezone(zone)
    if unit in ("day", "week"):
        day = local.date() + timedelta(days=count * (7 if unit == "week" else 1))
    else:
        months = local.year * 12 + local.month - 1 + count * MONTHS[unit]
        year, month = divmod(months, 12)
        last = (date(year + (month == 11), (month + 1) % 12 + 1, 1) - timedelta(days=1)).day
        day = date(year, month + 1, min(local.day, last))
    return datetime.combine(day, local.time().replace(tzinfo=None), tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True)
class Data:
    rows: tuple[tuple[datetime, str, int, int], ...]  # ts (UTC), region, user, amount


def _data() -> Data:
    """Rows over two years with whole weeks and months without any, hours around both DST
    changes, three regions of unequal size."""
    rng = random.Random(20131)
    rows = []
    t = FIRST
    while t < LAST:
        quiet = t.month in (2, 8) and t.day < 20 or t.isocalendar().week % 9 == 0
        if not quiet:
            for _ in range(rng.choice((0, 1, 1, 2, 3))):
                at = t + timedelta(minutes=rng.randrange(0, 24 * 60))
                rows.append((at, rng.choice(REGIONS[:2] if rng.random() < 0.8 else REGIONS),
                             rng.randrange(0, 40), rng.randrange(-5, 100)))
        t += timedelta(days=1)
    return Data(tuple(sorted(rows)))


@dataclass(frozen=True)
class Ask:
    measures: tuple[str, ...]
    grain: str
    by_region: bool
    timezone: str
    start: int  # days after FIRST
    days: int
    ragged: bool
    compare: str | None
    fill: str | None
    region: str | None
    week_start: str | None = None  # None: the model's (sunday)
    fiscal_start: str | None = None  # None: the model's (october)


GRAINS = ("hour", "day", "week", "month", "quarter", "fiscal_quarter", "fiscal_year")
#: what each grain can compute (the engine refuses the rest with a 400)
FITS: dict[str, tuple[str, ...]] = {
    "hour": ("n", "users", "amount", "max_amount", "max_48h", "n_wtd", "users_mtd", "n_all",
             "max_3h", "n_fqtd"),
    "day": ("n", "users", "avg_amount", "p50", "n_7d", "users_2w", "n_wtd", "users_mtd",
            "p50_qtd", "amount_ytd", "n_all", "users_all", "n_lm", "users_ly", "amount_lw",
            "per_user_2w", "n_fqtd", "users_fytd"),
    "week": ("n", "users", "users_2w", "n_wtd", "n_all", "amount_lw"),
    "month": ("n", "users", "p50", "amount_3m", "avg_2q", "users_mtd", "p50_qtd",
              "amount_ytd", "n_lm", "users_ly", "users_all", "n_fqtd", "users_fytd"),
    "quarter": ("n", "avg_amount", "avg_2q", "p50_qtd", "amount_ytd", "users_ly", "n_all"),
    "fiscal_quarter": ("n", "users", "avg_2q", "n_fqtd", "users_fytd", "users_ly", "n_all"),
    "fiscal_year": ("n", "users", "users_fytd", "users_ly", "n_all"),
}
COMPARES: dict[str, tuple[str | None, ...]] = {
    "hour": (None, "24 hours", "previous_period"), "day": (None, "1 year", "1 month", "7 days",
                                                           "previous_period"),
    "week": (None, "1 week", "52 weeks"), "month": (None, "1 year", "previous_period"),
    "quarter": (None, "1 year", "1 quarter"),
    "fiscal_quarter": (None, "1 year", "1 quarter", "previous_period"),
    "fiscal_year": (None, "1 year", "previous_period"),
}
#: how long a range of each grain may be (days), to keep hour answers small
SPANS = {"hour": 4, "day": 70, "week": 120, "month": 400, "quarter": 500,
         "fiscal_quarter": 500, "fiscal_year": 700}


@st.composite
def asks(draw: st.DrawFn) -> Ask:
    grain = draw(st.sampled_from(GRAINS))
    return Ask(
        measures=tuple(draw(st.lists(st.sampled_from(FITS[grain]), min_size=1, max_size=3,
                                     unique=True))),
        grain=grain, by_region=draw(st.booleans()),
        timezone=draw(st.sampled_from((MODEL_ZONE, MODEL_ZONE, "America/New_York"))),
        start=draw(st.integers(0, 700)), days=draw(st.integers(1, SPANS[grain])),
        ragged=draw(st.booleans()), compare=draw(st.sampled_from(COMPARES[grain])),
        fill=draw(st.sampled_from((None, None, "zero", "null"))),
        region=draw(st.sampled_from((None, None, "us"))),
        week_start=draw(st.sampled_from((None, *WEEK_STARTS))),
        fiscal_start=draw(st.sampled_from((None, *FISCAL_STARTS))))


def _range(ask: Ask) -> tuple[datetime, datetime]:
    zone = ZoneInfo(ask.timezone)
    start = datetime.combine((FIRST + timedelta(days=ask.start)).date(), time(), tzinfo=zone)
    if ask.ragged:
        start += timedelta(hours=5, minutes=30)
    return start.astimezone(UTC), (start + timedelta(days=ask.days)).astimezone(UTC)


def _query(ask: Ask) -> Query:
    start, end = _range(ask)
    filters = (Filter("region", "eq", (ask.region,)),) if ask.region else ()
    return Query("events", ask.measures, ("region",) if ask.by_region else (), ask.grain,
                 filters, limit=100_000, timezone=ask.timezone,
                 time_range=TimeRange(start.isoformat(), end.isoformat()),
                 compare=ask.compare, fill=ask.fill, week_start=ask.week_start,
                 fiscal_year_start=ask.fiscal_start)


Truth = dict[tuple[Any, ...], dict[str, Any]]


class Oracle:
    """The answer computed from the rows and the definitions above."""

    def __init__(self, data: Data, ask: Ask) -> None:
        self.ask = ask
        self.zone = ZoneInfo(ask.timezone)
        self.rows = [r for r in data.rows if ask.region is None or r[1] == ask.region]
        if ask.compare is None and all(m in MEASURES for m in ask.measures):
            # a plain query reads its range as given (no bucket is widened)
            start, end = _range(ask)
            self.rows = [r for r in self.rows if start <= r[0] < end]

    def floor(self, t: datetime, unit: str) -> datetime:
        return _floor(t, unit, self.zone, self.ask.week_start or "sunday",
                      self.ask.fiscal_start or "october")

    def group(self, region: str) -> str | None:
        return region if self.ask.by_region else None

    def between(self, group: str | None, start: datetime | None,
                end: datetime) -> list[tuple[int, int]]:
        return [(u, a) for ts, region, u, a in self.rows
                if self.group(region) == group and (start is None or start <= ts) and ts < end]

    def later(self, t: datetime, n: int = 1) -> datetime:
        return _move(t, n, self.ask.grain, self.zone)

    def value(self, name: str, group: str | None, bucket: datetime) -> Any:
        """A measure or time function at the bucket starting at ``bucket``."""
        end = self.later(bucket)
        if name == "per_user_2w":
            users = self.value("users_2w", group, bucket)
            return self.value("n_7d", group, bucket) / users if users else None
        if name in MEASURES:
            return MEASURES[name](self.between(group, bucket, end))
        kind, measure, argument = FUNCTIONS[name]
        if kind == "rolling":
            count, unit = argument
            buckets = _in_buckets(count, unit, self.ask.grain)
            return MEASURES[measure](self.between(group, self.later(bucket, 1 - buckets), end))
        if kind == "to_date":
            return MEASURES[measure](self.between(group, self.floor(bucket, argument),
                                                  end))
        if kind == "cumulative":
            return MEASURES[measure](self.between(group, None, end))
        count, unit = argument
        moved = _move(bucket, -count, unit, self.zone)
        return MEASURES[measure](self.between(group, moved, self.later(moved)))

    def answer(self) -> Truth:
        ask = self.ask
        start, end = _range(ask)
        first = self.floor(start, ask.grain)
        stop = end if self.floor(end, ask.grain) == end else \
            self.later(self.floor(end, ask.grain))
        present = {(self.group(region), self.floor(ts, ask.grain))
                   for ts, region, _, _ in self.rows if first <= ts < stop}
        keys = set(present)
        if ask.fill:
            buckets = [first]
            while self.later(buckets[-1]) < stop:
                buckets.append(self.later(buckets[-1]))
            # every group of the answer, and without groups the one series, even empty
            groups = {group for group, _ in present} if ask.by_region else {None}
            keys |= {(group, b) for group in groups for b in buckets}
        back = None
        if ask.compare == "previous_period":
            back = _previous(first, stop, self.zone, ask.grain)
        elif ask.compare:
            count, unit = ask.compare.split()
            back = (int(count), unit.rstrip("s"))
        truth: Truth = {}
        for group, bucket in keys:
            row = {}
            for name in ask.measures:
                value = self.value(name, group, bucket)
                if ask.fill == "null" and (group, bucket) not in present and \
                        name in MEASURES:
                    value = None
                row[name] = value
                if back is not None:
                    before = self.value(name, group, _move(bucket, -back[0], back[1], self.zone))
                    row[f"{name}__compare"] = before
                    row[f"{name}__change"] = None if value is None or before is None else \
                        value - before
                    row[f"{name}__change_ratio"] = None if value is None or not before else \
                        value / before - 1
            truth[(group, bucket)] = row
        return truth


def _previous(start: datetime, end: datetime, zone: ZoneInfo, grain: str) -> tuple[int, str]:
    """The range's length in the largest unit measuring it; in hours at hour grain."""
    units = {"hour": ("hour",), "week": ("day",)}.get(grain, ("year", "quarter", "month",
                                                                "day"))
    for unit in units:
        for count in range(1, 2000):
            moved = _move(start, count, unit, zone)
            if moved == end:
                return count, unit
            if moved > end:
                break
    raise AssertionError("no previous period")


def _served(runtime: Runtime, query: Query, ask: Ask) -> tuple[Truth, set[str]]:
    answer = runtime.run(runtime.plan(query, secured=True))
    zone = ZoneInfo(ask.timezone)
    found: Truth = {}
    for row in answer.rows:
        bucket = row["ts"]
        if isinstance(bucket, datetime):
            start = bucket.astimezone(UTC)
        else:
            start = datetime.combine(bucket, time(), tzinfo=zone).astimezone(UTC)
        key = (row["region"] if ask.by_region else None, start)
        found[key] = {k: v for k, v in row.items() if k not in ("region", "ts")}
    # a raw piece outside the data (an open range's start before the zone's first aligned
    # hour, in 1893) reads nothing: not counted
    first, last = FIRST - timedelta(days=1), LAST + timedelta(days=1)
    tables = {p.rollup.name if p.rollup else "raw" for p in answer.plan.pieces
              if p.rollup is not None or not (p.end is not None and p.end <= first or
                                              p.start is not None and p.start >= last)}
    return found, tables


def _close(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(b)))


def _same(found: Truth, truth: Truth, ask: Ask) -> None:
    assert set(found) == set(truth), (ask, sorted(set(found) - set(truth))[:3],
                                      sorted(set(truth) - set(found))[:3])
    for key, row in truth.items():
        for name, value in row.items():
            assert _close(found[key][name], value), (ask, key, name, found[key][name], value)


@pytest.fixture(scope="module")
def served(warehouse: Warehouse) -> Iterator[tuple[Data, Runtime]]:
    data = _data()
    with fresh_database(warehouse, "timefn") as db:
        create_events(warehouse, db, "ts DateTime('UTC'), region String, user_id UInt32, "
                      "amount Int32")
        half = len(data.rows) // 2
        for rows in (data.rows[:half], data.rows[half:]):  # two parts
            insert_rows(warehouse, f"{db}.events",
                        [(ts.replace(tzinfo=None), r, u, a) for ts, r, u, a in rows])
        _, _, runtime = build(warehouse, model_text(MODEL, db=db))
        yield data, runtime


@given(ask=asks())
def test_time_functions_equal_the_definitions(served: tuple[Data, Runtime], ask: Ask) -> None:
    data, runtime = served
    query = _query(ask)
    truth = Oracle(data, ask).answer()
    routed, tables = _served(runtime, query, ask)
    raw, raw_tables = _served(runtime, replace(query, force_raw=True), ask)
    assert raw_tables <= {"raw"}
    _same(raw, truth, ask)
    _same(routed, truth, ask)
    if ask.compare is not None or any(m not in MEASURES for m in ask.measures):
        # the range is widened to whole buckets, so rollups serve all of it, lookback included
        assert "raw" not in tables, (ask, tables)

