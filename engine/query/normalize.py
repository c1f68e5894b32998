"""A query checked against its source and made ready to plan: names resolved, filter values
read as their columns' types, measure conditions split off (HAVING), the time range resolved
in its zone, order and limits filled in."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from engine.dialect.types import time_span
from engine.model.compiled import CompiledSource
from engine.model.memo import ShapeMemo
from engine.query.request import (
    DEFAULT_LIMIT,
    FILLS,
    MAX_LIMIT,
    MAX_OFFSET,
    Filter,
    FilterGroup,
    FilterNode,
    Interval,
    Order,
    Query,
    QueryError,
    filter_tree_members,
)
from engine.query.values import measure_value, typed_value
from engine.time.ranges import (
    Calendar,
    ceil_instant,
    floor_instant,
    parse_instant,
    resolve_relative,
)
from engine.time.shifts import check_offset, check_period, previous_period, window_buckets
from engine.time.zones import zone as load_zone
from semantic.model import (
    FILTER_OPS,
    LIST_OPS,
    MONTH_NAMES,
    NULLARY_OPS,
    QUERY_GRAINS,
    WEEKDAYS,
    parse_duration,
)
from semantic.suggest import did_you_mean, shown

#: the shortest length of a bucket of each grain, to bound how many buckets a range holds
GRAIN_SECONDS = {"minute": 60, "hour": 3600, "day": 86400 - 3600, "week": 7 * 86400 - 3600,
                 "month": 28 * 86400 - 3600, "quarter": 89 * 86400 - 3600,
                 "year": 365 * 86400 - 3600, "fiscal_quarter": 89 * 86400 - 3600,
                 "fiscal_year": 365 * 86400 - 3600}
#: operators that compare a measure's value (HAVING)
MEASURE_OPS: tuple[str, ...] = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte",
                                "is_null", "is_not_null")
#: operators of string dimensions: ``contains``/``starts_with`` (case-sensitive, literal) and
#: ``ilike``/``not_ilike`` (a LIKE pattern, ignoring case: ClickHouse's ``ilike``)
STRING_OPS: tuple[str, ...] = ("contains", "starts_with", "ilike", "not_ilike")




def _check_names(names: tuple[str, ...], known: list[str], field_name: str, kind: str) -> None:
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name not in known:
            raise QueryError(f"{field_name}[{index}]", f"unknown {kind} '{shown(name)}'"
                             f"{did_you_mean(name, known)}; known: {', '.join(known)}")
        if name in seen:
            raise QueryError(f"{field_name}[{index}]", f"{kind} '{name}' is listed twice")
        seen.add(name)


def _check_joined_measures(source: CompiledSource, measures: tuple[str, ...]) -> None:
    """A measure named through a join belongs to the joined source: refused with why (through
    a many-to-one join it would be repeated once per row of this source)."""
    for index, name in enumerate(measures):
        path, _, member = name.rpartition(".")
        if not path or name in source.measures or name in source.metrics:
            continue
        joined = source.paths.get(tuple(path.split(".")))
        if joined is None:
            continue
        target = joined.target
        kind = "a measure" if target.measure(member) or target.metric(member) else \
            "a dimension" if target.dimension(member) else "not a member"
        raise QueryError(f"measures[{index}]", f"'{shown(name)}' is {kind} of source "
                         f"'{target.name}', reached through join '{path}'; measures belong to "
                         f"their source (each {target.name} row repeats once per "
                         f"{source.name} row, which would multiply it): ask source "
                         f"'{target.name}' for it, or define a measure of '{source.name}' "
                         f"over the joined column (e.g. {{agg: sum, column: {path}.<column>}})")


def _is_string_type(type_name: str) -> bool:
    base = type_name
    while base.startswith(("Nullable(", "LowCardinality(")):
        base = base[base.index("(") + 1:-1]
    return base in ("String",) or base.startswith("FixedString(")


def _check_filter(source: CompiledSource, node: FilterNode,
                  where: str) -> tuple[FilterNode, bool]:
    """Validate one filter tree; return it with its values read as their columns' types, and
    whether it is a measure (HAVING) condition."""
    if isinstance(node, FilterGroup):
        if node.op not in ("and", "or"):
            raise QueryError(where, f"unknown filter group '{shown(node.op)}'; use 'and' or "
                             "'or'")
        if not node.items:
            raise QueryError(f"{where}.{node.op}", f"an '{node.op}' group needs at least one "
                             "filter")
        checked = [_check_filter(source, item, f"{where}.{node.op}[{i}]")
                   for i, item in enumerate(node.items)]
        kinds = {aggregate for _, aggregate in checked}
        if len(kinds) > 1:
            raise QueryError(f"{where}.{node.op}", "a group cannot mix dimension filters and "
                             "measure filters (which apply after aggregation); split them")
        return FilterGroup(node.op, tuple(item for item, _ in checked)), kinds.pop()
    time = source.time.name if source.time else None
    if node.member == time:
        raise QueryError(f"{where}.member", f"'{time}' is the time column: restrict it with "
                         "'time_range' (absolute or relative, in 'timezone')")
    aggregate = source.is_aggregate(node.member)
    if not aggregate and node.member not in source.dimensions:
        known = list(source.dimensions) + list(source.measures) + list(source.metrics)
        raise QueryError(f"{where}.member", f"unknown member '{shown(node.member)}'"
                         f"{did_you_mean(node.member, known)}; filter on a dimension or measure")
    allowed = MEASURE_OPS if aggregate else FILTER_OPS
    if node.op not in allowed:
        hint = " (string operators apply to dimensions)" if node.op in STRING_OPS else ""
        raise QueryError(f"{where}.op", f"unknown operator '{shown(node.op)}'{hint}"
                         f"{did_you_mean(node.op, allowed)}; use one of {', '.join(allowed)}")
    if node.op in STRING_OPS and not _is_string_type(source.dimensions[node.member].type):
        raise QueryError(f"{where}.op", f"'{node.op}' needs a string dimension; "
                         f"'{node.member}' is {source.dimensions[node.member].type}")
    if node.op in NULLARY_OPS:
        if node.values:
            raise QueryError(f"{where}.value", f"operator '{node.op}' takes no value")
    elif node.op in LIST_OPS:
        if not node.values:
            raise QueryError(f"{where}.value", f"operator '{node.op}' takes a non-empty list")
    elif len(node.values) != 1:
        raise QueryError(f"{where}.value", f"operator '{node.op}' takes exactly one value")
    type_name = "String" if node.op in STRING_OPS or aggregate else \
        source.dimensions[node.member].type
    values = []
    for index, value in enumerate(node.values):
        at = f" (item {index})" if len(node.values) > 1 else ""
        try:
            values.append(measure_value(value) if aggregate else typed_value(value, type_name))
        except ValueError as exc:
            whose = "measure" if aggregate else "dimension"
            raise QueryError(f"{where}.value", f"{whose} '{node.member}'{at}: {exc}") from None
    if node.op in ("ilike", "not_ilike"):
        pattern = str(values[0])
        if (len(pattern) - len(pattern.rstrip("\\"))) % 2:
            # ClickHouse refuses such a pattern (CANNOT_PARSE_ESCAPE_SEQUENCE)
            raise QueryError(f"{where}.value", "a LIKE pattern cannot end with a lone "
                             "backslash, which escapes the next character; write \\\\ for "
                             "a backslash")
    return Filter(node.member, node.op, tuple(values)), aggregate


def _resolve_interval(source: CompiledSource, query: Query, zone: ZoneInfo,
                      now: datetime | None) -> Interval | None:
    time_range = query.time_range
    if time_range is None:
        return query.interval  # None, or already resolved
    if source.time is None:
        raise QueryError("time_range", f"source '{source.name}' has no time column")
    if time_range.relative is not None:
        try:
            relative = resolve_relative(time_range.relative, now or datetime.now(UTC), zone)
        except ValueError as exc:
            raise QueryError("time_range", str(exc)) from None
        return _storable(source, relative, "time_range", "time_range")
    bounds: list[datetime | None] = []
    for name, text in (("from", time_range.start), ("to", time_range.end)):
        if text is None:
            bounds.append(None)
            continue
        try:
            bounds.append(parse_instant(text, zone))
        except ValueError as exc:
            raise QueryError(f"time_range.{name}", str(exc)) from None
    start, end = bounds
    if start is None and end is None:
        raise QueryError("time_range", "give 'from', 'to' or both")
    if start is not None and end is not None and start >= end:
        raise QueryError("time_range.to", f"'to' ({shown(time_range.end)}) must be after "
                         f"'from' ({shown(time_range.start)}); the range is [from, to)")
    return _storable(source, (start, end), "time_range.from", "time_range.to")


def _storable(source: CompiledSource, interval: Interval, start_field: str,
              end_field: str) -> Interval:
    """The range as far as the time column's type can hold instants: a start before the
    first one is no bound at all (exactly: no stored time is earlier); a range past the
    type's end, or ending before its start, is refused."""
    assert source.time is not None
    first, last = time_span(source.time.type)
    start, end = interval
    column = f"the time column '{source.time.name}' ({source.time.type})"
    if start is not None and start >= last:
        raise QueryError(start_field, f"the range starts at {start.isoformat()}, after the "
                         f"last time {column} can hold ({last.isoformat()})")
    if end is not None and end > last:
        raise QueryError(end_field, f"the range ends at {end.isoformat()}, after the last "
                         f"time {column} can hold ({last.isoformat()}); leave 'to' out for "
                         "no end")
    if end is not None and end <= first:
        raise QueryError(end_field, f"the range ends at {end.isoformat()}, before the first "
                         f"time {column} can hold ({first.isoformat()}): nothing can match")
    return (None if start is not None and start < first else start), end


