"""The query request: the one description of every field a client may send (``/v1/query``,
``/v1/explain``, the MCP tools, the command line's ``--body``), read once into a ``Query``.

Each field has its JSON Schema and its description here; the OpenAPI document and the MCP tool
schema are built from ``request_schema`` and the reader below is the only code that reads a
request. Adding a field: a ``Query`` field, a ``RequestField`` here (and its reading in
``parse_query``), and what the engine does with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.query.limits import QueryLimits, check_query_limits
from engine.query.request import (
    FILLS,
    Filter,
    FilterGroup,
    FilterNode,
    Order,
    Query,
    QueryError,
    TimeRange,
)
from semantic.model import FILTER_OPS, MONTH_NAMES, NULLARY_OPS, QUERY_GRAINS, WEEKDAYS
from semantic.suggest import did_you_mean, shown

Schema = dict[str, Any]
NULLABLE_STRING: Schema = {"type": ["string", "null"]}


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """What a request's schema may name: the model's members and sources, the answer formats
    and the server's limits (empty names: any string)."""

    measures: tuple[str, ...] = ()
    dimensions: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    formats: tuple[str, ...] = ()
    limits: QueryLimits = field(default_factory=QueryLimits)
    #: how the schema refers to the filter schema (``#/components/schemas/Filter`` in OpenAPI)
    filter_ref: str = "#/$defs/Filter"


@dataclass(frozen=True, slots=True)
class RequestField:
    name: str
    description: str
    schema: Callable[[Vocabulary], Schema]


def _names(names: tuple[str, ...] | list[str]) -> Schema:
    return {"type": "string", "enum": list(names)} if names else {"type": "string"}


def _order_schema(v: Vocabulary) -> Schema:
    returned = [*v.measures, *v.dimensions]
    return {"type": "array", "maxItems": v.limits.order, "items": {"oneOf": [
        {**_names(returned + [f"-{n}" for n in returned]),
         "description": "a returned member; '-' prefix for descending"},
        {"type": "object", "additionalProperties": False, "required": ["member"],
         "properties": {"member": _names(returned),
                        "direction": {"type": "string", "enum": ["asc", "desc"]},
                        "nulls": {"type": "string", "enum": ["first", "last"],
                                  "description": "where NULLs go (default: last)"}}},
    ]}}


FIELDS: tuple[RequestField, ...] = (
    RequestField("measures", "measures and metrics to compute (names from the model's meta)",
                 lambda v: {"type": "array", "items": _names(v.measures)}),
    RequestField("dimensions", "dimensions to group by; the time column needs a grain",
                 lambda v: {"type": "array", "items": _names(v.dimensions)}),
    RequestField("grain", "buckets the time column, returned under its own name",
                 lambda v: {"type": ["string", "null"], "enum": [*QUERY_GRAINS, None]}),
    RequestField("filters", "all must hold: {\"member\", \"op\", \"value\"|\"values\"} (op: "
                 "eq, ne, in, not_in, gt, gte, lt, lte, contains, starts_with, is_null, "
                 "is_not_null) or "
                 "{\"and\": [...]} / {\"or\": [...]}; a measure filters groups (HAVING)",
                 lambda v: {"type": "array", "items": {"$ref": v.filter_ref},
                            "maxItems": v.limits.filters}),
    RequestField("time_range", "{\"from\", \"to\"} half-open [from, to), e.g. {\"from\": "
                 "\"2026-03-01\", \"to\": \"2026-03-08\"}, or relative: 'last 7 days', "
                 "'this month', ...",
                 lambda v: {"oneOf": [
                     {"type": "string", "description": "relative: today, 'last 7 days', ..."},
                     {"type": "object", "additionalProperties": False,
                      "properties": {"from": NULLABLE_STRING, "to": NULLABLE_STRING}},
                     {"type": "null"}]}),
    RequestField("timezone", "IANA zone of buckets, dates and relative ranges (default: the "
                 "source's)", lambda v: NULLABLE_STRING),
    RequestField("order", "\"member\" or \"-member\" (descending); default: the dimensions "
                 "ascending", _order_schema),
    RequestField("limit", "rows to return (default 10000)",
                 lambda v: {"type": ["integer", "null"], "minimum": 1,
                            "maximum": v.limits.rows}),
    RequestField("offset", "rows to skip first",
                 lambda v: {"type": "integer", "minimum": 0, "maximum": v.limits.offset}),
    RequestField("source", "the source (default: the only one with measures)",
                 lambda v: {"type": ["string", "null"], "enum": [*v.sources, None]}
                 if v.sources else NULLABLE_STRING),
    RequestField("force_raw", "skip the rollups and read the raw table (for comparisons)",
                 lambda v: {"type": "boolean"}),
    RequestField("fill", "'zero' or 'null': every bucket of the time range at the grain, for "
                 "each group of the other dimensions; a bucket without rows has counts and "
                 "sums 0 ('zero') and every other measure null",
                 lambda v: {"type": ["string", "null"], "enum": [*FILLS, None]}),
    RequestField("compare", "{\"offset\": \"1 year\"} (any 'N unit') or {\"offset\": "
                 "\"previous_period\"} (back by the range's length): adds m__compare (each "
                 "measure at the bucket, or range, moved back), m__change and m__change_ratio",
                 lambda v: {"type": ["object", "null"], "additionalProperties": False,
                            "required": ["offset"], "properties": {"offset": {
                                "type": "string", "examples": ["1 year", "previous_period"]}}}),
    RequestField("week_start", "the day weeks start on (default: the source's week_start, "
                 "monday)", lambda v: {"type": ["string", "null"], "enum": [*WEEKDAYS, None]}),
    RequestField("fiscal_year_start", "the month fiscal years start in, for the grains "
                 "fiscal_quarter and fiscal_year (default: the source's, january)",
                 lambda v: {"type": ["string", "null"], "enum": [*MONTH_NAMES, None]}),
    RequestField("format", "the answer's format (default json); the Accept header can ask for "
                 "it too", lambda v: {"type": ["string", "null"], "enum": [*v.formats, None]}
                 if v.formats else NULLABLE_STRING),
)
REQUEST_FIELDS = tuple(f.name for f in FIELDS)


