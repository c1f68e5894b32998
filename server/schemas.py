"""Request and response types of the HTTP API (msgspec), kept apart from the model."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from engine.query import Filter, Order, Query, QueryError


class FilterSpec(msgspec.Struct, forbid_unknown_fields=True):
    member: str
    op: str = "eq"
    value: Any = msgspec.UNSET
    values: list[Any] | msgspec.UnsetType = msgspec.UNSET


class OrderSpec(msgspec.Struct, forbid_unknown_fields=True):
    member: str
    direction: str = "asc"


class QueryRequest(msgspec.Struct, forbid_unknown_fields=True):
    measures: list[str] = []
    dimensions: list[str] = []
    grain: str | None = None
    filters: list[FilterSpec] = []
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


def to_query(request: QueryRequest, source: str | None) -> Query:
    filters = []
    for index, spec in enumerate(request.filters):
        if spec.values is not msgspec.UNSET and spec.value is not msgspec.UNSET:
            raise QueryError(f"filters[{index}]", "give 'value' or 'values', not both")
        if spec.values is not msgspec.UNSET:
            assert isinstance(spec.values, list)
            values = tuple(spec.values)
        elif spec.value is not msgspec.UNSET:
            values = tuple(spec.value) if isinstance(spec.value, list) else (spec.value,)
        else:
            raise QueryError(f"filters[{index}].value", "a filter needs a 'value' or 'values'")
        filters.append(Filter(spec.member, spec.op, values))
    order = []
    for index, item in enumerate(request.order):
        if isinstance(item, str):
            order.append(Order(item.lstrip("-"), item.startswith("-")))
        elif item.direction in ("asc", "desc"):
            order.append(Order(item.member, item.direction == "desc"))
        else:
            raise QueryError(f"order[{index}].direction", "direction must be 'asc' or 'desc'")
    return Query(
        source=source or "",
        measures=tuple(request.measures),
        dimensions=tuple(request.dimensions),
        grain=request.grain,
        filters=tuple(filters),
        order=tuple(order),
        limit=request.limit,
        offset=request.offset,
    )