#: buckets a filled answer may have at most (per group of the other dimensions)
MAX_FILL_BUCKETS = MAX_LIMIT


def _check_fill(fill: str, grain: str | None, interval: Interval | None,
                zone: ZoneInfo) -> None:
    if fill not in FILLS:
        raise QueryError("fill", f"unknown fill '{shown(fill)}'{did_you_mean(fill, FILLS)}; "
                         "use 'zero' (counts and sums 0) or 'null'")
    if grain is None:
        raise QueryError("fill", "fill needs a 'grain': it returns every bucket of the range")
    if interval is None or None in interval:
        raise QueryError("fill", "fill needs a 'time_range' with both 'from' and 'to' (or a "
                         "relative range): it returns every bucket of that range")
    start, end = interval
    assert start is not None and end is not None
    buckets = (end - start).total_seconds() / GRAIN_SECONDS[grain]
    if buckets > MAX_FILL_BUCKETS:
        raise QueryError("fill", f"the range holds about {buckets:,.0f} {grain}s; fill returns "
                         f"at most {MAX_FILL_BUCKETS:,} buckets: a coarser grain or a shorter "
                         "range")


#: the suffixes of the columns a comparison adds for each measure asked
COMPARE_SUFFIXES: tuple[str, ...] = ("__compare", "__change", "__change_ratio")


