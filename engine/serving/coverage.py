"""Which rollups can answer a query exactly, and which part of its time range each serves whole
(the *middle*), leaving edges to finer rollups or the raw table."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlglot import exp

from engine.dialect.functions import DERIVABLE_GRAINS, derivable
from engine.model.compiled import CompiledRollup, CompiledSource
from engine.query.request import Interval, Query
from engine.serving.plan import Rejection, RollupStats, Span
from engine.time.ranges import ceil_instant, floor_instant, is_boundary
from engine.time.zones import aligned_runs


def covers(source: CompiledSource, rollup: CompiledRollup, name: str) -> bool:
    """Whether the rollup can group by a dimension: it stores it, or stores the source column
    it is, or (a joined dimension) stores the key columns its first join matches by."""
    if any(d.name == name for _, d in rollup.dimensions):
        return True
    dimension = source.dimensions[name]
    if dimension.path:
        return all(rollup.stored_column(own) is not None
                   for own, _ in source.paths[dimension.path[:1]].joins[0].keys)
    expression = dimension.expression
    return isinstance(expression, exp.Column) and not expression.table and \
        rollup.stored_column(expression.name) is not None


def static_reject(source: CompiledSource, query: Query,
                   rollup: CompiledRollup) -> Rejection | None:
    """Checks that do not depend on the time range."""
    time = source.time.name if source.time else None

    def uncovered(name: str) -> bool:
        return not covers(source, rollup, name)
    for name in query.dimensions:
        if name != time and uncovered(name):
            return "missing_dimension", f"dimension '{name}' is not in the rollup"
    for name in sorted(query.security_members()):
        if uncovered(name):
            return "security_filter_not_covered", (f"the caller's row-level security filter on "
                                                   f"'{name}' needs it as a rollup dimension")
    for name in sorted(query.filter_members()):
        if uncovered(name):
            return "filter_not_covered", f"filter on '{name}' needs it as a rollup dimension"
    if query.grain is not None:
        if rollup.grain is None:
            return "grain_not_derivable", "the rollup has no time grain"
        if not derivable(rollup.grain, source.calendar, query.grain, query.calendar):
            return "grain_not_derivable", (f"grain '{query.grain}' cannot be derived from the "
                                           f"rollup's '{rollup.grain}'"
                                           + _calendar_said(source, query, rollup.grain))
    keys = {c.key for _, c in rollup.components}
    for name in (*query.measures, *sorted(query.having_members() - set(query.measures))):
        missing = [k for k in source.components_of(name) if k not in keys]
        if missing:
            kind, argument, condition = missing[0]
            what = f"{kind}({argument})" + (f" where {condition}" if condition else "")
            return "measure_not_derivable", (f"measure '{name}' needs {what}, which the rollup "
                                             "does not store")
    return None


def _calendar_said(source: CompiledSource, query: Query, stored: str) -> str:
    """Why a stored grain does not serve a grain it would in another calendar."""
    if query.grain not in DERIVABLE_GRAINS[stored]:
        return ""
    if stored == "week":
        return (f" (its weeks start on {source.source.week_start}, the query's on "
                f"{query.week_start})")
    return f" (fiscal years start in {query.fiscal_year_start})"


def join_detail(source: CompiledSource, query: Query, rollup: CompiledRollup) -> str:
    """How a usable rollup answers the query's joined dimensions and stored joined columns."""
    paths = sorted({source.dimensions[name].path[:1] for name in
                    (*query.dimensions, *query.filter_members())
                    if name in source.dimensions and source.dimensions[name].path})
    said = ""
    if paths:
        keys = sorted({own for path in paths for own, _ in source.paths[path].joins[0].keys})
        tables = sorted({source.paths[path].target.table for path in paths})
        said = (f"; joins {', '.join(tables)} when the query runs, by the key it keeps "
                f"({', '.join(keys)}): the attributes are current")
    if rollup.stores_from:
        said += (f"; stores values read through joins from {', '.join(rollup.stores_from)} "
                 "when rows arrived (not served once they change, until rebuilt)")
    return said


def later(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


def earlier(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def rollup_span(source: CompiledSource, query: Query, rollup: CompiledRollup,
          data: Interval | None = None) -> Span | Rejection:
    """The part of the query's range a rollup serves exactly (its *middle*) and the edges left
    over, or why it serves none of it."""
    start, end = query.interval or (None, None)
    grain = rollup.grain
    if grain is None:
        if query.interval is not None:
            return "range_not_aligned", "the rollup has no time grain, so it cannot cut a range"
        return Span((None, None))
    rollup_zone = ZoneInfo(source.timezone)
    assert query.timezone is not None
    if query.grain is not None and query.timezone != source.timezone:
        unit = {"minute": 60, "hour": 3600}.get(grain)
        runs = aligned_runs(query.timezone, source.timezone, unit,
                            lambda t: is_boundary(t, grain, rollup_zone, source.calendar))
    else:
        runs = ((None, None),)
    chosen: Interval | None = None
    best_share = -1.0
    for run_start, run_end in runs:
        low = later(start, datetime.fromtimestamp(run_start, UTC) if run_start is not None
                     else None)
        high = earlier(end, datetime.fromtimestamp(run_end, UTC) if run_end is not None
                        else None)
        if low is None or high is None or low < high:
            # The run holding most of the data wins; among equals the latest (recent data).
            share = fraction((low, high), data) if data is not None and len(runs) > 1 else 0.0
            if share >= best_share:
                chosen, best_share = (low, high), share
    if chosen is None:
        step = {"minute": "minute", "hour": "hour"}.get(grain, "day")
        return "timezone", (f"{query.grain} buckets in {query.timezone} cannot be cut from "
                            f"{grain} buckets in {source.timezone} over this range: the zones' "
                            f"offsets differ by a fraction of a{'n' if step == 'hour' else ''} "
                            f"{step} (a finer rollup or the raw table is needed)")
    low, high = chosen
    calendar = source.calendar  # a week rollup's weeks start on the source's day
    middle_start = ceil_instant(low, grain, rollup_zone, calendar) if low is not None else None
    middle_end = floor_instant(high, grain, rollup_zone, calendar) if high is not None else None
    if middle_start is not None and middle_end is not None and middle_start >= middle_end:
        return "range_not_aligned", (f"no whole {grain} bucket ({source.timezone}) lies inside "
                                     "the range")
    edges: list[Interval] = []
    if middle_start is not None and (start is None or start < middle_start):
        edges.append((start, middle_start))
    if middle_end is not None and (end is None or middle_end < end):
        edges.append((middle_end, end))
    return Span((middle_start, middle_end), tuple(edges))

def data_span(source: CompiledSource, ready: Mapping[str, RollupStats]) -> Interval | None:
    """When the data lies, from the time-grained rollups' first and last buckets."""
    stats = [ready[r.qualified_table] for r in source.rollups if r.qualified_table in ready]
    firsts = [s.first for s in stats if s.first is not None]
    ends = [s.end for s in stats if s.end is not None]
    return (min(firsts), max(ends)) if firsts and ends else None


def fraction(interval: Interval, data: Interval | None) -> float:
    """The share of the data an interval covers (1 when unknown)."""
    if data is None or data[0] is None or data[1] is None:
        return 1.0
    low, high = later(interval[0], data[0]), earlier(interval[1], data[1])
    assert low is not None and high is not None
    whole = (data[1] - data[0]).total_seconds()
    if whole <= 0:
        return 1.0 if (interval[0] is None or interval[0] <= data[0]) and (
            interval[1] is None or data[0] < interval[1]) else 0.0
    return max(0.0, (high - low).total_seconds() / whole)
