"""A Cube query (the ``query`` of ``/cubejs-api/v1/load``) as our ``engine.query.request.Query``.

What Cube's API gateway accepts is accepted here with Cube's meaning, or refused with a 400
naming the field: several cubes in one query (no joins between cubes: a source's joined
dimensions are members of its own cube, ``flights.airline__name``, and the refusal names
them), ``segments`` (the model has none), ``ungrouped: true`` (raw rows), ``second`` and
custom granularities, and response formats other than ``default``. Requests of several
queries are split first (``server.cube.queries``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from engine.query.limits import QueryLimits, check_query_limits
from engine.query.request import DEFAULT_LIMIT, FilterNode, Order, Query, QueryError, TimeRange
from engine.time.zones import zone as load_zone
from semantic.suggest import did_you_mean, shown
from server.cube.dates import Bounds, cube_range, intersect, resolve_range, utc_text
from server.cube.filters import FilterReader, normalized_filters
from server.cube.members import Cubes, Member, check_granularity

QUERY_KEYS = ("measures", "dimensions", "timeDimensions", "filters", "segments", "order",
              "limit", "offset", "timezone", "total", "ungrouped", "renewQuery", "cache",
              "cacheMode", "responseFormat")
TIME_KEYS = ("dimension", "granularity", "dateRange", "compareDateRange")


@dataclass(frozen=True, slots=True)
class Translated:
    """Our query for a Cube query, and what answering it in Cube's shape needs."""

    query: Query
    #: the query as Cube's gateway normalizes it (echoed in answers)
    normalized: dict[str, Any]
    #: the members returned, by our column name
    columns: dict[str, Member]
    #: ``<cube>.<time>.<granularity>`` when the query buckets time
    time_key: str | None
    zone: ZoneInfo
    total: bool = False
    #: ``compareDateRange`` queries: the range each row is labelled with
    compare: str | None = None
    #: a query of a blending request: rows also carry the time as ``time.<granularity>``
    blend: bool = False


def _check_keys(value: dict[str, Any], known: tuple[str, ...], where: str) -> None:
    for key in value:
        if key not in known:
            at = f"{where}.{shown(key)}" if where else shown(key)
            raise QueryError(at, f"Invalid query format: \"{shown(key)}\" is not allowed"
                             f"{did_you_mean(key, known)}; known: {', '.join(known)}")


def _list(value: dict[str, Any], key: str) -> list[Any]:
    items = value.get(key, [])
    if not isinstance(items, list):
        raise QueryError(key, f"'{key}' is a list")
    return items


def _optional_bool(value: dict[str, Any], key: str) -> bool:
    flag = value.get(key, False)
    if not isinstance(flag, bool):
        raise QueryError(key, f"'{key}' is true or false")
    return flag


def _count(value: dict[str, Any], key: str, default: int | None) -> int | None:
    number = value.get(key, default)
    if number is not None and (isinstance(number, bool) or not isinstance(number, int)
                               or number < 0):
        raise QueryError(key, f"'{key}' is an integer of 0 or more")
    return number


def _check_supported(body: object) -> dict[str, Any]:
    """The query object, refusing what Cube accepts but we cannot answer exactly."""
    if not isinstance(body, dict):
        raise QueryError("query", "the query is a JSON object like {\"measures\": "
                         "[\"events.total_events\"]}")
    _check_keys(body, QUERY_KEYS, "")
    if _optional_bool(body, "ungrouped"):
        raise QueryError("ungrouped", "ungrouped queries (raw rows) are not supported: every "
                         "answer is aggregated; drop 'ungrouped' or set it to false")
    if body.get("responseFormat", "default") != "default":
        raise QueryError("responseFormat", "only the 'default' response format is supported")
    if _list(body, "segments"):
        raise QueryError("segments", "the model defines no segments; use filters")
    return body


#: a time dimension asked with a granularity: the member, the granularity, where it was asked
Granularity = tuple[Member, str, str]


def _members(body: dict[str, Any], cubes: Cubes) -> tuple[list[Member], list[Member],
                                                             list[Granularity]]:
    """The measures, the dimensions and the time granularities of ``dimensions``."""
    measures = [cubes.resolve(m, f"measures[{i}]", ("measure",))
                for i, m in enumerate(_list(body, "measures"))]
    dimensions: list[Member] = []
    granularities: list[Granularity] = []
    for index, name in enumerate(_list(body, "dimensions")):
        where = f"dimensions[{index}]"
        if isinstance(name, str) and name.count(".") == 2:  # <cube>.<time>.<granularity>
            cube, member, grain = name.split(".")
            time = cubes.resolve(f"{cube}.{member}", where, ("time",))
            granularities.append((time, check_granularity(grain, where), where))
            continue
        dimension = cubes.resolve(name, where, ("dimension", "time"))
        if dimension.kind == "time":
            raise QueryError(where, f"'{dimension.key}' is the time dimension: give it a "
                             f"granularity ('{dimension.key}.day') or put it in timeDimensions")
        dimensions.append(dimension)
    return measures, dimensions, granularities