def compared_columns(query: Query) -> tuple[str, ...]:
    """The columns ``compare`` adds: ``m__compare``, ``m__change``, ``m__change_ratio`` for
    each measure ``m`` asked."""
    if query.compare is None:
        return ()
    return tuple(f"{m}{suffix}" for m in query.measures for suffix in COMPARE_SUFFIXES)


def _check_time_functions(source: CompiledSource, query: Query, names: list[str],
                          grain: str | None, calendar: Calendar) -> None:
    """Each time function the query computes fits its grain (a rolling window of whole
    buckets, a to-date period of whole buckets, an offset from bucket start to bucket start).
    ``names``: the measures asked, then the measures of measure filters."""
    for index, name in enumerate(names):
        where = f"measures[{index}]" if index < len(query.measures) else "filters"
        for atom in source.atoms(name):
            metric = source.metrics.get(atom)
            if metric is None or metric.time is None:
                continue
            function = metric.time
            said = f"'{name}'" + (f" (through '{atom}')" if atom != name else "")
            if grain is None:
                raise QueryError("grain", f"{said} is {function.describe()}: give a 'grain' "
                                 f"({', '.join(QUERY_GRAINS)}) for its buckets")
            try:
                if function.window is not None:
                    window_buckets(function.window, grain)
                if function.period is not None:
                    check_period(function.period, grain, calendar)
                if function.by is not None:
                    check_offset(function.by, grain)
            except ValueError as exc:
                raise QueryError(where, f"{said} at {grain} grain: {exc}") from None


