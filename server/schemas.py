"""Request and response types of the HTTP API (msgspec), kept apart from the model."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from engine.query import Filter, FilterGroup, FilterNode, Order, Query, QueryError, TimeRange
from semantic.model import NULLARY_OPS


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


_PATH = re.compile(r"at `\$\.?([^`]*)`")


def decode_query(body: bytes) -> QueryRequest:
    """Decode a ``/v1/query`` body; errors name the offending field."""
    if not body.strip():
        raise QueryError("body", "send a JSON object, e.g. {\"measures\": [\"total_events\"]}")
    try:
        return msgspec.json.decode(body, type=QueryRequest)
    except msgspec.ValidationError as exc:
        text = str(exc)
        match = _PATH.search(text)
        unknown = re.search(r"unknown field `([^`]*)`", text)
        field = match.group(1) if match else (unknown.group(1) if unknown else "body")
        raise QueryError(field or "body", text) from exc
    except msgspec.DecodeError as exc:
        raise QueryError("body", f"the body is not valid JSON: {exc}") from exc


FILTER_KEYS = ("member", "op", "value", "values")


def to_filter(item: object, where: str) -> FilterNode:
    """One filter object of a request (possibly a nested ``and``/``or`` group)."""
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
        return FilterGroup(op, tuple(to_filter(child, f"{where}.{op}[{i}]")
                                     for i, child in enumerate(items)))
    for key in item:
        if key not in FILTER_KEYS:
            raise QueryError(f"{where}.{key}", f"unknown filter key '{key}'; use "
                             f"{', '.join(FILTER_KEYS)} (or an 'and'/'or' group)")
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
    return Filter(member, op, values)


def to_query(request: QueryRequest, source: str | None) -> Query:
    filters = tuple(to_filter(item, f"filters[{i}]") for i, item in enumerate(request.filters))
    order = []
    for index, item in enumerate(request.order):
        if isinstance(item, str):
            order.append(Order(item.lstrip("-"), item.startswith("-")))
        elif item.direction in ("asc", "desc"):
            order.append(Order(item.member, item.direction == "desc"))
        else:
            raise QueryError(f"order[{index}].direction", "direction must be 'asc' or 'desc'")
    time_range = None
    if isinstance(request.time_range, str):
        time_range = TimeRange(relative=request.time_range)
    elif request.time_range is not None:
        time_range = TimeRange(request.time_range.start, request.time_range.end)
    return Query(
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
