"""Parsing and checking the SQL expressions written in the model."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from engine.dialect.types import value_kind
from semantic.errors import Issue
from semantic.joins import JoinPath, join_paths
from semantic.location import Location
from semantic.model import Dimension, Measure, Metric, Model, Source
from semantic.suggest import did_you_mean

#: what is wrong with a joined column (``plane.seats``) of a measure, or None
JoinedCheck = Callable[[tuple[str, ...], str], str | None]


def parse_expression(sql: str) -> exp.Expression:
    """Parse one ClickHouse scalar expression; several statements are a ``ParseError``.

    >>> parse_expression("intDiv(revenue, 10)").sql(dialect="clickhouse")
    'intDiv(revenue, 10)'
    """
    statements = [s for s in sqlglot.parse(sql, dialect="clickhouse") if s is not None]
    if len(statements) != 1:
        raise ParseError(f"expected one expression, found {len(statements)} statements")
    expression = statements[0]
    if isinstance(expression, exp.Command | exp.DDL | exp.DML | exp.Block):
        raise ParseError("expected an expression, found a statement")
    assert isinstance(expression, exp.Expression)
    return expression


def member_expression(member: Dimension | Measure) -> exp.Expression | None:
    """The expression a dimension groups by or a measure aggregates (None for ``count()``)."""
    if member.sql is not None:
        return parse_expression(member.sql)
    if member.column is not None:
        return exp.column(member.column)
    return None


def filter_expression(measure: Measure) -> exp.Expression | None:
    """The condition of a filtered measure (None when it aggregates every row)."""
    return parse_expression(measure.filter) if measure.filter is not None else None


def metric_expression(metric: Metric) -> exp.Expression:
    """A metric's expression; measures and metrics appear in it as columns."""
    return parse_expression(metric.sql)


#: what a metric expression may contain besides measure/metric names and numbers
METRIC_NODES = (exp.Column, exp.Identifier, exp.Literal, exp.Paren, exp.Add, exp.Sub, exp.Mul,
                exp.Div, exp.Neg, exp.Mod)
METRIC_FUNCTIONS = ("round", "abs", "least", "greatest", "coalesce", "ifnull")


def dotted_parts(node: exp.Expr) -> list[str] | None:
    """The name parts of a column reference written with dots (``plane.seats``,
    ``a.b.c.d.e.w``: sqlglot reads five or more parts as ``Dot(Column(a.b.c.d.e), w)``), or
    None for anything else."""
    if isinstance(node, exp.Column):
        return [p.name for p in node.parts]
    if isinstance(node, exp.Dot) and isinstance(node.expression, exp.Identifier):
        inner = dotted_parts(node.this)
        return None if inner is None else [*inner, node.expression.name]
    return None


def joined_references(expression: exp.Expression) -> list[tuple[exp.Expr, tuple[str, ...],
                                                                  str]]:
    """Every reference to a joined column in ``expression``: (node, join path, column)."""
    found: list[tuple[exp.Expr, tuple[str, ...], str]] = []
    inside: set[int] = set()
    for node in expression.walk():
        if id(node) in inside or not isinstance(node, exp.Column | exp.Dot):
            continue
        parts = dotted_parts(node)
        if parts is None:
            continue
        inside.update(id(n) for n in node.walk())
        if len(parts) == 1 and "." in parts[0]:
            parts = parts[0].split(".")
        if len(parts) > 1:
            found.append((node, tuple(parts[:-1]), parts[-1]))
    return found


def canonical_sql(expression: exp.Expression | None) -> str:
    """A stable text form of an expression, used as a key and in table-name hashes."""
    return "" if expression is None else expression.sql(dialect="clickhouse")


def _expression_issues(expression_sql: str, location: Location, what: str,
                       columns: Mapping[str, str] | None,
                       joined: JoinedCheck | None = None) -> Iterator[Issue]:
    try:
        expression = parse_expression(expression_sql)
    except (ParseError, TokenError) as exc:
        errors = getattr(exc, "errors", None)
        first = errors[0]["description"] if errors else str(exc)
        yield Issue(location, f"{what}: cannot parse SQL {expression_sql!r}: {first}",
                    "invalid-sql")
        return
    if isinstance(expression, exp.Query) or expression.find(exp.Query):
        yield Issue(location, f"{what}: subqueries are not allowed in a model expression",
                    "invalid-sql")
        return
    if expression.find(exp.AggFunc):
        yield Issue(location, f"{what}: {expression_sql!r} contains an aggregate function; "
                    "write the row-level expression and set 'agg' instead", "invalid-sql")
    references = joined_references(expression)
    for _, path, attribute in references:
        problem = joined(path, attribute) if joined is not None else (
            f"write column '{attribute}' without a table qualifier (joined columns, such as "
            "plane.seats, are read by measures only)")
        if problem:
            yield Issue(location, f"{what}: {problem}", "unknown-column")
    qualified = {id(n) for node, _, _ in references for n in node.walk()}
    for column in expression.find_all(exp.Column):
        if id(column) in qualified:
            continue
        if columns is not None and column.name not in columns:
            hint = did_you_mean(column.name, columns)
            yield Issue(location, f"{what}: column '{column.name}' does not exist in the "
                        f"source table{hint}", "unknown-column")


