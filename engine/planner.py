"""Routing: pick the cheapest complete rollup that answers a query exactly, else the raw table,
and build the serving SQL for the choice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sqlglot import exp

from engine.clickhouse import DERIVABLE_GRAINS, GRAIN_FUNCTIONS, call, data_type
from engine.compiler import CompiledRollup, CompiledSource
from engine.ddl import bucket_expression
from engine.query import Query, normalize_query
from engine.render import Rendered, render


@dataclass(frozen=True, slots=True)
class RollupStats:
    """Size of a complete rollup table, from ``system.parts``."""

    rows: int
    bytes: int
    column_bytes: Mapping[str, int] = field(default_factory=dict)

    def read_bytes(self, columns: Iterable[str]) -> int:
        """Bytes a query reading ``columns`` scans (whole table when sizes are unknown)."""
        if not self.column_bytes:
            return self.bytes
        return sum(self.column_bytes.get(column, 0) for column in columns)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A rollup considered for a query; ``reason`` says why it cannot answer (None if it can)."""

    rollup: str
    table: str
    reason: str | None
    detail: str
    rows: int | None = None
    bytes: int | None = None

    def to_dict(self) -> dict[str, object]:
        return {"rollup": self.rollup, "table": self.table, "usable": self.reason is None,
                "reason": self.reason, "detail": self.detail, "rows": self.rows,
                "bytes": self.bytes}


@dataclass(frozen=True, slots=True)
class Plan:
    query: Query
    rollup: CompiledRollup | None
    table: str
    candidates: tuple[Candidate, ...]
    statement: exp.Select
    sql: Rendered
    parameters: dict[str, object]
    columns: tuple[str, ...]


def _reject(source: CompiledSource, query: Query, rollup: CompiledRollup) -> tuple[str, str] | None:
    time = source.time.name if source.time else None
    covered = {d.name for _, d in rollup.dimensions}
    for name in query.dimensions:
        if name != time and name not in covered:
            return "missing_dimension", f"dimension '{name}' is not in the rollup"
    for item in query.filters:
        if item.member not in covered:
            return "filter_not_covered", f"filter on '{item.member}' needs it as a rollup dimension"
    if query.grain is not None:
        if rollup.grain is None:
            return "grain_not_derivable", "the rollup has no time grain"
        if query.grain not in DERIVABLE_GRAINS[rollup.grain]:
            return "grain_not_derivable", (f"grain '{query.grain}' cannot be derived from the "
                                           f"rollup's '{rollup.grain}'")
    keys = {c.key for _, c in rollup.components}
    for name in query.measures:
        missing = [k for k in source.measures[name].components if k not in keys]
        if missing:
            kind, arg = missing[0]
            return "measure_not_derivable", (f"measure '{name}' needs {kind}({arg}), which the "
                                             "rollup does not store")
    return None


def _columns_read(source: CompiledSource, query: Query, rollup: CompiledRollup) -> set[str]:
    """The rollup columns a query reads: its dimensions, filters, bucket and partials."""
    names = set(query.dimensions) | {f.member for f in query.filters}
    columns = {c for c, d in rollup.dimensions if d.name in names}
    if query.grain is not None and rollup.bucket:
        columns.add(rollup.bucket)
    keys = {k for m in query.measures for k in source.measures[m].components}
    return columns | {c for c, p in rollup.components if p.key in keys}


def choose_source(source: CompiledSource, query: Query,
                  ready: Mapping[str, RollupStats]) -> tuple[CompiledRollup | None,
                                                             tuple[Candidate, ...]]:
    """Evaluate every rollup; return the cheapest usable one or None.

    Cost is the bytes of the columns the query would read (a `uniq` state column weighs far
    more than a count), then rows.
    """
    candidates = []
    best: tuple[tuple[int, int, int], CompiledRollup] | None = None
    for rollup in source.rollups:
        stats = ready.get(rollup.qualified_table)
        rejection = _reject(source, query, rollup)
        if stats is None:
            rejection = rejection or ("not_built", "the rollup table is not built yet; run "
                                      "`semantic apply`")
        if rejection is not None:
            candidates.append(Candidate(rollup.name, rollup.qualified_table, *rejection,
                                        stats.rows if stats else None,
                                        stats.bytes if stats else None))
            continue
        assert stats is not None
        candidates.append(Candidate(rollup.name, rollup.qualified_table, None, "can answer",
                                    stats.rows, stats.bytes))
        cost = (stats.read_bytes(_columns_read(source, query, rollup)), stats.rows,
                len(rollup.dimensions))
        if best is None or cost < best[0]:
            best = (cost, rollup)
    return (best[1] if best else None), tuple(candidates)