def _joined_hint(cubes: Cubes, roots: list[str], members: list[Member]) -> str:
    """Where the first of ``roots`` whose joins reach every other cube's dimension among
    ``members`` has them as its own members (``flights.airline__name`` for
    ``airlines.name``), as a hint; empty if none does."""
    for root in roots:
        found = []
        for member in members:
            if member.cube == root:
                continue
            names = [m.key for m in cubes.members.get(root, {}).values()
                     if m.origin == member.cube and member.kind == "dimension"
                     and m.query_name.rsplit(".", 1)[1] == member.query_name]
            if not names:
                break
            found.append(f"'{member.key}' as {' or '.join(names)}")
        else:
            if found:
                return f"cube '{root}' has {', '.join(dict.fromkeys(found))} through its joins"
    return ""


def _one_cube(cubes: Cubes, members: list[Member], time_dimensions: list[Any]) -> str:
    """The one cube (source) the query's members belong to; several are refused (no joins)."""
    sources = {m.cube for m in members}
    for item in time_dimensions:
        if isinstance(item, dict) and isinstance(item.get("dimension"), str):
            sources.add(str(item["dimension"]).split(".")[0])
    if len(sources) > 1:
        hint = _joined_hint(cubes, sorted(sources), members)
        raise QueryError("measures", f"members of several cubes ({', '.join(sorted(sources))}) "
                         "in one query: joins between cubes are not supported; "
                         + (hint or "query each cube on its own"))
    source_name = sources.pop() if sources else next(iter(cubes.sources))
    if source_name not in cubes.sources:
        raise QueryError("timeDimensions[0].dimension", f"unknown cube '{shown(source_name)}'"
                         f"; cubes: {', '.join(cubes.sources)}")
    return source_name


def _time_dimensions(items: list[Any], cubes: Cubes, zone: ZoneInfo, now: datetime,
                     granularities: list[Granularity]) -> tuple[list[Bounds],
                                                                list[dict[str, Any]]]:
    """The ranges of ``timeDimensions`` and their echo as Cube normalizes them; their
    granularities are added to ``granularities``."""
    bounds: list[Bounds] = []
    normalized: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        where = f"timeDimensions[{index}]"
        if not isinstance(item, dict):
            raise QueryError(where, "a time dimension is {\"dimension\", \"granularity\", "
                             "\"dateRange\"}")
        _check_keys(item, TIME_KEYS, where)
        if "compareDateRange" in item:  # the first one splits the request (server.cube.queries)
            raise QueryError(f"{where}.compareDateRange", "one compareDateRange per query")
        time = cubes.resolve(item.get("dimension"), f"{where}.dimension", ("time",))
        echo: dict[str, Any] = {"dimension": time.key}
        if item.get("granularity") is not None:
            grain = check_granularity(item["granularity"], f"{where}.granularity")
            granularities.append((time, grain, f"{where}.granularity"))
            echo["granularity"] = grain
        if item.get("dateRange") is not None:
            start, end = resolve_range(item["dateRange"], zone, now, f"{where}.dateRange")
            bounds.append((start, end))
            echo["dateRange"] = cube_range((start, end), zone)
        normalized.append(echo)
    for time, grain, where in granularities:
        if (time.key, grain) != (granularities[0][0].key, granularities[0][1]):
            raise QueryError(where, "one granularity per query: the time dimension is returned "
                             "once, bucketed one way")
    for time, grain, _ in granularities:
        if not any(t.get("granularity") == grain for t in normalized):
            normalized.append({"dimension": time.key, "granularity": grain})
    return bounds, normalized


def _paging(body: dict[str, Any], max_rows: int) -> tuple[int | None, int]:
    limit = _count(body, "limit", DEFAULT_LIMIT)
    if limit == 0 or (limit is not None and limit > max_rows):
        raise QueryError("limit", f"the limit is from 1 to {max_rows} rows "
                         "(SEMANTIC_MAX_ROWS)")
    return limit, _count(body, "offset", 0) or 0