def _metric_issues(source: Source, metric: Metric) -> Iterator[Issue]:
    where = metric.expression_location or metric.location
    what = f"metric '{metric.name}'"
    if metric.time is not None:
        measures = [m.name for m in source.measures]
        if metric.sql not in measures:
            kind = "a metric" if source.metric(metric.sql) else "not a measure"
            yield Issue(where, f"{what}: '{metric.sql}' is {kind} of source '{source.name}'; "
                        f"{metric.time.kind} takes a measure{did_you_mean(metric.sql, measures)}"
                        f" (defined: {', '.join(measures) or 'none'})", "unknown-measure")
        if source.time_column is None:
            yield Issue(metric.time.location, f"{what}: source '{source.name}' has no time "
                        f"column for {metric.time.kind} to move along", "no-time-column")
        return
    try:
        expression = metric_expression(metric)
    except (ParseError, TokenError) as exc:
        errors = getattr(exc, "errors", None)
        first = errors[0]["description"] if errors else str(exc)
        yield Issue(where, f"{what}: cannot parse {metric.sql!r}: {first}", "invalid-sql")
        return
    names = [m.name for m in source.measures] + [m.name for m in source.metrics]
    for node in expression.walk():
        if isinstance(node, exp.Column):
            if node.table or node.name not in names:
                yield Issue(where, f"{what}: '{node.sql()}' is not a measure or metric of source "
                            f"'{source.name}'{did_you_mean(node.name, names)}", "unknown-measure")
        elif isinstance(node, exp.Func) and (node.sql_name().lower() in METRIC_FUNCTIONS or (
                isinstance(node, exp.Anonymous) and str(node.this).lower() in METRIC_FUNCTIONS)):
            continue
        elif not isinstance(node, METRIC_NODES):
            yield Issue(where, f"{what}: {node.sql(dialect='clickhouse')!r} is not allowed in a "
                        "metric; use measures, metrics, numbers, + - * / % and "
                        f"{', '.join(METRIC_FUNCTIONS)}", "invalid-metric")
            return


def _metric_cycles(source: Source) -> Iterator[Issue]:
    graph: dict[str, list[str]] = {}
    for metric in source.metrics:
        try:
            graph[metric.name] = [c.name for c in metric_expression(metric).find_all(exp.Column)]
        except (ParseError, TokenError):
            graph[metric.name] = []
    for metric in source.metrics:
        path = _cycle_from(metric.name, graph, [])
        if path:
            yield Issue(metric.expression_location or metric.location,
                        f"metric '{metric.name}' depends on itself: {' -> '.join(path)}",
                        "metric-cycle")


def _cycle_from(name: str, graph: Mapping[str, list[str]], path: list[str]) -> list[str]:
    if path and name == path[0]:
        return [*path, name]
    if name in path or name not in graph:
        return []
    for child in graph[name]:
        found = _cycle_from(child, graph, [*path, name])
        if found:
            return found
    return []


def _member_issues(source: Source, member: Dimension | Measure, kind: str,
                   columns: Mapping[str, str] | None,
                   joined: JoinedCheck | None = None) -> Iterator[Issue]:
    where = member.expression_location or member.location
    what = f"{kind} '{member.name}'"
    if member.sql is not None:
        yield from _expression_issues(member.sql, where, what, columns, joined)
    elif member.column is not None and "." in member.column:
        *path, attribute = member.column.split(".")
        problem = joined(tuple(path), attribute) if joined is not None else (
            f"a dimension cannot be a joined column; ask for '{member.column}' itself, which "
            "every query, filter and rollup can name")
        if problem:
            yield Issue(where, f"{what}: {problem}", "unknown-column")
    elif member.column is not None and columns is not None and member.column not in columns:
        hint = did_you_mean(member.column, columns)
        yield Issue(where, f"{what}: column '{member.column}' does not exist in "
                    f"{source.table}{hint}", "unknown-column")