def _widened(interval: Interval | None, grain: str, zone: ZoneInfo,
             calendar: Calendar) -> Interval | None:
    """The range out to whole buckets of ``grain`` (a time function's answer is per bucket)."""
    if interval is None:
        return None
    start, end = interval
    return (floor_instant(start, grain, zone, calendar) if start is not None else None,
            ceil_instant(end, grain, zone, calendar) if end is not None else None)


def _choice(value: str | None, choices: tuple[str, ...], field: str) -> str | None:
    if value is not None and value not in choices:
        raise QueryError(field, f"unknown {field} '{shown(value)}'"
                         f"{did_you_mean(value, choices)}; use one of {', '.join(choices)}")
    return value


def _compare(source: CompiledSource, text: str, grain: str | None, interval: Interval | None,
             zone: ZoneInfo) -> str:
    """``compare.offset`` as ``N unit``: ``previous_period`` is the range's length."""
    if source.time is None:
        raise QueryError("compare", f"source '{source.name}' has no time column to compare "
                         "along")
    if grain is None and (interval is None or None in interval):
        raise QueryError("compare", "a comparison without a 'grain' compares the time range "
                         "with the range moved back: give a 'time_range' with 'from' and 'to'")
    if text.strip().lower() == "previous_period":
        if interval is None or None in interval:
            raise QueryError("compare.offset", "previous_period is the time range's length: "
                             "give a 'time_range' with 'from' and 'to' (or a relative range)")
        start, end = interval
        assert start is not None and end is not None
        try:
            return str(previous_period(start, end, zone, grain))
        except ValueError as exc:
            raise QueryError("compare.offset", str(exc)) from None
    try:
        by = parse_duration(text)
        check_offset(by, grain)
    except ValueError as exc:
        raise QueryError("compare.offset", f"'{shown(text)}': {exc}; or 'previous_period'") \
            from None
    return str(by)


#: each shape's normalized query (one of its queries') with what resolving a range of it
#: needs: its zone, its calendar and whether its range is widened to whole buckets
_SHAPES: ShapeMemo[tuple[Query, ZoneInfo, Calendar, bool]] = ShapeMemo()
#: what a shape is: every field of a query but its time range
_SHAPE_FIELDS = tuple(f.name for f in fields(Query) if f.name != "time_range")


def normalize_query(source: CompiledSource, query: Query, now: datetime | None = None) -> Query:
    """Check a query against the source and fill defaults (time dimension, time zone, order,
    limit); resolve its time range against ``now`` and split WHERE from HAVING filters.

    A query of a shape normalized before (the same but for its time range: another date range
    of an endpoint) only has its range resolved; one with a comparison or a fill, which are
    checked against the range, is normalized whole.

    Raises ``QueryError`` naming the offending field.
    """
    shape: tuple[object, ...] | None = None
    if query.compare is None and query.fill is None and query.interval is None and \
            _plain_values(query):
        shape = tuple([getattr(query, name) for name in _SHAPE_FIELDS])
        try:
            known = _SHAPES.get(shape, source)
        except TypeError:  # an unhashable filter value, refused below
            shape, known = None, None
        if known is not None:
            normalized, zone, calendar, widen = known
            interval = _resolve_interval(source, query, zone, now)
            if widen:
                assert query.grain is not None
                interval = _widened(interval, query.grain, zone, calendar)
            return replace(normalized, interval=interval)
    normalized, zone, calendar, widen = _normalized(source, query, now)
    if shape is not None:
        _SHAPES.put(shape, source, (normalized, zone, calendar, widen))
    return normalized


def _plain_values(query: Query) -> bool:
    """Whether every condition value is a string or an integer: values of other types may be
    equal and still read differently (``1`` and ``1.0`` against a decimal column, ``0.0`` and
    ``-0.0``), so a query holding one is not taken for a shape seen before."""
    nodes: list[FilterNode] = [*query.filters, *query.having, *query.security]
    while nodes:
        node = nodes.pop()
        if isinstance(node, Filter):
            if any(type(value) is not str and type(value) is not int for value in node.values):
                return False
        else:
            nodes.extend(node.items)
    return True