def request_schema(vocabulary: Vocabulary) -> Schema:
    """The JSON Schema of a query request, every field described."""
    return {
        "type": "object",
        "additionalProperties": False,
        "description": "Measures by dimensions at a grain, filtered, over a time range.",
        "properties": {f.name: {**f.schema(vocabulary), "description": f.description}
                       for f in FIELDS},
    }


def filter_schema(members: list[str], filter_ref: str = "#/$defs/Filter") -> Schema:
    """A filter: a condition on one of ``members`` (a dimension: WHERE; a measure or metric:
    HAVING), or an and/or group of filters."""
    return {
        "description": "A condition on a dimension (WHERE) or a measure (HAVING), or an and/or "
                       "group of them.",
        "oneOf": [
            {"type": "object", "additionalProperties": False, "required": ["member"],
             "properties": {
                 "member": _names(members),
                 "op": {"type": "string", "enum": list(FILTER_OPS)},
                 "value": {"oneOf": [{"type": ["string", "number"]},
                                     {"type": "array", "items": {"type": ["string", "number"]}}]},
                 "values": {"type": "array", "items": {"type": ["string", "number"]}},
             }},
            {"type": "object", "additionalProperties": False, "required": ["and"],
             "properties": {"and": {"type": "array", "items": {"$ref": filter_ref}}}},
            {"type": "object", "additionalProperties": False, "required": ["or"],
             "properties": {"or": {"type": "array", "items": {"$ref": filter_ref}}}},
        ],
    }


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


def _order(body: dict[str, Any]) -> list[str | tuple[str, str, str | None]]:
    value = body.get("order", [])
    _expect(isinstance(value, list), "order", "a list of members ('-name' for descending) or "
            "{\"member\", \"direction\"} objects", value)
    order: list[str | tuple[str, str, str | None]] = []
    for index, item in enumerate(value):
        where = f"order[{index}]"
        if isinstance(item, str):
            order.append(item)
            continue
        _expect(isinstance(item, dict), where, "a member name or {\"member\", \"direction\"}",
                item)
        _unknown_keys(item, ("member", "direction", "nulls"), where)
        _expect(isinstance(item.get("member"), str), f"{where}.member", "a member name",
                item.get("member"))
        direction = item.get("direction", "asc")
        _expect(isinstance(direction, str), f"{where}.direction", "'asc' or 'desc'", direction)
        nulls = item.get("nulls")
        _expect(nulls in (None, "first", "last"), f"{where}.nulls", "'first' or 'last'", nulls)
        order.append((item["member"], direction, nulls))
    return order