def _alias(name: str, expression: exp.Expression, table_columns: set[str], used: set[str]) -> str:
    """An output alias that cannot shadow a column of the table read (ClickHouse lets aliases
    win over columns everywhere in a SELECT)."""
    identity = isinstance(expression, exp.Column) and expression.name == name
    alias, n = name, 1
    while (alias in table_columns and not identity) or alias in used:
        n += 1
        alias = f"{name}_{n}"
        identity = False
    used.add(alias)
    return alias


def _parameter(values: tuple[object, ...], type_text: str, many: bool,
               parameters: dict[str, object]) -> exp.Placeholder:
    name = f"p{len(parameters)}"
    parameters[name] = list(values) if many else values[0]
    kind = data_type(f"Array({type_text})" if many else type_text)
    return exp.Placeholder(this=name, kind=kind)


def _condition(target: exp.Expression, op: str, values: tuple[object, ...], type_text: str,
               parameters: dict[str, object]) -> exp.Expression:
    many = op in ("in", "not_in")
    placeholder = _parameter(values, type_text, many, parameters)
    if op == "eq":
        return exp.EQ(this=target, expression=placeholder)
    if op == "ne":
        return exp.NEQ(this=target, expression=placeholder)
    condition = exp.In(this=target, field=placeholder)
    return exp.Not(this=condition) if op == "not_in" else condition


def build_sql(source: CompiledSource, query: Query, rollup: CompiledRollup | None,
              fetch_limit: int) -> tuple[exp.Select, dict[str, object], tuple[str, ...]]:
    """Serving SQL for a normalized query, from ``rollup`` or (None) the raw table."""
    time = source.time.name if source.time else None
    if rollup is not None:
        table = exp.table_(rollup.table, db=rollup.database)
        table_columns = {c for c, _ in rollup.dimensions} | {c for c, _ in rollup.components}
        table_columns |= {rollup.bucket} if rollup.bucket else set()
    else:
        table = source.table
        table_columns = set(source.columns)

    def dimension_expression(name: str) -> exp.Expression:
        if name == time:
            assert query.grain is not None
            if rollup is None:
                return bucket_expression(source, query.grain)
            assert rollup.bucket is not None
            column = exp.column(rollup.bucket)
            return column if query.grain == rollup.grain else call(GRAIN_FUNCTIONS[query.grain],
                                                                   column)
        if rollup is None:
            return source.dimensions[name].expression.copy()
        column_name = rollup.dimension_column(name)
        assert column_name is not None
        return exp.column(column_name)

    def measure_expression(name: str) -> exp.Expression:
        measure = source.measures[name]
        if rollup is None:
            argument = measure.argument.copy() if measure.argument is not None else None
            return measure.aggregation.raw(argument)
        parts = []
        for key in measure.components:
            column = rollup.component_column(key)
            assert column is not None
            parts.append(source.components[key].kind.combine(exp.column(column)))
        return measure.aggregation.finish(parts)

    used: set[str] = set()
    aliases: dict[str, str] = {}
    selects: list[exp.Expr] = []
    groups: list[exp.Expr] = []
    for name in query.dimensions:
        expression = dimension_expression(name)
        aliases[name] = _alias(name, expression, table_columns, used)
        selects.append(exp.alias_(expression, aliases[name]))
        groups.append(expression.copy())
    for name in query.measures:
        expression = measure_expression(name)
        aliases[name] = _alias(name, expression, table_columns, used)
        selects.append(exp.alias_(expression, aliases[name]))

    parameters: dict[str, object] = {}
    select = exp.select(*selects).from_(table)
    for item in query.filters:
        target = dimension_expression(item.member)
        type_text = source.dimensions[item.member].type
        select = select.where(_condition(target, item.op, item.values, type_text, parameters))
    if groups:
        select = select.group_by(*groups)
    for sort in query.order:
        select = select.order_by(exp.Ordered(this=exp.column(aliases[sort.member]),
                                             desc=sort.descending))
    select = select.limit(fetch_limit)
    if query.offset:
        select = select.offset(query.offset)
    columns = tuple(query.dimensions) + tuple(query.measures)
    return select, parameters, columns


def plan_query(source: CompiledSource, query: Query,
               ready: Mapping[str, RollupStats], force_raw: bool = False) -> Plan:
    """Plan a query: validate it, pick the table, build the SQL.

    ``ready`` maps complete rollup tables (``db.table``) to their size; rollups missing from it
    are never used. ``force_raw`` skips rollups (for comparisons and benchmarks).
    """
    query = normalize_query(source, query)
    rollup, candidates = choose_source(source, query, {} if force_raw else ready)
    assert query.limit is not None
    fetch_limit = query.limit + 1  # one extra row tells the caller the answer was truncated
    statement, parameters, columns = build_sql(source, query, rollup, fetch_limit)
    table = rollup.qualified_table if rollup else source.source.table
    return Plan(query, rollup, table, candidates, statement, render(statement), parameters,
                columns)
