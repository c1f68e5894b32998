"""Phase one of loading: YAML structure -> model dataclasses.

Checks types, required keys and unknown keys, collecting every issue. Cross-references are
checked afterwards by ``semantic.rules``; ``load_model`` runs both and raises one ``ModelError``
listing every problem.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from semantic.endpoints import build_endpoint
from semantic.errors import Issue, ModelError
from semantic.location import Location
from semantic.model import (
    AGGREGATIONS,
    DEFAULT_TIMEZONE,
    GRAINS,
    METHODS,
    MONTH_NAMES,
    PERIODS,
    RELATIONSHIPS,
    TIME_FUNCTIONS,
    WEEKDAYS,
    Dimension,
    Duration,
    Endpoint,
    Join,
    Measure,
    Metric,
    Model,
    Ref,
    Rollup,
    SecurityClaim,
    Source,
    TimeFunction,
    default_source,
    parse_duration,
)
from semantic.parsing import YamlMap, parse_yaml
from semantic.reader import Reader, kind_of
from semantic.rules import check_model

T = TypeVar("T")

TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")
DEFAULT_ROLLUP_DATABASE = "semantic"

TOP_KEYS = ("version", "rollup_database", "cluster", "sources", "endpoints")
SOURCE_KEYS = ("table", "local_table", "time", "timezone", "week_start", "fiscal_year_start",
               "description", "primary_key", "joins", "dimensions", "measures", "metrics",
               "rollups", "security")
JOIN_KEYS = ("source", "keys", "relationship")
DIMENSION_KEYS = ("column", "sql", "description")
MEASURE_KEYS = ("agg", "column", "sql", "filter", "level", "method", "description")
METRIC_KEYS = ("sql", "description")
ROLLUP_KEYS = ("dimensions", "grain", "measures")




def _expression_keys(reader: Reader, node: YamlMap, path: tuple[str, ...],
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


def _build_dimension(reader: Reader, name: str, value: Any, location: Location,
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


def _build_measure(reader: Reader, name: str, value: Any, location: Location,
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


def _level(reader: Reader, node: YamlMap, path: tuple[str, ...], name: str,
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
                     f"be a number between 0 and 1 (exclusive), got {kind_of(value)}",
                     "invalid-level")
        return None
    return float(value)


def _build_metric(reader: Reader, name: str, value: Any, location: Location,
                  path: tuple[str, ...]) -> Metric | None:
    if isinstance(value, str):
        return Metric(name, value, "", location, location)
    node = reader.mapping(value, location, f"metric '{name}'")
    if node is None:
        return None
    functions = [key for key in node if key in TIME_FUNCTIONS]
    description = reader.scalar(node, "description", path, str, "description") or ""
    if functions:
        reader.keys(node, path, (functions[0], "description"), f"metric '{name}'")
        time = _time_function(reader, name, node, functions[0], path)
        if time is None:
            return None
        return Metric(name, time.measure.name, description, location, time.measure.location,
                      time)
    reader.keys(node, path, METRIC_KEYS, f"metric '{name}'", required=("sql",))
    sql = reader.scalar(node, "sql", path, str, "sql")
    if sql is None:
        return None
    return Metric(name, sql, description, location, reader.value_location(node, "sql", path))


#: the keys of each time function (all required)
TIME_FUNCTION_KEYS: dict[str, tuple[str, ...]] = {
    "rolling": ("measure", "window"), "to_date": ("measure", "period"),
    "cumulative": ("measure",), "offset": ("measure", "by"),
}


def _time_function(reader: Reader, name: str, node: YamlMap, kind: str,
                   path: tuple[str, ...]) -> TimeFunction | None:
    """``{rolling: {measure: flights, window: 7 days}}`` and the other ``TIME_FUNCTIONS``."""
    what = f"metric '{name}' ({kind})"
    inner = reader.mapping(node[kind], reader.value_location(node, kind, path), what)
    if inner is None:
        return None
    at = (*path, kind)
    keys = TIME_FUNCTION_KEYS[kind]
    reader.keys(inner, at, keys, what, required=keys)
    measure = reader.scalar(inner, "measure", at, str, "measure")
    durations: dict[str, Duration] = {}
    for key in ("window", "by"):
        if key not in keys or inner.get(key) is None:
            continue
        text = inner[key]
        try:
            durations[key] = parse_duration(text if isinstance(text, str) else "")
        except ValueError as exc:
            reader.error(reader.value_location(inner, key, at), f"{what}: {key}: {exc}, got "
                         f"{text!r}", f"invalid-{key}")
    period = reader.choice(inner, "period", at, PERIODS, "period") if "period" in keys else None
    if measure is None or any(key in inner and key not in durations for key in ("window", "by")) \
            or ("period" in keys and period is None):
        return None
    return TimeFunction(kind, Ref(measure, reader.value_location(inner, "measure", at)),
                        node.key_locations[kind].at(*path, kind), durations.get("window"),
                        period, durations.get("by"))


def _build_rollup(reader: Reader, name: str, value: Any, location: Location,
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


def _build_security_claim(reader: Reader, name: str, value: Any, location: Location,
                          path: tuple[str, ...]) -> SecurityClaim | None:
    if not isinstance(value, str):
        reader.error(location, f"security claim '{name}' must name the dimension it restricts, "
                     f"got {kind_of(value)}", "type")
        return None
    return SecurityClaim(name, Ref(value, location), location)


def _build_join(reader: Reader, name: str, value: Any, location: Location,
                path: tuple[str, ...]) -> Join | None:
    node = reader.mapping(value, location, f"join '{name}'")
    if node is None:
        return None
    reader.keys(node, path, JOIN_KEYS, f"join '{name}'", required=("source", "keys"))
    target = reader.scalar(node, "source", path, str, "source")
    relationship = None
    if node.get("relationship") in ("one_to_many", "many_to_many"):
        reader.error(reader.value_location(node, "relationship", path),
                     f"join '{name}': relationship '{node['relationship']}' would repeat each "
                     "row of this source once per matching row and multiply its measures; join "
                     "from the source with many rows to the one with one row per key "
                     "(many_to_one), and ask for the other source's measures from that source",
                     "fan-out")
    else:
        relationship = reader.choice(node, "relationship", path, RELATIONSHIPS, "relationship")
    keys: list[tuple[str, str]] = []
    keys_location = reader.value_location(node, "keys", path) if "keys" in node else None
    raw_keys = node.get("keys")
    if raw_keys is not None:
        if not isinstance(raw_keys, YamlMap) or not raw_keys:
            assert keys_location is not None
            reader.error(keys_location, f"join '{name}': keys must map this source's columns "
                         "to the joined source's key columns (e.g. keys: {carrier: carrier}), "
                         f"got {kind_of(raw_keys)}", "type")
        else:
            for left, right in raw_keys.items():
                where = raw_keys.key_locations[left].at(*path, "keys", str(left))
                if not isinstance(right, str):
                    reader.error(where, f"join '{name}': key '{left}' must name a column of "
                                 f"the joined source, got {kind_of(right)}", "type")
                    continue
                if reader.identifier(left, where, "key column") and \
                        reader.identifier(right, where, "key column"):
                    keys.append((str(left), right))
    if target is None:
        return None
    return Join(name, Ref(target, reader.value_location(node, "source", path)), tuple(keys),
                relationship or RELATIONSHIPS[0], location, keys_location)


def _primary_key(reader: Reader, node: YamlMap,
                 path: tuple[str, ...]) -> tuple[tuple[str, ...], Location | None]:
    if node.get("primary_key") is None:
        return (), None
    where = reader.value_location(node, "primary_key", path)
    value = node["primary_key"]
    columns = [value] if isinstance(value, str) else value if isinstance(value, list) else None
    if not columns or any(not isinstance(c, str) for c in columns):
        reader.error(where, "primary_key must name a column or list the columns that identify "
                     f"a row, got {kind_of(value)}", "type")
        return (), where
    valid = [c for c in columns if reader.identifier(c, where, "primary key column")]
    if len(set(valid)) != len(valid):
        reader.error(where, "primary_key lists a column twice", "duplicate-reference")
    return tuple(valid), where


def _build_source(reader: Reader, name: str, value: Any, location: Location,
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

    def join(n: str, v: Any, loc: Location, p: tuple[str, ...]) -> Join | None:
        return _build_join(reader, n, v, loc, p)

    joins = reader.entries(node, "joins", path, "join", join)
    primary_key, primary_key_location = _primary_key(reader, node, path)
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
                     f"{kind_of(node['security'])}", "type")
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
    week_start = reader.choice(node, "week_start", path, WEEKDAYS, "week_start")
    fiscal_start = reader.choice(node, "fiscal_year_start", path, MONTH_NAMES,
                                 "fiscal_year_start")
    if table is None:
        return None
    dimensions += _join_key_dimensions(joins, dimensions, measures, metrics, time_column)
    return Source(name, table, time_column, dimensions, measures, rollups, location, time_location,
                  metrics, timezone or DEFAULT_TIMEZONE, timezone_location, local_table,
                  security, description, primary_key, primary_key_location, joins,
                  week_start or WEEKDAYS[0], fiscal_start or MONTH_NAMES[0])


def _join_key_dimensions(joins: tuple[Join, ...], dimensions: tuple[Dimension, ...],
                         measures: tuple[Measure, ...], metrics: tuple[Metric, ...],
                         time_column: str | None) -> tuple[Dimension, ...]:
    """A join's key columns are dimensions of the joining source too (``origin`` beside
    ``origin_airport.name``), unless a member already has that name."""
    taken: set[str | None] = {time_column}
    taken.update(d.name for d in dimensions)
    taken.update(m.name for m in measures)
    taken.update(m.name for m in metrics)
    implicit: list[Dimension] = []
    for join in joins:
        for own, _ in join.keys:
            if own not in taken:
                taken.add(own)
                where = join.keys_location or join.location
                implicit.append(Dimension(own, own, None, f"The key of join '{join.name}'.",
                                          where, where))
    return tuple(implicit)


def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True




def build_model(document: Any, file: str) -> tuple[Model | None, list[Issue]]:
    """Phase one: turn a located YAML document into a ``Model``, collecting structural issues."""
    reader = Reader()
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
    only = None  # the source an endpoint naming none reads, as a query naming none asks
    named = top.get("sources")
    if isinstance(named, YamlMap):
        name = default_source([(str(n), isinstance(v, YamlMap) and bool(
            v.get("measures") or v.get("metrics"))) for n, v in named.items()])
        if name is not None:
            only = Ref(name, named.key_locations[name].at("sources", name))

    def endpoint(n: str, v: Any, loc: Location, p: tuple[str, ...]) -> Endpoint | None:
        return build_endpoint(reader, n, v, loc, p, only)

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
