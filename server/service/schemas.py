"""Request and response types of the HTTP API (msgspec), kept apart from the model."""

from __future__ import annotations

from typing import Any

import msgspec

from engine.query.limits import QueryLimits, check_query_limits
from engine.query.request import (
    Filter,
    FilterGroup,
    FilterNode,
    Order,
    Query,
    QueryError,
    TimeRange,
)
from semantic.model import NULLARY_OPS
from semantic.suggest import did_you_mean, shown


class OrderSpec(msgspec.Struct, forbid_unknown_fields=True):
    member: str
    direction: str = "asc"


class TimeRangeSpec(msgspec.Struct, forbid_unknown_fields=True, rename={"start": "from",
                                                                         "end": "to"}):
    start: str | None = None
    end: str | None = None


class QueryRequest(msgspec.Struct, forbid_unknown_fields=True):
    measures: list[str] = []
    dimensions: list[str] = []
    grain: str | None = None
    #: each item: {"member", "op", "value" | "values"} or {"and": [...]} / {"or": [...]}
    filters: list[dict[str, Any]] = []
    time_range: str | TimeRangeSpec | None = None
    timezone: str | None = None
    order: list[str | OrderSpec] = []
    limit: int | None = None
    offset: int = 0
    source: str | None = None
    force_raw: bool = False
    #: the answer's format (csv, parquet, arrow, json); /v1/query only
    format: str | None = None


REQUEST_FIELDS = tuple(f.encode_name for f in msgspec.structs.fields(QueryRequest))
_KINDS = {str: "a string", bool: "true or false", int: "a number", float: "a number",
          list: "a list", dict: "an object", type(None): "null"}


def _kind(value: object) -> str:
    return _KINDS.get(type(value), type(value).__name__)


def _expect(ok: bool, field: str, wanted: str, value: object) -> None:
    if not ok:
        raise QueryError(field, f"'{field}' must be {wanted}, got {_kind(value)}")


def _strings(body: dict[str, Any], key: str) -> None:
    value = body.get(key, [])
    _expect(isinstance(value, list), key, "a list of names", value)
    for index, item in enumerate(value):
        _expect(isinstance(item, str), f"{key}[{index}]", "a name (a string)", item)


def _optional_string(body: dict[str, Any], key: str) -> None:
    value = body.get(key)
    _expect(value is None or isinstance(value, str), key, "a string", value)


def _integer(body: dict[str, Any], key: str, optional: bool) -> None:
    value = body.get(key)
    ok = (optional and value is None) or (isinstance(value, int)
                                          and not isinstance(value, bool))
    _expect(ok, key, "an integer", value)


def _order(body: dict[str, Any]) -> list[str | OrderSpec]:
    value = body.get("order", [])
    _expect(isinstance(value, list), "order", "a list of members ('-name' for descending) or "
            "{\"member\", \"direction\"} objects", value)
    order: list[str | OrderSpec] = []
    for index, item in enumerate(value):
        where = f"order[{index}]"
        if isinstance(item, str):
            order.append(item)
            continue
        _expect(isinstance(item, dict), where, "a member name or {\"member\", \"direction\"}",
                item)
        _unknown_keys(item, ("member", "direction"), where)
        _expect(isinstance(item.get("member"), str), f"{where}.member", "a member name",
                item.get("member"))
        direction = item.get("direction", "asc")
        _expect(isinstance(direction, str), f"{where}.direction", "'asc' or 'desc'", direction)
        order.append(OrderSpec(item["member"], direction))
    return order


def _time_range(body: dict[str, Any]) -> str | TimeRangeSpec | None:
    value = body.get("time_range")
    if value is None or isinstance(value, str):
        return value
    _expect(isinstance(value, dict), "time_range", "a relative range like 'last 7 days' or "
            "{\"from\", \"to\"}", value)
    _unknown_keys(value, ("from", "to"), "time_range")
    for key in ("from", "to"):
        _expect(value.get(key) is None or isinstance(value.get(key), str),
                f"time_range.{key}", "a date or time (a string)", value.get(key))
    return TimeRangeSpec(value.get("from"), value.get("to"))


def _unknown_keys(value: dict[str, Any], known: tuple[str, ...], where: str) -> None:
    for key in value:
        if key not in known:
            prefix = f"{where}." if where else ""
            raise QueryError(f"{prefix}{shown(key)}", f"unknown field '{shown(key)}'"
                             f"{did_you_mean(key, known)}; known: {', '.join(known)}")


def decode_query(body: bytes) -> QueryRequest:
    """Decode a ``/v1/query`` body; errors name the offending field, in our own words."""
    if not body.strip():
        raise QueryError("body", "send a JSON object, e.g. {\"measures\": [\"total_events\"]}")
    try:
        value = msgspec.json.decode(body)
    except msgspec.ValidationError:  # msgspec's only check on untyped JSON: number range
        raise QueryError("body", "the body holds a number too large for a 64-bit float") from None
    except msgspec.DecodeError as exc:
        raise QueryError("body", f"the body is not valid JSON (UTF-8): {exc}") from None
    except RecursionError:
        raise QueryError("body", "the body is nested too deeply") from None
    _expect(isinstance(value, dict), "body", "a JSON object, e.g. {\"measures\": "
            "[\"total_events\"]}", value)
    _unknown_keys(value, REQUEST_FIELDS, "")
    _strings(value, "measures")
    _strings(value, "dimensions")
    for key in ("grain", "timezone", "source", "format"):
        _optional_string(value, key)
    filters = value.get("filters", [])
    _expect(isinstance(filters, list), "filters", "a list of filters", filters)
    _integer(value, "limit", optional=True)
    if "offset" in value:
        _integer(value, "offset", optional=False)
    force_raw = value.get("force_raw", False)
    _expect(isinstance(force_raw, bool), "force_raw", "true or false", force_raw)
    return QueryRequest(
        measures=value.get("measures", []), dimensions=value.get("dimensions", []),
        grain=value.get("grain"), filters=filters, time_range=_time_range(value),
        timezone=value.get("timezone"), order=_order(value), limit=value.get("limit"),
        offset=value.get("offset", 0), source=value.get("source"), force_raw=force_raw,
        format=value.get("format"))