def _normalized(source: CompiledSource, query: Query,
                now: datetime | None) -> tuple[Query, ZoneInfo, Calendar, bool]:
    """``normalize_query``'s work, and the zone, calendar and widening of the range."""
    time = source.time.name if source.time else None
    dimension_names = list(source.dimensions) + ([time] if time else [])
    _check_joined_measures(source, query.measures)
    _check_names(query.measures, list(source.measures) + list(source.metrics), "measures",
                 "measure")
    _check_names(query.dimensions, dimension_names, "dimensions", "dimension")
    if not query.measures and not query.dimensions:
        raise QueryError("measures", "ask for at least one measure or dimension")
    dimensions = query.dimensions
    if query.grain is not None:
        if query.grain not in QUERY_GRAINS:
            raise QueryError("grain", f"unknown grain '{shown(query.grain)}'"
                             f"{did_you_mean(query.grain, QUERY_GRAINS)}; use one of "
                             f"{', '.join(QUERY_GRAINS)}")
        if time is None:
            raise QueryError("grain", f"source '{source.name}' has no time column to bucket")
        if time not in dimensions:
            dimensions = (*dimensions, time)
    elif time is not None and time in dimensions:
        raise QueryError("grain", f"dimension '{time}' is the time column: give a 'grain' "
                         f"({', '.join(QUERY_GRAINS)})")
    timezone = query.timezone or source.timezone
    try:
        zone = load_zone(timezone)
    except ValueError as exc:
        raise QueryError("timezone", str(exc)) from None
    week_start = _choice(query.week_start, WEEKDAYS, "week_start") or source.source.week_start
    fiscal_year_start = _choice(query.fiscal_year_start, MONTH_NAMES, "fiscal_year_start") or \
        source.source.fiscal_year_start
    calendar = Calendar.named(week_start, fiscal_year_start)
    interval = _resolve_interval(source, query, zone, now)
    where: list[FilterNode] = []
    having: list[FilterNode] = []
    for index, node in enumerate((*query.filters, *query.having)):
        checked, aggregate = _check_filter(source, node, f"filters[{index}]")
        (having if aggregate else where).append(checked)
    aggregated = [*query.measures,
                  *sorted(filter_tree_members(tuple(having)) - set(query.measures))]
    _check_time_functions(source, query, aggregated, query.grain, calendar)
    widen = query.grain is not None and (query.compare is not None or
                                         any(source.windowed(name) for name in aggregated))
    if widen:
        assert query.grain is not None
        interval = _widened(interval, query.grain, zone, calendar)
    compare = None if query.compare is None else \
        _compare(source, query.compare, query.grain, interval, zone)
    if query.fill is not None:
        _check_fill(query.fill, query.grain, interval, zone)
    returned = list(dimensions) + list(query.measures) + (
        [] if compare is None else list(compared_columns(replace(query, compare=compare))))
    ordered: set[str] = set()
    for index, sort in enumerate(query.order):
        if sort.member not in returned:
            raise QueryError(f"order[{index}]", f"cannot order by '{shown(sort.member)}': it is "
                             f"not returned{did_you_mean(sort.member, returned)}")
        if sort.member in ordered:
            raise QueryError(f"order[{index}]", f"'{sort.member}' is ordered by twice")
        ordered.add(sort.member)
    order = query.order or tuple(Order(name) for name in dimensions)
    limit = DEFAULT_LIMIT if query.limit is None else query.limit
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise QueryError("limit", f"limit must be an integer from 1 to {MAX_LIMIT}")
    if isinstance(query.offset, bool) or not isinstance(query.offset, int) or \
            not 0 <= query.offset <= MAX_OFFSET:
        raise QueryError("offset", f"offset must be an integer from 0 to {MAX_OFFSET}")
    return replace(query, dimensions=dimensions, order=order, limit=limit, timezone=timezone,
                   filters=tuple(where), having=tuple(having), interval=interval,
                   time_range=None, format=None, compare=compare, week_start=week_start,
                   fiscal_year_start=fiscal_year_start), zone, calendar, widen
