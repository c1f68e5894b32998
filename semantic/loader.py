"""Phase one of loading: YAML structure -> model dataclasses.

Checks types, required keys and unknown keys, collecting every issue. Cross-references are
checked afterwards by ``semantic.rules``; ``load_model`` runs both and raises one ``ModelError``
listing every problem.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from semantic.errors import Issue, ModelError
from semantic.model import (
    AGGREGATIONS,
    DEFAULT_TIMEZONE,
    GRAINS,
    METHODS,
    RETURNS,
    Dimension,
    Endpoint,
    EndpointFilter,
    Field,
    Location,
    Measure,
    Metric,
    Model,
    OrderItem,
    Ref,
    Rollup,
    SecurityClaim,
    Source,
)
from semantic.parsing import YamlMap, YamlSeq, parse_yaml
from semantic.suggest import did_you_mean

T = TypeVar("T")

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")
DEFAULT_ROLLUP_DATABASE = "semantic"

TOP_KEYS = ("version", "rollup_database", "cluster", "sources", "endpoints")
SOURCE_KEYS = ("table", "local_table", "time", "timezone", "description", "dimensions",
               "measures", "metrics", "rollups", "security")
DIMENSION_KEYS = ("column", "sql", "description")
MEASURE_KEYS = ("agg", "column", "sql", "filter", "level", "method", "description")
METRIC_KEYS = ("sql", "description")
ROLLUP_KEYS = ("dimensions", "grain", "measures")
ENDPOINT_KEYS = ("source", "returns", "grain", "fields", "order", "filters", "limit", "description")


class _Reader:
    """Walks located YAML, collecting issues instead of stopping at the first."""

    def __init__(self) -> None:
        self.issues: list[Issue] = []

    def error(self, location: Location, message: str, code: str) -> None:
        self.issues.append(Issue(location, message, code))

    def mapping(self, value: Any, location: Location, what: str) -> YamlMap | None:
        if isinstance(value, YamlMap):
            return value
        self.error(location, f"{what} must be a mapping, got {_kind(value)}", "type")
        return None

    def keys(self, node: YamlMap, path: tuple[str, ...], allowed: tuple[str, ...], what: str,
             required: tuple[str, ...] = ()) -> None:
        for key in node:
            if key not in allowed:
                hint = did_you_mean(str(key), allowed)
                self.error(
                    node.key_locations[key].at(*path, str(key)),
                    f"unknown key '{key}' in {what}{hint}; allowed keys: {', '.join(allowed)}",
                    "unknown-key",
                )
        for key in required:
            if key not in node or node[key] is None:
                self.error(node.location.at(*path), f"{what} is missing required key '{key}'",
                           "missing-key")

    def value_location(self, node: YamlMap, key: str, path: tuple[str, ...]) -> Location:
        return node.value_locations[key].at(*path, key)

    def key_location(self, node: YamlMap, key: str, path: tuple[str, ...]) -> Location:
        return node.key_locations[key].at(*path, key)

    def scalar(self, node: YamlMap, key: str, path: tuple[str, ...], kind: type[T],
               what: str) -> T | None:
        if key not in node or node[key] is None:
            return None
        value = node[key]
        if kind is int and isinstance(value, bool) or not isinstance(value, kind):
            self.error(self.value_location(node, key, path),
                       f"{what} must be {_kind_name(kind)}, got {_kind(value)}", "type")
            return None
        return value

    def identifier(self, name: Any, location: Location, what: str) -> bool:
        if isinstance(name, str) and IDENTIFIER.match(name):
            return True
        self.error(location, f"{what} name {name!r} must be an identifier "
                   "(letters, digits and _, not starting with a digit)", "invalid-name")
        return False

    def choice(self, node: YamlMap, key: str, path: tuple[str, ...], choices: tuple[str, ...],
               what: str) -> str | None:
        value = self.scalar(node, key, path, str, what)
        if value is not None and value not in choices:
            self.error(self.value_location(node, key, path),
                       f"{what} '{value}' is not one of {', '.join(choices)}"
                       f"{did_you_mean(value, choices)}", f"unknown-{key}")
            return None
        return value

    def refs(self, node: YamlMap, key: str, path: tuple[str, ...], what: str) -> tuple[Ref, ...]:
        if key not in node or node[key] is None:
            return ()
        items = node[key]
        if not isinstance(items, YamlSeq):
            self.error(self.value_location(node, key, path),
                       f"{what} must be a list of names, got {_kind(items)}", "type")
            return ()
        refs = []
        for index, (item, location) in enumerate(zip(items, items.item_locations, strict=True)):
            item_location = location.at(*path, key, str(index))
            if not isinstance(item, str):
                self.error(item_location, f"{what} items must be names, got {_kind(item)}", "type")
                continue
            refs.append(Ref(item, item_location))
        return tuple(refs)

    def entries(self, node: YamlMap, key: str, path: tuple[str, ...], what: str,
                build: Callable[[str, Any, Location, tuple[str, ...]], T | None],
                identifiers: bool = True) -> tuple[T, ...]:
        if key not in node or node[key] is None:
            return ()
        children = self.mapping(node[key], self.value_location(node, key, path), what)
        if children is None:
            return ()
        built = []
        for name, value in children.items():
            child_path = (*path, key, str(name))
            name_location = children.key_locations[name].at(*child_path)
            if identifiers and not self.identifier(name, name_location, what):
                continue
            value_location = children.value_locations[name].at(*child_path)
            item = build(str(name), value, value_location if value is not None else name_location,
                         child_path)
            if item is not None:
                built.append(item)
        return tuple(built)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int | float):
        return f"number {value}"
    return f"string {value!r}"


def _kind_name(kind: type) -> str:
    return {str: "a string", int: "an integer", bool: "true or false"}.get(kind, kind.__name__)


def _expression_keys(reader: _Reader, node: YamlMap, path: tuple[str, ...],
                     what: str) -> tuple[str | None, str | None, str, Location | None]:
    """The ``column`` / ``sql`` / ``description`` keys shared by dimensions and measures."""
    column = reader.scalar(node, "column", path, str, "column")
    sql = reader.scalar(node, "sql", path, str, "sql")
    description = reader.scalar(node, "description", path, str, "description") or ""
    if column is not None and sql is not None:
        reader.error(reader.key_location(node, "sql", path),
                     f"{what} has both 'column' and 'sql'; keep one", "conflicting-keys")
    key = "sql" if sql is not None else "column" if column is not None else None
    return column, sql, description, reader.value_location(node, key, path) if key else None


def _build_dimension(reader: _Reader, name: str, value: Any, location: Location,
                     path: tuple[str, ...]) -> Dimension | None:
    if value is None:
        return Dimension(name, name, None, "", location)
    if isinstance(value, str):
        return Dimension(name, None, value, "", location, location)
    node = reader.mapping(value, location, f"dimension '{name}'")
    if node is None:
        return None
    reader.keys(node, path, DIMENSION_KEYS, f"dimension '{name}'")
    column, sql, description, where = _expression_keys(reader, node, path,
                                                        f"dimension '{name}'")
    if column is None and sql is None:
        column = name
    return Dimension(name, column, sql, description, location, where)


def _build_measure(reader: _Reader, name: str, value: Any, location: Location,
                   path: tuple[str, ...]) -> Measure | None:
    node = reader.mapping(value, location, f"measure '{name}'")
    if node is None:
        return None
    reader.keys(node, path, MEASURE_KEYS, f"measure '{name}'", required=("agg",))
    agg = reader.choice(node, "agg", path, AGGREGATIONS, "aggregation")
    column, sql, description, where = _expression_keys(reader, node, path, f"measure '{name}'")
    if agg is None:
        return None
    if agg != "count" and column is None and sql is None:
        reader.error(location, f"measure '{name}' ({agg}) needs a 'column' or 'sql' to aggregate",
                     "missing-key")
        return None
    condition = reader.scalar(node, "filter", path, str, "filter")
    filter_location = reader.value_location(node, "filter", path) if condition else None
    level = _level(reader, node, path, name, agg)
    method = None
    if agg in METHODS:
        method = reader.choice(node, "method", path, METHODS[agg], "method") or METHODS[agg][0]
    elif "method" in node:
        reader.error(reader.key_location(node, "method", path), f"measure '{name}': 'method' "
                     f"applies only to {', '.join(METHODS)}", "invalid-key")
    return Measure(name, agg, column, sql, description, location, where, condition,
                   filter_location, level, method)


def _level(reader: _Reader, node: YamlMap, path: tuple[str, ...], name: str,
           agg: str) -> float | None:
    value = node.get("level")
    if agg == "median":
        if value is not None:
            reader.error(reader.key_location(node, "level", path), f"measure '{name}': a median "
                         "has level 0.5; use agg: quantile for another level", "invalid-key")
        return 0.5
    if agg != "quantile":
        if value is not None:
            reader.error(reader.key_location(node, "level", path), f"measure '{name}': 'level' "
                         "applies only to agg: quantile", "invalid-key")
        return None
    if value is None:
        reader.error(node.location.at(*path), f"measure '{name}' (quantile) needs a 'level' "
                     "between 0 and 1, e.g. level: 0.95", "missing-key")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        reader.error(reader.value_location(node, "level", path), f"measure '{name}': level must "
                     f"be a number between 0 and 1 (exclusive), got {_kind(value)}",
                     "invalid-level")
        return None
    return float(value)


def _build_metric(reader: _Reader, name: str, value: Any, location: Location,
                  path: tuple[str, ...]) -> Metric | None:
    if isinstance(value, str):
        return Metric(name, value, "", location, location)
    node = reader.mapping(value, location, f"metric '{name}'")
    if node is None:
        return None
    reader.keys(node, path, METRIC_KEYS, f"metric '{name}'", required=("sql",))
    sql = reader.scalar(node, "sql", path, str, "sql")
    description = reader.scalar(node, "description", path, str, "description") or ""
    if sql is None:
        return None
    return Metric(name, sql, description, location, reader.value_location(node, "sql", path))


def _build_rollup(reader: _Reader, name: str, value: Any, location: Location,
                  path: tuple[str, ...]) -> Rollup | None:
    node = reader.mapping(value, location, f"rollup '{name}'")
    if node is None:
        return None
    reader.keys(node, path, ROLLUP_KEYS, f"rollup '{name}'", required=("measures",))
    grain = reader.choice(node, "grain", path, GRAINS, "grain")
    if isinstance(node.get("measures"), list) and not node["measures"]:
        reader.error(reader.value_location(node, "measures", path),
                     f"rollup '{name}' lists no measures", "empty-rollup")
    return Rollup(
        name=name,
        dimensions=reader.refs(node, "dimensions", path, "dimensions"),
        grain=grain,
        measures=reader.refs(node, "measures", path, "measures"),
        location=location,
    )


def _build_security_claim(reader: _Reader, name: str, value: Any, location: Location,
                          path: tuple[str, ...]) -> SecurityClaim | None:
    if not isinstance(value, str):
        reader.error(location, f"security claim '{name}' must name the dimension it restricts, "
                     f"got {_kind(value)}", "type")
        return None
    return SecurityClaim(name, Ref(value, location), location)


def _build_source(reader: _Reader, name: str, value: Any, location: Location,
                  path: tuple[str, ...]) -> Source | None:
    node = reader.mapping(value, location, f"source '{name}'")
    if node is None:
        return None
    reader.keys(node, path, SOURCE_KEYS, f"source '{name}'", required=("table",))
    table = reader.scalar(node, "table", path, str, "table")
    if table is not None and not TABLE.match(table):
        reader.error(reader.value_location(node, "table", path),
                     f"table {table!r} must be written database.table", "invalid-table")
        table = None
    time_column = reader.scalar(node, "time", path, str, "time")
    time_location = None
    if time_column is not None:
        time_location = reader.value_location(node, "time", path)
        if not reader.identifier(time_column, time_location, "time column"):
            time_column = None

    def dimension(n: str, v: Any, loc: Location, p: tuple[str, ...]) -> Dimension | None:
        return _build_dimension(reader, n, v, loc, p)

    def measure(n: str, v: Any, loc: Location, p: tuple[str, ...]) -> Measure | None:
        return _build_measure(reader, n, v, loc, p)

    def rollup(n: str, v: Any, loc: Location, p: tuple[str, ...]) -> Rollup | None:
        return _build_rollup(reader, n, v, loc, p)

    def metric(n: str, v: Any, loc: Location, p: tuple[str, ...]) -> Metric | None:
        return _build_metric(reader, n, v, loc, p)

    dimensions = reader.entries(node, "dimensions", path, "dimension", dimension)
    measures = reader.entries(node, "measures", path, "measure", measure)
    metrics = reader.entries(node, "metrics", path, "metric", metric)
    rollups = reader.entries(node, "rollups", path, "rollup", rollup)

    def claim(n: str, v: Any, loc: Location, p: tuple[str, ...]) -> SecurityClaim | None:
        return _build_security_claim(reader, n, v, loc, p)

    security: tuple[SecurityClaim, ...] = ()
    if node.get("security") is not None and not isinstance(node["security"], YamlMap):
        reader.error(reader.value_location(node, "security", path), "security must map claims "
                     f"to the dimensions they restrict (e.g. tenant: tenant_id), got "
                     f"{_kind(node['security'])}", "type")
    else:
        security = reader.entries(node, "security", path, "security claim", claim)
    timezone = reader.scalar(node, "timezone", path, str, "timezone")
    timezone_location = reader.value_location(node, "timezone", path) if timezone else None
    if timezone is not None and not _known_zone(timezone):
        assert timezone_location is not None
        reader.error(timezone_location, f"unknown time zone {timezone!r}; use an IANA name such "
                     "as UTC or Europe/Berlin", "unknown-timezone")
        timezone = None
    local_table = reader.scalar(node, "local_table", path, str, "local_table")
    if local_table is not None and not TABLE.match(local_table):
        reader.error(reader.value_location(node, "local_table", path),
                     f"local_table {local_table!r} must be written database.table",
                     "invalid-table")
        local_table = None
    description = reader.scalar(node, "description", path, str, "description") or ""
    if table is None:
        return None
    return Source(name, table, time_column, dimensions, measures, rollups, location, time_location,
                  metrics, timezone or DEFAULT_TIMEZONE, timezone_location, local_table,
                  security, description)


def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _build_order(reader: _Reader, node: YamlMap, path: tuple[str, ...]) -> tuple[OrderItem, ...]:
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


def _build_filters(reader: _Reader, node: YamlMap,
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


def _build_endpoint(reader: _Reader, path_name: str, value: Any, location: Location,
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
    grain = reader.choice(node, "grain", path, GRAINS, "grain")
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
                             f"got {_kind(member)}", "type")
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


def build_model(document: Any, file: str) -> tuple[Model | None, list[Issue]]:
    """Phase one: turn a located YAML document into a ``Model``, collecting structural issues."""
    reader = _Reader()
    top = reader.mapping(document, Location(file, 1, 1, ()), "the model file")
    if top is None:
        return None, reader.issues
    reader.keys(top, (), TOP_KEYS, "the model file", required=("sources",))
    version = reader.scalar(top, "version", (), int, "version")
    if version is not None and version != 1:
        reader.error(reader.value_location(top, "version", ()),
                     f"version {version} is not supported; this release reads version 1",
                     "unsupported-version")
    database = reader.scalar(top, "rollup_database", (), str, "rollup_database")
    if database is not None:
        reader.identifier(database, reader.value_location(top, "rollup_database", ()),
                          "rollup_database")
    cluster = reader.scalar(top, "cluster", (), str, "cluster")
    if cluster is not None and not reader.identifier(
            cluster, reader.value_location(top, "cluster", ()), "cluster"):
        cluster = None

    def source(n: str, v: Any, loc: Location, p: tuple[str, ...]) -> Source | None:
        return _build_source(reader, n, v, loc, p)

    sources = reader.entries(top, "sources", (), "source", source)
    if isinstance(top.get("sources"), dict) and not top["sources"]:
        reader.error(reader.value_location(top, "sources", ()), "the model declares no sources",
                     "missing-key")
    only = None
    if isinstance(top.get("sources"), YamlMap) and len(top["sources"]) == 1:
        name = next(iter(top["sources"]))
        only = Ref(str(name), top["sources"].key_locations[name].at("sources", str(name)))

    def endpoint(n: str, v: Any, loc: Location, p: tuple[str, ...]) -> Endpoint | None:
        return _build_endpoint(reader, n, v, loc, p, only)

    endpoints = reader.entries(top, "endpoints", (), "endpoint", endpoint, identifiers=False)
    model = Model(file, database or DEFAULT_ROLLUP_DATABASE, sources, endpoints, cluster)
    if cluster is None and "cluster" not in top:
        for built in sources:
            if built.local_table is not None:
                where = top["sources"][built.name]
                reader.error(where.key_locations["local_table"].at(
                    "sources", built.name, "local_table"), f"source '{built.name}' sets "
                    "local_table but the model has no 'cluster'", "no-cluster")
    return model, reader.issues


def load_model_text(text: str, file: str = "metrics.yaml") -> Model:
    """Load and validate a model from YAML text; raise ``ModelError`` listing every problem."""
    from semantic.rules import check_model

    document, issues = parse_yaml(text, file)
    model = None
    if not any(issue.code == "yaml" for issue in issues):
        model, structure_issues = build_model(document, file)
        issues.extend(structure_issues)
    if model is not None:
        issues.extend(check_model(model))
    errors = [issue for issue in issues if issue.severity == "error"]
    if errors or model is None:
        raise ModelError(errors)
    warnings = tuple(sorted((i for i in issues if i.severity != "error"),
                            key=lambda i: (i.location.line, i.location.column, i.code)))
    return replace(model, warnings=warnings) if warnings else model


def load_model(path: str | Path) -> Model:
    """Load and validate ``metrics.yaml`` (or another model file)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelError([Issue(Location(str(path), 1, 1, ()),
                                f"cannot read the model file: {exc.strerror}", "io")]) from exc
    return load_model_text(text, str(path))