TIME_TYPES = ("Date", "Date32", "DateTime", "DateTime64")


def check_expressions(model: Model,
                      columns: Mapping[str, Mapping[str, str] | None]) -> list[Issue]:
    """Check every model expression: it parses, and (where a source's columns are known)
    it only names columns the source has. ``columns`` maps source name -> column -> type.
    """
    issues: list[Issue] = []
    for source in model.sources:
        source_columns = columns.get(source.name)
        joined = _joined_check(source, join_paths(model, source), columns)
        issues.extend(_key_issues(model, source, columns))
        for dimension in source.dimensions:
            issues.extend(_member_issues(source, dimension, "dimension", source_columns))
        for measure in source.measures:
            issues.extend(_member_issues(source, measure, "measure", source_columns, joined))
            if measure.filter is not None:
                issues.extend(_expression_issues(
                    measure.filter, measure.filter_location or measure.location,
                    f"measure '{measure.name}' filter", source_columns, joined))
        for metric in source.metrics:
            issues.extend(_metric_issues(source, metric))
        issues.extend(_metric_cycles(source))
        if source.time_column and source_columns is not None:
            location = source.time_location or source.location
            time_type = source_columns.get(source.time_column)
            if time_type is None:
                hint = did_you_mean(source.time_column, source_columns)
                issues.append(Issue(location, f"time column '{source.time_column}' does not "
                                    f"exist in {source.table}{hint}", "unknown-column"))
            elif not _strip_nullable(time_type).startswith(TIME_TYPES):
                issues.append(Issue(location, f"time column '{source.time_column}' has type "
                                    f"{time_type}; it must be a Date or DateTime", "invalid-time"))
    return issues


def _joined_check(source: Source, paths: Mapping[tuple[str, ...], JoinPath],
                  columns: Mapping[str, Mapping[str, str] | None]) -> JoinedCheck:
    def check(path: tuple[str, ...], attribute: str) -> str | None:
        if path not in paths:
            names = [".".join(p) for p in paths]
            written = ".".join(path)
            return (f"'{written}' is not a join of source '{source.name}'"
                    f"{did_you_mean(written, names)}"
                    + (f" (joins: {', '.join(names)})" if names else " (it has no joins)"))
        target = paths[path].target
        known = columns.get(target.name)
        if target.dimension(attribute) is None and known is not None and attribute not in known:
            return (f"'{attribute}' is neither a dimension of source '{target.name}' nor a "
                    f"column of {target.table}{did_you_mean(attribute, [*known])}")
        return None
    return check


def _key_issues(model: Model, source: Source,
                columns: Mapping[str, Mapping[str, str] | None]) -> Iterator[Issue]:
    """Key columns exist on both sides of each join, with types that compare."""
    own = columns.get(source.name)
    where = source.primary_key_location or source.location
    for column in source.primary_key:
        if own is not None and column not in own:
            yield Issue(where, f"primary_key column '{column}' does not exist in "
                        f"{source.table}{did_you_mean(column, [*own])}", "unknown-column")
    for join in source.joins:
        target = model.source(join.source.name)
        theirs = columns.get(target.name) if target is not None else None
        where = join.keys_location or join.location
        for left, right in join.keys:
            if own is not None and left not in own:
                yield Issue(where, f"join '{join.name}': column '{left}' does not exist in "
                            f"{source.table}{did_you_mean(left, [*own])}", "unknown-column")
            elif theirs is not None and target is not None and right not in theirs:
                yield Issue(where, f"join '{join.name}': column '{right}' does not exist in "
                            f"{target.table}{did_you_mean(right, [*theirs])}",
                            "unknown-column")
            elif own is not None and theirs is not None and \
                    value_kind(own[left]) != value_kind(theirs[right]):
                yield Issue(where, f"join '{join.name}': key {left} ({own[left]}) cannot match "
                            f"{join.source.name}.{right} ({theirs[right]}); the key columns "
                            "need types of one kind (both strings, both integers, ...)",
                            "key-type-mismatch")


def _strip_nullable(type_name: str) -> str:
    """``LowCardinality(Nullable(DateTime))`` -> ``DateTime``, in any nesting order."""
    while type_name.startswith(("Nullable(", "LowCardinality(")):
        type_name = type_name[type_name.index("(") + 1:-1]
    return type_name