def _time_range(body: dict[str, Any]) -> TimeRange | None:
    value = body.get("time_range")
    if value is None:
        return None
    if isinstance(value, str):
        return TimeRange(relative=value)
    _expect(isinstance(value, dict), "time_range", "a relative range like 'last 7 days' or "
            "{\"from\", \"to\"}", value)
    _unknown_keys(value, ("from", "to"), "time_range")
    for key in ("from", "to"):
        _expect(value.get(key) is None or isinstance(value.get(key), str),
                f"time_range.{key}", "a date or time (a string)", value.get(key))
    return TimeRange(value.get("from"), value.get("to"))


def _unknown_keys(value: dict[str, Any], known: tuple[str, ...], where: str) -> None:
    for key in value:
        if key not in known:
            prefix = f"{where}." if where else ""
            raise QueryError(f"{prefix}{shown(key)}", f"unknown field '{shown(key)}'"
                             f"{did_you_mean(key, known)}; known: {', '.join(known)}")


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


def _compare(value: object) -> str | None:
    """``{"offset": "1 year"}`` -> ``"1 year"`` (checked against the query when normalized)."""
    if value is None:
        return None
    _expect(isinstance(value, dict), "compare", "an object such as {\"offset\": \"1 year\"}",
            value)
    assert isinstance(value, dict)
    _unknown_keys(value, ("offset",), "compare")
    offset = value.get("offset")
    _expect(isinstance(offset, str), "compare.offset", "a string such as '1 year' or "
            "'previous_period'", offset)
    assert isinstance(offset, str)
    return offset


def parse_query(value: object, limits: QueryLimits | None = None,
                source_name: Callable[[str | None], str] = lambda name: name or "") -> Query:
    """A request (decoded JSON) read as a ``Query`` within ``limits``; every error is a
    ``QueryError`` naming the offending field, in our own words. ``source_name`` resolves the
    requested source (default: as written), after the request's shape is checked and before
    its filters are read."""
    limits = limits or QueryLimits()
    _expect(isinstance(value, dict), "body", "a JSON object, e.g. {\"measures\": "
            "[\"total_events\"]}", value)
    assert isinstance(value, dict)
    _unknown_keys(value, REQUEST_FIELDS, "")
    _strings(value, "measures")
    _strings(value, "dimensions")
    for key in ("grain", "timezone", "source", "format", "fill", "week_start",
                "fiscal_year_start"):
        _optional_string(value, key)
    items = value.get("filters", [])
    _expect(isinstance(items, list), "filters", "a list of filters", items)
    _integer(value, "limit", optional=True)
    if "offset" in value:
        _integer(value, "offset", optional=False)
    force_raw = value.get("force_raw", False)
    _expect(isinstance(force_raw, bool), "force_raw", "true or false", force_raw)
    time_range = _time_range(value)
    compare = _compare(value.get("compare"))
    asked_order = _order(value)
    source = source_name(value.get("source"))
    if len(items) > limits.filters:
        raise QueryError("filters", f"a query may have at most {limits.filters} filters; set "
                         "SEMANTIC_MAX_FILTERS to allow more")
    filters = tuple(to_filter(item, f"filters[{i}]", 0, limits.filter_depth)
                    for i, item in enumerate(items))
    order = []
    for index, item in enumerate(asked_order):
        if isinstance(item, str):
            order.append(Order(item.lstrip("-"), item.startswith("-")))
        elif item[1] in ("asc", "desc"):
            # NULLs last is ClickHouse's own order: one query, whether written or not
            order.append(Order(item[0], item[1] == "desc", True if item[2] == "first" else None))
        else:
            raise QueryError(f"order[{index}].direction", "direction must be 'asc' or 'desc', "
                             f"not '{shown(item[1])}'")
    query = Query(
        source=source,
        measures=tuple(value.get("measures", [])),
        dimensions=tuple(value.get("dimensions", [])),
        grain=value.get("grain"),
        filters=filters,
        order=tuple(order),
        limit=value.get("limit"),
        offset=value.get("offset", 0),
        time_range=time_range,
        timezone=value.get("timezone"),
        force_raw=force_raw,
        format=value.get("format"),
        fill=value.get("fill"),
        compare=compare,
        week_start=value.get("week_start"),
        fiscal_year_start=value.get("fiscal_year_start"),
    )
    check_query_limits(query, limits)
    return query
