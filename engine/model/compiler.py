"""Model + warehouse types -> compiled model: expressions parsed, partials typed, rollups named.

The engine is pure: the warehouse types it needs arrive as data. ``type_probe`` builds the one
``DESCRIBE`` query per source that the server runs to learn them.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from engine.dialect.aggregations import COMPONENTS, aggregation_for
from engine.dialect.functions import DERIVABLE_GRAINS, call
from engine.dialect.types import FLOAT_TYPES, nullable
from engine.model.compiled import (
    CompiledComponent,
    CompiledDimension,
    CompiledMeasure,
    CompiledMetric,
    CompiledModel,
    CompiledRollup,
    CompiledSource,
    ComponentKey,
    Paths,
    ProbeKey,
    SourceTypes,
    frozen_needs,
    needs_of,
)
from engine.model.expressions import (
    canonical_sql,
    check_expressions,
    filter_expression,
    member_expression,
    metric_expression,
    parse_expression,
)
from engine.model.joins import (
    Needs,
    attribute_name,
    join_clauses,
    joined_column,
    merge_needs,
    rewrite_joined,
    with_joins,
)
from semantic.errors import ModelError
from semantic.joins import join_paths, joined_dimensions
from semantic.model import Measure, Model, Rollup, Source

#: Bump when the physical layout of rollups changes, so every rollup gets new tables.
LAYOUT_VERSION = 4

@dataclass(frozen=True, slots=True)
class TypeProbe:
    """A ``DESCRIBE`` over one query that yields the type of every model expression."""

    source: str
    statement: exp.Describe
    keys: tuple[ProbeKey, ...]


def measure_expressions(measure: Measure, paths: Paths) -> tuple[
        exp.Expression | None, exp.Expression | None, Needs]:
    """A measure's argument and condition, joined columns (``plane.seats``) read as their
    joins expose them, and the joins they need."""
    argument = member_expression(measure)
    condition = filter_expression(measure)
    if not paths:
        return argument, condition, {}

    def known(path: tuple[str, ...], attribute: str) -> bool:
        return path in paths

    found: list[Needs] = []
    if argument is not None:
        argument, needs = rewrite_joined(argument, known)
        found.append(needs)
    if condition is not None:
        condition, needs = rewrite_joined(condition, known)
        found.append(needs)
    return argument, condition, merge_needs(*found)


def _components_of(measure: Measure, paths: Paths) -> tuple[ComponentKey, ...]:
    argument, condition, _ = measure_expressions(measure, paths)
    arg_sql = canonical_sql(argument)
    condition_sql = canonical_sql(condition)
    return tuple((kind, arg_sql, condition_sql)
                 for kind in aggregation_for(measure.agg, measure.method).components)


def type_probe(source: Source, paths: Paths | None = None) -> TypeProbe:
    """Build the probe for a source's dimension and aggregate types.

    >>> from semantic import load_model_text
    >>> m = load_model_text('''
    ... sources:
    ...   e:
    ...     table: a.e
    ...     dimensions: {r: {}}
    ...     measures: {s: {agg: sum, column: v}}
    ... ''')
    >>> type_probe(m.sources[0]).statement.sql(dialect="clickhouse")
    'DESCRIBE (SELECT any(r) AS p0, any(v) AS p1, sum(v) AS p2 FROM a.e)'
    """
    keys: list[ProbeKey] = []
    selects: list[exp.Expr] = []
    paths = paths or {}
    needs: list[Needs] = []

    def add(key: ProbeKey, expression: exp.Expr) -> None:
        if key not in keys:
            keys.append(key)
            selects.append(exp.alias_(expression, f"p{len(selects)}"))

    for dimension in source.dimensions:
        expression = member_expression(dimension)
        assert expression is not None
        add(("value", canonical_sql(expression)), call("any", expression))
    for measure in source.measures:
        argument, condition, measure_needs = measure_expressions(measure, paths)
        needs.append(measure_needs)
        if condition is not None:
            add(("value", canonical_sql(condition)), call("any", condition))
        if argument is None:
            continue
        add(("value", canonical_sql(argument)), call("any", argument))
        for key in _components_of(measure, paths):
            kind = COMPONENTS[key[0]]
            if kind.simple and kind.name != "count":
                add(key, kind.raw(argument.copy(),
                                  condition.copy() if condition is not None else None))
            elif not kind.simple:  # ClickHouse checks the argument's type (bitmaps: integers)
                add(key, kind.fill(argument.copy(),
                                   condition.copy() if condition is not None else None))
    if not selects:
        selects.append(exp.alias_(exp.Literal.number(1), "p0"))
        keys.append(("value", "1"))
    select = with_joins(exp.select(*selects).from_(exp.to_table(source.table)),
                        join_clauses(paths, merge_needs(*needs), exp.column))
    return TypeProbe(source.name, exp.Describe(this=exp.Subquery(this=select)), tuple(keys))


_NAME_SAFE = re.compile(r"[^A-Za-z0-9_]")


def _component_column(key: ComponentKey, argument: exp.Expression | None, used: set[str]) -> str:
    kind, arg_sql, condition_sql = key
    short = COMPONENTS[kind].short
    if argument is None:
        base = f"{short}_all"
    elif isinstance(argument, exp.Column):
        base = f"{short}_{argument.name}"
    else:
        base = f"{short}_{hashlib.sha1(arg_sql.encode()).hexdigest()[:8]}"
    if condition_sql:
        base += f"_if_{hashlib.sha1(condition_sql.encode()).hexdigest()[:8]}"
    return unique_name(_NAME_SAFE.sub("_", base), used)


def _dimension_column(dimension: CompiledDimension, used: set[str]) -> str:
    expression = dimension.expression
    if isinstance(expression, exp.Column) and expression.name == dimension.name:
        used.add(dimension.name)
        return dimension.name
    return unique_name(dimension.name, used)


def unique_name(name: str, used: set[str]) -> str:
    """``name``, or ``name_2``, ``name_3``... if used; the result is used from then on."""
    candidate, n = name, 1
    while candidate in used:
        n += 1
        candidate = f"{name}_{n}"
    used.add(candidate)
    return candidate


#: partition functions of a time column -> the grain of their partitions
PARTITION_GRAINS = {"toyyyymm": "month", "tostartofmonth": "month", "toyyyymmdd": "day",
                    "todate": "day", "tomonday": "week", "toyear": "year",
                    "tostartofyear": "year", "tostartofquarter": "quarter"}


def _rollup_partition(source: CompiledSource, grain: str | None,
                      bucket: str | None) -> exp.Expression | None:
    """Partition a rollup like its source when the source is partitioned by a function of its
    time column and the rollup's buckets nest in those partitions (``toYYYYMM(ts)`` ->
    ``toYYYYMM(ts_day)``): a repair then rebuilds only the partitions that drifted. An insert
    spanning many partitions hits ClickHouse's per-insert partition limit on the source
    already, so this adds no new failure."""
    if not source.engine.partition_key or grain is None or bucket is None or source.time is None:
        return None
    try:
        key = parse_expression(source.engine.partition_key)
    except (ParseError, TokenError):
        return None
    name = (key.name if isinstance(key, exp.Anonymous) else key.sql_name()).lower() \
        if isinstance(key, exp.Func) else ""
    columns = list(key.find_all(exp.Column))
    if name not in PARTITION_GRAINS or len(columns) != 1 or \
            columns[0].name != source.time.name or len(key.expressions or [key.this]) > 1:
        return None
    if PARTITION_GRAINS[name] not in DERIVABLE_GRAINS[grain]:
        return None
    function = next(f for f in ("toYYYYMM", "toStartOfMonth", "toYYYYMMDD", "toDate", "toMonday",
                                "toYear", "toStartOfYear", "toStartOfQuarter")
                    if f.lower() == name)
    args: list[exp.Expr] = [exp.column(bucket)]
    if grain in ("minute", "hour"):  # instants: cut in the model's zone, like the buckets
        args.append(exp.Literal.string(source.timezone))
    return call(function, *args)


def _compile_rollup(source: CompiledSource, rollup: Rollup, database: str) -> CompiledRollup:
    # Column names never shadow a source column: in ClickHouse an alias wins over a column of
    # the same name everywhere in the SELECT, so `upper(region) AS region` would silently change
    # `uniqState(region)` too. Only a dimension that *is* that column may keep its name.
    used: set[str] = set(source.columns)
    own = [source.dimensions[ref.name] for ref in rollup.dimensions
           if not source.dimensions[ref.name].path]
    dimensions = tuple((_dimension_column(d, used), d) for d in own)
    # A joined dimension is looked up at query time from the join key the rollup keeps, so
    # the answer follows the dimension table as it is now (the states merge exactly when
    # several keys share an attribute).
    stored = {d.expression.name for _, d in dimensions
              if isinstance(d.expression, exp.Column) and not d.expression.table}
    key_columns: list[str] = []
    for ref in rollup.dimensions:
        path = source.dimensions[ref.name].path
        if path:
            for own_column, _ in source.paths[path[:1]].joins[0].keys:
                if own_column not in stored and own_column not in key_columns:
                    key_columns.append(own_column)
    # the column keeps its own name: it is that column (as a dimension that is one does)
    join_keys = tuple((column, column, source.columns[column]) for column in key_columns)
    used |= set(key_columns)
    bucket = None
    if rollup.grain is not None:
        assert source.time is not None
        bucket = unique_name(f"{source.time.name}_{rollup.grain}", used)
    keys: list[ComponentKey] = []
    for ref in rollup.measures:
        for key in source.components_of(ref.name):
            if key not in keys:
                keys.append(key)
    components = tuple(
        (_component_column(key, source.components[key].argument, used), source.components[key])
        for key in keys
    )
    needs = needs_of(c for _, c in components)
    layout = {
        "layout": LAYOUT_VERSION,
        "source": source.source.table,
        "time": canonical_sql(source.time.expression) if source.time else None,
        "timezone": source.timezone,
        "grain": rollup.grain,
        "dimensions": [[c, canonical_sql(d.expression), d.type] for c, d in dimensions],
        "components": [[c, *p.key, p.column_type] for c, p in components],
    }
    if join_keys:
        layout["keys"] = [list(k) for k in join_keys]
    if needs:  # what the stored joined columns are read through
        clauses = join_clauses(source.paths, needs, exp.column)
        layout["joins"] = [canonical_sql(c) for c in clauses]
    if source.cluster is not None:
        layout["cluster"] = source.cluster
    if rollup.grain == "week" and source.source.week_start != "monday":
        layout["week_start"] = source.source.week_start  # its buckets start on that day
    partition = _rollup_partition(source, rollup.grain, bucket)
    if partition is not None:
        layout["partition"] = canonical_sql(partition)
    constant_key = None
    if bucket is None and not dimensions and not join_keys:
        constant_key = unique_name("_group", used)
        layout["key"] = constant_key
    digest = hashlib.sha256(json.dumps(layout, sort_keys=True).encode()).hexdigest()[:10]
    table = f"{source.name}_{rollup.name}_{digest}"
    return CompiledRollup(
        name=rollup.name,
        source=source.name,
        database=database,
        table=table,
        view=f"{table}_mv",
        grain=rollup.grain,
        bucket=bucket,
        dimensions=dimensions,
        components=components,
        measures=tuple(ref.name for ref in rollup.measures),
        cluster=source.cluster,
        partition=partition,
        constant_key=constant_key,
        keys=join_keys,
        joined=tuple(ref.name for ref in rollup.dimensions
                     if source.dimensions[ref.name].path),
        stores_from=tuple(sorted({j_path.target.table for path in needs
                                  for depth in range(1, len(path) + 1)
                                  for j_path in (source.paths[path[:depth]],)})),
    )


def compile_source(source: Source, types: SourceTypes, database: str,
                   cluster: str | None = None, paths: Paths | None = None,
                   joined: Mapping[str, CompiledDimension] | None = None) -> CompiledSource:
    """Compile one source; ``paths`` are its joins' paths and ``joined`` the dimensions
    reached through them (``compile_model`` gives both)."""
    probed = types.probed
    paths = paths or {}
    time = None
    if source.time_column:
        time = CompiledDimension(source.time_column, exp.column(source.time_column),
                                 types.columns[source.time_column])
    dimensions = {}
    for dimension in source.dimensions:
        expression = member_expression(dimension)
        assert expression is not None
        dimensions[dimension.name] = CompiledDimension(
            dimension.name, expression, probed[("value", canonical_sql(expression))])
    dimensions.update(joined or {})
    measures: dict[str, CompiledMeasure] = {}
    components: dict[ComponentKey, CompiledComponent] = {}
    for measure in source.measures:
        argument, condition, needs = measure_expressions(measure, paths)
        keys = _components_of(measure, paths)
        for key in keys:
            kind = COMPONENTS[key[0]]
            argument_type = probed[("value", key[1])] if argument is not None else ""
            result_type = "UInt64" if kind.name == "count" else probed.get(key, argument_type)
            components.setdefault(
                key, CompiledComponent(key, kind, argument, condition, argument_type, result_type,
                                       frozen_needs(needs)))
        aggregation = aggregation_for(measure.agg, measure.method)
        exact, note = aggregation.exact, aggregation.note
        if measure.agg in ("sum", "avg") and argument is not None and \
                probed[("value", keys[0][1])] in FLOAT_TYPES:
            exact, note = False, ("floating-point sum: rollup and raw answers may differ in the "
                                  "last bits (summation order), about 1e-15 relative")
        params = (measure.level,) if measure.level is not None else ()
        measures[measure.name] = CompiledMeasure(
            measure.name, aggregation, argument, condition, params, keys, measure.description,
            exact, note)
    metrics = _compile_metrics(source, measures)
    compiled = CompiledSource(source, types.columns, time, dimensions, measures, components, (),
                              metrics, cluster, types.engine, paths)
    rollups = tuple(_compile_rollup(compiled, r, database) for r in source.rollups)
    return replace(compiled, rollups=rollups)


def _compile_metrics(source: Source,
                     measures: Mapping[str, CompiledMeasure]) -> dict[str, CompiledMetric]:
    """Metrics in dependency order; expressions were checked (names, cycles) beforehand."""
    compiled: dict[str, CompiledMetric] = {}
    pending = {m.name: m for m in source.metrics}
    while pending:
        progress = len(pending)
        for name, metric in list(pending.items()):
            expression = metric_expression(metric)
            names = [c.name for c in expression.find_all(exp.Column)]
            if any(n in pending for n in names):
                continue
            leaves: list[str] = []
            for ref in names:
                for leaf in compiled[ref].leaves if ref in compiled else (ref,):
                    if leaf not in leaves:
                        leaves.append(leaf)
            inexact = [leaf for leaf in leaves if not measures[leaf].exact]
            note = ("exact: computed from exact measures; division by zero gives null"
                    if not inexact else
                    f"as exact as {', '.join(inexact)} (see those measures)")
            compiled[name] = CompiledMetric(name, expression, tuple(leaves), metric.description,
                                            not inexact, note, metric.time)
            del pending[name]
        assert len(pending) < progress, "metric cycles are rejected by check_expressions"
    return compiled


def compile_model(model: Model, types: Mapping[str, SourceTypes]) -> CompiledModel:
    """Compile a validated model with the warehouse's types for each source.

    Raises ``ModelError`` (located issues) when an expression names a column the source lacks.
    """
    issues = check_expressions(model, {name: t.columns for name, t in types.items()})
    if issues:
        raise ModelError(issues)
    return CompiledModel(
        model,
        {s.name: compile_source(s, types[s.name], model.rollup_database, model.cluster,
                                join_paths(model, s), _joined(model, s, types))
         for s in model.sources},
    )


def _joined(model: Model, source: Source,
            types: Mapping[str, SourceTypes]) -> dict[str, CompiledDimension]:
    """The dimensions reached through joins, typed as the joins give them (Nullable: a row
    without a match has none)."""
    found = {}
    for name, (path, dimension) in joined_dimensions(model, source).items():
        expression = member_expression(dimension)
        assert expression is not None
        type_name = types[path.target.name].probed[("value", canonical_sql(expression))]
        found[name] = CompiledDimension(name, joined_column(attribute_name(path.names,
                                                                           dimension.name)),
                                        nullable(type_name), path.names)
    return found
