"""Answers for ClickHouse to format (CSV, Parquet, Arrow): the serving statement of a plan,
wrapped so that its columns are exactly the JSON answer's, under the same names, in the same
order, with the same values (a comparison's changes, which the JSON answer computes from the
statement's rows, are computed here by ClickHouse: ``engine.serving.changes``).

The serving statement names its columns with aliases that may differ from the members' names
(an alias never shadows a column of the table read), reads one row past the limit (to tell
the caller the answer was truncated) and returns minute and hour buckets as epoch seconds
(shown in the query's zone by the caller). The wrapper renames, cuts at the limit and turns
those seconds into instants of the query's zone. Rows keep the inner statement's order: the
outer SELECT only projects and limits one sorted stream.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlglot import exp

from engine.dialect.functions import call
from engine.dialect.types import base_type
from engine.model.compiled import CompiledSource
from engine.query.normalize import COMPARE_SUFFIXES
from engine.serving.changes import change_sql
from engine.serving.plan import Plan

#: the derived table the wrapper reads
_INNER = "answer"


def _value(value: object) -> exp.Expr:
    if isinstance(value, bool):
        return exp.Literal.number(int(value))
    if isinstance(value, int | float):
        return exp.Literal.number(value)
    return exp.Literal.string(str(value))


def _may_be_nan(source: CompiledSource, member: str) -> bool:
    """Whether a measure or metric can be NaN (counts never are, nor their compared values
    and changes)."""
    for suffix in COMPARE_SUFFIXES:
        member = member.removesuffix(suffix)
    measure = source.measures.get(member)
    return measure is None or not measure.aggregation.name.startswith("count")


def with_settings(statement: exp.Select, settings: Mapping[str, object]) -> exp.Select:
    """``statement`` with a ``SETTINGS`` clause (a copy): the settings then travel with the
    SQL, for clients that take no per-query settings (the embedded engine streams a result
    only without them).

    >>> with_settings(exp.select("1"), {"max_threads": 1}).sql(dialect="clickhouse")
    'SELECT 1 SETTINGS max_threads = 1'
    """
    statement = statement.copy()
    if settings:
        statement.set("settings", [exp.EQ(this=exp.var(name), expression=_value(value))
                                   for name, value in settings.items()])
    return statement


def answer_statement(plan: Plan, source: CompiledSource,
                     fields: Sequence[tuple[str, str]] | None = None) -> exp.Select:
    """The rows of ``plan``'s answer as the JSON answer has them: ``fields`` are (output
    name, member) pairs (default: every column of the plan under its member's name).

    Minute and hour buckets become ``DateTime64(0, zone)`` in the query's zone (shown so in
    CSV, a zoned timestamp in Arrow); other ``DateTime`` dimensions become ``DateTime64(0)``,
    which Arrow writes as a timestamp rather than as integer seconds. A measure that is NaN
    (``avg`` over no rows) is null, as in JSON; counts are left as they are.
    """
    selected = plan.statement.expressions
    later = {change.column: change for change in plan.changes}
    statement_columns = [c for c in plan.columns if c not in later]
    assert len(selected) == len(statement_columns), (plan.columns, plan.sql)
    inner = {member: expression.alias_or_name
             for member, expression in zip(statement_columns, selected, strict=True)}
    zone = plan.query.timezone or "UTC"
    dimensions = set(plan.query.dimensions)
    columns: list[exp.Expr] = []
    for name, member in fields if fields is not None else [(c, c) for c in plan.columns]:
        change = later.get(member)
        value: exp.Expr = exp.column(inner[member], table=_INNER) if change is None else \
            change_sql(change, exp.column(inner[change.of], table=_INNER),
                       exp.column(inner[change.before], table=_INNER))
        if member == plan.instant_column:
            value = call("toDateTime64", value, exp.Literal.number(0), exp.Literal.string(zone))
        elif member in dimensions:
            dimension = source.dimensions.get(member)
            kind = base_type(dimension.type) if dimension is not None else ""
            if kind == "DateTime" or kind.startswith("DateTime("):
                value = call("toDateTime64", value, exp.Literal.number(0))
        elif _may_be_nan(source, member):  # NaN is the one value not equal to itself
            value = exp.If(this=exp.NEQ(this=value, expression=value.copy()),
                           true=exp.Null(), false=value.copy())
        columns.append(exp.alias_(value, name, quoted=True))
    assert plan.query.limit is not None
    derived = exp.Subquery(this=plan.statement.copy(),
                           alias=exp.TableAlias(this=exp.to_identifier(_INNER)))
    return exp.select(*columns).from_(derived).limit(plan.query.limit)
