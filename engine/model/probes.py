"""Probes that make ClickHouse evaluate every model expression on a sample of the source.

``DESCRIBE`` only types a query; a value ClickHouse cannot convert (``toUInt32(user_id)`` over
string ids) fails only when rows are read, i.e. on the first real query. These probes read a
small sample (the first block of ``SAMPLE_ROWS`` rows) and evaluate each dimension, measure
argument, measure filter, aggregate and metric on it, so a rejection is located at the line and
column where the expression is written. One combined probe per source runs first; only when it
fails are the per-expression probes run, to find which one ClickHouse rejects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from sqlglot import exp

from engine.dialect.aggregations import COMPONENTS, aggregation_for
from engine.dialect.functions import call
from engine.model.expressions import (
    canonical_sql,
    filter_expression,
    member_expression,
    metric_expression,
)
from engine.model.joins import Needs, join_clauses, merge_needs, rewrite_joined, with_joins
from semantic.joins import JoinPath
from semantic.location import Location
from semantic.model import Measure, Source

Paths = Mapping[tuple[str, ...], JoinPath]
#: rows the probes read; one block, enough to meet most values an expression rejects
SAMPLE_ROWS = 1000


@dataclass(frozen=True, slots=True)
class ExpressionProbe:
    """One expression of the model evaluated on the sample, and where it is written."""

    member: str
    location: Location
    what: str
    sql: str
    statement: exp.Select


class _Sample:
    """The row-level expressions the probes read, computed once in a ``LIMIT`` subquery."""

    def __init__(self, table: str, paths: Paths | None = None) -> None:
        self.table = table
        self.paths = paths or {}
        self.needs: Needs = {}
        self.columns: dict[str, tuple[str, exp.Expression]] = {}

    def ref(self, expression: exp.Expression) -> exp.Column:
        key = canonical_sql(expression)
        if key not in self.columns:
            if self.paths:  # joined columns of measures, read through their joins
                expression, needs = rewrite_joined(expression, lambda p, _: p in self.paths)
                self.needs = merge_needs(self.needs, needs)
            self.columns[key] = (f"_e{len(self.columns)}", expression)
        return exp.column(self.columns[key][0])

    def select(self, outputs: list[exp.Expr]) -> exp.Select:
        inner = [exp.alias_(e.copy(), alias) for alias, e in self.columns.values()]
        sample = with_joins(exp.select(*(inner or [exp.alias_(exp.Literal.number(1), "_e")]))
                            .from_(exp.to_table(self.table)),
                            join_clauses(self.paths, self.needs, exp.column)).limit(SAMPLE_ROWS)
        return exp.select(*[exp.alias_(o, f"_o{i}") for i, o in enumerate(outputs)]).from_(
            sample.subquery("sample"))


def _measure_value(measure: Measure, sample: _Sample) -> exp.Expr:
    """The measure computed in one pass over the sample (as a raw-table query computes it)."""
    argument = member_expression(measure)
    condition = filter_expression(measure)
    params = (measure.level,) if measure.level is not None else ()
    aggregation = aggregation_for(measure.agg, measure.method)
    parts = [COMPONENTS[kind].raw(sample.ref(argument) if argument is not None else None,
                                  sample.ref(condition) if condition is not None else None,
                                  params)
             for kind in aggregation.components]
    return aggregation.finish(parts)


def _metric_value(source: Source, name: str, sample: _Sample,
                  seen: tuple[str, ...] = ()) -> exp.Expr:
    """A metric with every measure (and metric) it names replaced by its value."""
    metric = source.metric(name)
    assert metric is not None and name not in seen, "cycles are rejected before probing"

    def substitute(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column):
            measure = source.measure(node.name)
            if measure is not None:
                return exp.Paren(this=_measure_value(measure, sample))
            if source.metric(node.name) is not None:
                return exp.Paren(this=_metric_value(source, node.name, sample, (*seen, name)))
        return node

    return metric_expression(metric).transform(substitute)


Build = Callable[[_Sample], list[exp.Expr]]


def _value_of(expression: exp.Expression, aggregate: str = "any") -> Build:
    def build(sample: _Sample) -> list[exp.Expr]:
        return [call(aggregate, sample.ref(expression))]
    return build


def _measure_of(measure: Measure) -> Build:
    def build(sample: _Sample) -> list[exp.Expr]:
        return [_measure_value(measure, sample)]
    return build


def _metric_of(source: Source, name: str) -> Build:
    def build(sample: _Sample) -> list[exp.Expr]:
        return [_metric_value(source, name, sample)]
    return build


def _items(source: Source) -> Iterator[tuple[str, Location, str, str, Build]]:
    """(member, location, what, SQL as written, outputs builder) of every expression to
    evaluate, a member's row-level expressions before its aggregate."""
    for dimension in source.dimensions:
        expression = member_expression(dimension)
        assert expression is not None
        member = f"dimension '{dimension.name}'"
        yield (member, dimension.expression_location or dimension.location, member,
               dimension.sql or dimension.column or "", _value_of(expression))
    for measure in source.measures:
        where = measure.expression_location or measure.location
        member = f"measure '{measure.name}'"
        argument = member_expression(measure)
        condition = filter_expression(measure)
        if argument is not None:
            yield (member, where, member, measure.sql or measure.column or "",
                   _value_of(argument))
        if condition is not None:
            yield (member, measure.filter_location or measure.location,
                   f"measure '{measure.name}' filter", measure.filter or "",
                   _value_of(condition, "countIf"))
        yield (member, where, f"measure '{measure.name}' ({measure.agg})",
               measure.sql or measure.column or measure.agg, _measure_of(measure))
    for metric in source.metrics:
        member = f"metric '{metric.name}'"
        yield (member, metric.expression_location or metric.location, member, metric.sql,
               _metric_of(source, metric.name))


def combined_probe(source: Source, paths: Paths | None = None) -> exp.Select:
    """Every expression of the source evaluated on the sample, in one query.

    >>> from semantic import load_model_text
    >>> m = load_model_text('''
    ... sources:
    ...   e:
    ...     table: a.e
    ...     dimensions: {r: {}}
    ...     measures: {s: {agg: sum, column: v, filter: "v > 0"}}
    ... ''')
    >>> combined_probe(m.sources[0]).sql(dialect="clickhouse")
    'SELECT any(_e0) AS _o0, any(_e1) AS _o1, countIf(_e2) AS _o2, sumIf(_e1, _e2) AS _o3 \
FROM (SELECT r AS _e0, v AS _e1, v > 0 AS _e2 FROM a.e LIMIT 1000) AS sample'
    """
    sample = _Sample(source.table, paths)
    outputs: list[exp.Expr] = [o for *_, build in _items(source) for o in build(sample)]
    return sample.select(outputs or [exp.Literal.number(1)])


def expression_probes(source: Source,
                      paths: Paths | None = None) -> tuple[ExpressionProbe, ...]:
    """One probe per expression, in the order they are written, to locate a rejection."""
    probes = []
    for member, location, what, sql, build in _items(source):
        sample = _Sample(source.table, paths)
        probes.append(ExpressionProbe(member, location, what, sql, sample.select(build(sample))))
    return tuple(probes)
