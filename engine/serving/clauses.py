"""Pieces of serving statements every builder shares: output aliases, instants as
ClickHouse reads them, AND/OR chains, safe division, and WHERE/GROUP BY/HAVING set once."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from datetime import UTC, datetime

from sqlglot import exp

from engine.dialect.functions import call
from engine.query.request import Filter, FilterNode


def alias_for(name: str, expression: exp.Expr | None, table_columns: set[str],
           used: set[str]) -> str:
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


def instant_text(t: datetime) -> str:
    # isoformat, not strftime: %Y writes year 1 as "1", which ClickHouse cannot read
    return t.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def connect(conditions: list[exp.Expr], connector: type[exp.Connector]) -> exp.Expr:
    """``a AND b AND c`` as one left-deep chain over the nodes as they are: no copies and no
    parentheses around each step (``exp.and_`` and repeated ``Select.where`` add both, which
    made building quadratic and rendering recurse once per condition). Operands are leaves or
    parenthesized groups, so precedence holds; the generator walks such chains iteratively.
    """
    combined = conditions[0]
    for condition in conditions[1:]:
        combined = connector(this=combined, expression=condition)
    return combined


def safe_divisions(expression: exp.Expr) -> exp.Expr:
    """``a / b`` -> ``a / nullIf(b, 0)`` (and ``%`` alike): a metric divided by zero is null,
    not inf, nan or an error."""
    def rewrite(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Div | exp.Mod):
            return type(node)(this=node.this,
                              expression=call("nullIf", node.expression, exp.Literal.number(0)))
        return node
    return expression.transform(rewrite)


def over_members(expression: exp.Expr, member: Callable[[str], exp.Expr]) -> exp.Expr:
    """A metric's expression with each measure or metric it names replaced by ``member(name)``
    (parenthesized), its divisions safe."""
    def substitute(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column):
            return exp.Paren(this=member(node.name))
        return node
    return safe_divisions(expression.copy()).transform(substitute)


def filtered(select: exp.Select, where: Sequence[exp.Expr], groups: Sequence[exp.Expr],
              having: Sequence[exp.Expr]) -> exp.Select:
    """``select`` with its WHERE, GROUP BY and HAVING, each set once, in place."""
    if where:
        select.set("where", exp.Where(this=connect(list(where), exp.And)))
    if groups:
        select = select.group_by(*groups, copy=False)
    if having:
        select.set("having", exp.Having(this=connect(list(having), exp.And)))
    return select


def ordered(alias: str, descending: bool, nulls_first: bool | None) -> exp.Ordered:
    """``alias [DESC] [NULLS FIRST|LAST]``; without a choice ClickHouse's default (NULLs last,
    either direction) is left to it."""
    found = exp.Ordered(this=exp.column(alias), desc=descending)
    if nulls_first is not None:
        found.set("nulls_first", nulls_first)
    return found


def filter_value(item: Filter) -> object:
    """The one parameter a condition binds (an array for a list), unless it takes none."""
    return list(item.values) if item.op in ("in", "not_in") else item.values[0]


def filter_values(node: FilterNode, into: list[object]) -> None:
    """The parameters of a filter tree, in the order ``SqlBuilder._tree`` binds them."""
    if isinstance(node, Filter):
        if node.op not in ("is_null", "is_not_null"):
            into.append(filter_value(node))
        return
    for item in node.items:
        filter_values(item, into)


def filter_shape(node: FilterNode) -> Hashable:
    """A filter without its values, which are bound as parameters (one array for a list)."""
    if isinstance(node, Filter):
        return "filter", node.member, node.op
    return "group", node.op, tuple(filter_shape(item) for item in node.items)
