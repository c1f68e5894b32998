"""The ``endpoints:`` of a model: each path's source, fields, order, filters and limit."""

from __future__ import annotations

from typing import Any

from semantic.location import Location
from semantic.model import QUERY_GRAINS, RETURNS, Endpoint, EndpointFilter, Field, OrderItem, Ref
from semantic.parsing import YamlMap
from semantic.reader import Reader, kind_of

ENDPOINT_KEYS = ("source", "returns", "grain", "fields", "order", "filters", "limit",
                 "description")


def _build_order(reader: Reader, node: YamlMap,
                 path: tuple[str, ...]) -> tuple[OrderItem, ...]:
    items = []
    for ref in reader.refs(node, "order", path, "order"):
        words = ref.name.split()
        if len(words) == 1 or (len(words) == 2 and words[1].lower() in ("asc", "desc")):
            descending = len(words) == 2 and words[1].lower() == "desc"
            items.append(OrderItem(Ref(words[0], ref.location), descending))
        else:
            reader.error(ref.location, f"order item {ref.name!r} must be 'field', 'field asc' or "
                         "'field desc'", "invalid-order")
    return tuple(items)


def _build_filters(reader: Reader, node: YamlMap,
                   path: tuple[str, ...]) -> tuple[EndpointFilter, ...]:
    if "filters" not in node or node["filters"] is None:
        return ()
    filters_node = reader.mapping(node["filters"], reader.value_location(node, "filters", path),
                                  "filters")
    if filters_node is None:
        return ()
    filters = []
    for name, value in filters_node.items():
        location = filters_node.key_locations[name].at(*path, "filters", str(name))
        values = tuple(value) if isinstance(value, list) else (value,)
        if not values or any(isinstance(v, dict | list) or v is None for v in values):
            reader.error(location, f"filter on '{name}' must be a value or a list of values",
                         "type")
            continue
        op = "in" if isinstance(value, list) else "eq"
        filters.append(EndpointFilter(Ref(str(name), location), op, values))
    return tuple(filters)


def build_endpoint(reader: Reader, path_name: str, value: Any, location: Location,
                    path: tuple[str, ...], default_source: Ref | None) -> Endpoint | None:
    node = reader.mapping(value, location, f"endpoint '{path_name}'")
    if node is None:
        return None
    required = ("fields",) if default_source else ("source", "fields")
    reader.keys(node, path, ENDPOINT_KEYS, f"endpoint '{path_name}'", required=required)
    source_name = reader.scalar(node, "source", path, str, "source")
    source = (Ref(source_name, reader.value_location(node, "source", path))
              if source_name is not None else default_source)
    returns = reader.choice(node, "returns", path, RETURNS, "returns") or "list"
    grain = reader.choice(node, "grain", path, QUERY_GRAINS, "grain")
    limit = reader.scalar(node, "limit", path, int, "limit")
    if limit is not None and limit < 1:
        reader.error(reader.value_location(node, "limit", path), "limit must be at least 1",
                     "invalid-limit")
    description = reader.scalar(node, "description", path, str, "description") or ""
    fields = []
    if "fields" in node:
        fields_node = reader.mapping(node["fields"], reader.value_location(node, "fields", path),
                                     "fields")
        for name, member in (fields_node or {}).items():
            assert fields_node is not None
            field_location = fields_node.value_locations[name].at(*path, "fields", str(name))
            if not isinstance(member, str):
                reader.error(field_location, f"field '{name}' must name a measure or dimension, "
                             f"got {kind_of(member)}", "type")
                continue
            fields.append(Field(str(name), Ref(member, field_location)))
        if fields_node is not None and not fields_node:
            reader.error(reader.value_location(node, "fields", path),
                         f"endpoint '{path_name}' has no fields", "empty-endpoint")
    if source is None:
        return None
    return Endpoint(
        path=path_name,
        source=source,
        returns=returns,
        grain=grain,
        fields=tuple(fields),
        order=_build_order(reader, node, path),
        filters=_build_filters(reader, node, path),
        limit=limit,
        description=description,
        location=location,
    )