def translate_query(body: object, cubes: Cubes, now: datetime,
                    limits: QueryLimits | None = None) -> Translated:
    """Our query for a Cube query; ``QueryError`` (400) naming the field Cube's way."""
    limits = limits or QueryLimits()
    body = _check_supported(body)
    measures, dimensions, granularities = _members(body, cubes)
    if body.get("timezone") is not None and not isinstance(body["timezone"], str):
        raise QueryError("timezone", "'timezone' is an IANA time zone name")
    time_dimensions = _list(body, "timeDimensions")
    source_name = _one_cube(cubes, measures + dimensions + [t for t, _, _ in granularities],
                            time_dimensions)
    timezone = body.get("timezone") or cubes.sources[source_name].timezone
    try:
        zone = load_zone(timezone)
    except ValueError as exc:
        raise QueryError("timezone", str(exc)) from None
    bounds, normalized_times = _time_dimensions(time_dimensions, cubes, zone, now,
                                                granularities)
    reader = FilterReader(cubes, zone, now, limits.filter_depth)
    filters: tuple[FilterNode, ...] = reader.read(body.get("filters", []))
    if any(m.cube != source_name for m in reader.members):
        hint = _joined_hint(cubes, [source_name], reader.members)
        raise QueryError("filters", "filters on another cube's members: joins between cubes "
                         "are not supported" + (f"; {hint}" if hint else ""))
    interval = intersect(bounds + reader.bounds, "timeDimensions")
    bucket = granularities[0][1] if granularities else None
    time_member = granularities[0][0] if granularities else None
    if not measures and not dimensions and bucket is None:
        raise QueryError("measures", "Query should contain either measures, dimensions or "
                         "timeDimensions with granularities in order to be valid")
    limit, offset = _paging(body, limits.rows)
    columns = {m.query_name: m for m in dimensions}
    if time_member is not None:
        columns[time_member.query_name] = time_member
    columns.update({m.query_name: m for m in measures})
    order = _order(body, cubes, list(columns), measures, dimensions, time_member)
    query = Query(
        source=source_name, measures=tuple(m.query_name for m in measures),
        dimensions=tuple(m.query_name for m in dimensions), grain=bucket, filters=filters,
        order=order, limit=limit, offset=offset,
        time_range=None if interval is None else TimeRange(utc_text(interval[0]),
                                                           utc_text(interval[1])),
        timezone=timezone)
    check_query_limits(query, limits)
    normalized: dict[str, Any] = {
        "measures": [m.key for m in measures], "dimensions": [d.key for d in dimensions],
        "timeDimensions": normalized_times,
        "filters": normalized_filters(body.get("filters", [])), "segments": [], "limit": limit,
        "rowLimit": limit, "offset": offset, "timezone": timezone,
    }
    if "order" in body:
        normalized["order"] = [{"id": _order_key(o, columns), "desc": o.descending}
                               for o in order]
    if body.get("total"):
        normalized["total"] = True
    key = f"{time_member.key}.{bucket}" if time_member is not None else None
    return Translated(query, normalized, columns, key, zone, _optional_bool(body, "total"))


def _order_key(order: Order, columns: dict[str, Member]) -> str:
    return columns[order.member].key


def _order(body: dict[str, Any], cubes: Cubes, returned: list[str], measures: list[Member],
           dimensions: list[Member], time: Member | None) -> tuple[Order, ...]:
    """The order asked, or Cube's default: the bucketed time ascending, else the first
    measure descending (with dimensions), else the first dimension; the remaining dimensions
    follow so that equal rows keep one order."""
    raw = body.get("order")
    if raw is None:
        first: list[Order] = []
        if time is not None:
            first = [Order(time.query_name)]
        elif measures and dimensions:
            first = [Order(measures[0].query_name, descending=True)]
        rest = [Order(d.query_name) for d in dimensions if Order(d.query_name) not in first]
        return tuple(first + rest)
    if isinstance(raw, dict):
        pairs = list(raw.items())
    elif isinstance(raw, list) and all(isinstance(p, list) and len(p) == 2 for p in raw):
        pairs = [(p[0], p[1]) for p in raw]
    else:
        raise QueryError("order", "'order' is {\"<member>\": \"asc\"|\"desc\"} or a list of "
                         "[\"<member>\", \"asc\"|\"desc\"] pairs")
    order = []
    for index, (name, direction) in enumerate(pairs):
        where = f"order[{index}]"
        if direction not in ("asc", "desc"):
            raise QueryError(where, "the direction is 'asc' or 'desc'")
        if isinstance(name, str) and name.count(".") == 2:
            name = name.rsplit(".", 1)[0]
        member = cubes.resolve(name, where, ("measure", "dimension", "time"))
        if member.query_name not in returned:
            raise QueryError(where, f"cannot order by '{member.key}': it is not in the query")
        order.append(Order(member.query_name, direction == "desc"))
    return tuple(order)