FILTER_KEYS = ("member", "op", "value", "values")


def to_filter(item: object, where: str, depth: int = 0,
              max_depth: int = QueryLimits().filter_depth) -> FilterNode:
    """One filter object of a request (possibly a nested ``and``/``or`` group, at most
    ``max_depth`` deep)."""
    if not isinstance(item, dict):
        raise QueryError(where, "a filter is an object: {\"member\", \"op\", \"value\"} or "
                         "{\"and\": [...]} / {\"or\": [...]}")
    groups = [key for key in ("and", "or") if key in item]
    if groups:
        if len(item) != 1:
            raise QueryError(where, "a filter group has exactly one key, 'and' or 'or'")
        op = groups[0]
        items = item[op]
        if not isinstance(items, list):
            raise QueryError(f"{where}.{op}", f"'{op}' takes a list of filters")
        if depth >= max_depth:
            raise QueryError(where, f"filter groups may nest at most {max_depth} deep; set "
                             "SEMANTIC_MAX_FILTER_DEPTH to allow more")
        return FilterGroup(op, tuple(to_filter(child, f"{where}.{op}[{i}]", depth + 1,
                                               max_depth)
                                     for i, child in enumerate(items)))
    for key in item:
        if key not in FILTER_KEYS:
            raise QueryError(f"{where}.{shown(key)}", f"unknown filter key '{shown(key)}'"
                             f"{did_you_mean(key, FILTER_KEYS)}; use {', '.join(FILTER_KEYS)} "
                             "(or an 'and'/'or' group)")
    member = item.get("member")
    if not isinstance(member, str):
        raise QueryError(f"{where}.member", "a filter needs a 'member' (a dimension or measure)")
    op = item.get("op", "in" if isinstance(item.get("value"), list) or "values" in item
                  else "eq")
    if not isinstance(op, str):
        raise QueryError(f"{where}.op", "'op' must be a string")
    if "value" in item and "values" in item:
        raise QueryError(where, "give 'value' or 'values', not both")
    if op in NULLARY_OPS:
        values: tuple[object, ...] = ()
        if "value" in item or "values" in item:
            raise QueryError(f"{where}.value", f"operator '{op}' takes no value")
    elif "values" in item:
        if not isinstance(item["values"], list):
            raise QueryError(f"{where}.values", "'values' must be a list")
        values = tuple(item["values"])
    elif "value" in item:
        value = item["value"]
        values = tuple(value) if isinstance(value, list) else (value,)
    else:
        raise QueryError(f"{where}.value", "a filter needs a 'value' or 'values'")
    for value in values:
        # Checked here as well as against the column's type: true == 1 in Python, so a plan
        # cached for 1 would otherwise answer true before the type check could refuse it.
        if value is None or isinstance(value, bool | dict | list):
            raise QueryError(f"{where}.value", "filter values must be strings or numbers "
                             "(test for null with 'is_null')")
    return Filter(member, op, values)


def to_query(request: QueryRequest, source: str | None,
             limits: QueryLimits | None = None) -> Query:
    """The engine's query for a request, within ``limits`` (``QueryError`` naming the field
    of the first one exceeded)."""
    limits = limits or QueryLimits()
    if len(request.filters) > limits.filters:
        raise QueryError("filters", f"a query may have at most {limits.filters} filters; set "
                         "SEMANTIC_MAX_FILTERS to allow more")
    filters = tuple(to_filter(item, f"filters[{i}]", 0, limits.filter_depth)
                    for i, item in enumerate(request.filters))
    order = []
    for index, item in enumerate(request.order):
        if isinstance(item, str):
            order.append(Order(item.lstrip("-"), item.startswith("-")))
        elif item.direction in ("asc", "desc"):
            order.append(Order(item.member, item.direction == "desc"))
        else:
            raise QueryError(f"order[{index}].direction", "direction must be 'asc' or 'desc', "
                             f"not '{shown(item.direction)}'")
    time_range = None
    if isinstance(request.time_range, str):
        time_range = TimeRange(relative=request.time_range)
    elif request.time_range is not None:
        time_range = TimeRange(request.time_range.start, request.time_range.end)
    query = Query(
        source=source or "",
        measures=tuple(request.measures),
        dimensions=tuple(request.dimensions),
        grain=request.grain,
        filters=filters,
        order=tuple(order),
        limit=request.limit,
        offset=request.offset,
        time_range=time_range,
        timezone=request.timezone,
    )
    check_query_limits(query, limits)
    return query
