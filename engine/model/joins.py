"""Joined sources in SQL: ``LEFT ANY JOIN`` of each dimension table a statement reads, and the
model expressions that name joined columns (``plane.seats``) rewritten to read them.

Each join is a subquery over the joined source's table that exposes only what the statement
needs, under names no column of the joining table can have: ``path.attribute`` for a joined
dimension or column and ``path#column`` for key columns. Every exposed value is made Nullable,
so a row without a match gets NULL (SQL's LEFT JOIN), not ClickHouse's default of an empty
string or 0, and a deeper hop from an unmatched row matches nothing. ``ANY`` takes one row per
key: a dimension table whose key is duplicated (refused by ``apply`` and ``verify``) still
never multiplies a measure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from sqlglot import exp

from engine.dialect.functions import call
from engine.model.expressions import joined_references, member_expression
from semantic.joins import JoinPath

#: paths -> the attributes (dimensions or columns of the joined source) a statement reads
Needs = dict[tuple[str, ...], set[str]]


def attribute_name(path: tuple[str, ...], attribute: str) -> str:
    return ".".join((*path, attribute))


def joined_column(name: str) -> exp.Column:
    """A column exposed by a join (``airline.name``), as one quoted identifier."""
    return exp.Column(this=exp.to_identifier(name, quoted=True))


def _key_name(path: tuple[str, ...], column: str) -> str:
    return f"{'.'.join(path)}#{column}"


def rewrite_joined(expression: exp.Expression,
                   resolve: Callable[[tuple[str, ...], str], bool]) -> tuple[exp.Expression,
                                                                            Needs]:
    """The expression with each joined column as the join exposes it, and the joins it reads.
    ``resolve(path, attribute)`` says whether the path and attribute exist (checked before)."""
    needs: Needs = {}
    rewritten = expression.copy()
    for node, path, attribute in joined_references(rewritten):
        if resolve(path, attribute):
            needs.setdefault(path, set()).add(attribute)
            replacement = joined_column(attribute_name(path, attribute))
            if node is rewritten:
                rewritten = replacement
            else:
                node.replace(replacement)
    return rewritten, needs


def attribute_expression(path: JoinPath, attribute: str) -> exp.Expression:
    """What a joined attribute is over its source's table: a dimension's expression, else the
    column of that name."""
    dimension = path.target.dimension(attribute)
    expression = member_expression(dimension) if dimension is not None else None
    return expression if expression is not None else exp.column(attribute)


def merge_needs(*needs: Mapping[tuple[str, ...], Iterable[str]]) -> Needs:
    merged: Needs = {}
    for need in needs:
        for path, attributes in need.items():
            merged.setdefault(path, set()).update(attributes)
    return merged


def join_clauses(paths: Mapping[tuple[str, ...], JoinPath], needs: Mapping[tuple[str, ...],
                                                                          Iterable[str]],
                 left: Callable[[str], exp.Expr],
                 plain: frozenset[str] = frozenset()) -> list[exp.Join]:
    """``LEFT ANY JOIN`` clauses for the needed paths and every path they go through, parents
    first. ``left(column)`` is how the joining relation has one of the root source's columns
    (the column itself, or a rollup's stored key). ``plain`` names exposed attributes of types
    that cannot be Nullable (arrays, maps): they are exposed as they are."""
    wanted: Needs = {}
    for path, attributes in needs.items():
        wanted.setdefault(path, set()).update(attributes)
        for depth in range(1, len(path)):
            wanted.setdefault(path[:depth], set())
    keys_of_children: dict[tuple[str, ...], set[str]] = {}
    for path in wanted:
        if len(path) > 1:
            join = paths[path].joins[-1]
            keys_of_children.setdefault(path[:-1], set()).update(c for c, _ in join.keys)
    clauses: list[exp.Join] = []
    for path in sorted(wanted, key=lambda p: (len(p), p)):
        join_path = paths[path]
        join = join_path.joins[-1]
        exposed: dict[str, exp.Expression] = {}
        # the key matched here is read only by the ON clause: as it is (a Nullable key would
        # cost the hash table); keys the next joins match by must be NULL where this one
        # matched nothing, like every attribute
        as_is = set(plain)
        for _, right in join.keys:
            exposed[_key_name(path, right)] = exp.column(right)
            as_is.add(_key_name(path, right))
        for column in sorted(keys_of_children.get(path, ())):
            exposed[_key_name(path, column)] = exp.column(column)
            as_is.discard(_key_name(path, column))
        for attribute in sorted(wanted[path]):
            exposed[attribute_name(path, attribute)] = attribute_expression(join_path, attribute)
        inner = exp.select(*(exp.alias_(expression if name in as_is else
                                        call("toNullable", expression), name, quoted=True)
                             for name, expression in exposed.items())).from_(
            exp.to_table(join_path.target.table))
        conditions: list[exp.Expr] = []
        for own, right in join.keys:
            near = left(own) if len(path) == 1 else joined_column(_key_name(path[:-1], own))
            conditions.append(exp.EQ(this=near, expression=joined_column(_key_name(path,
                                                                                   right))))
        on = conditions[0]
        for condition in conditions[1:]:
            on = exp.And(this=on, expression=condition)
        alias = exp.TableAlias(this=exp.to_identifier(f"_j{len(clauses)}"))
        clauses.append(exp.Join(this=exp.Subquery(this=inner, alias=alias), side="LEFT",
                                kind="ANY", on=on))
    return clauses


def with_joins(select: exp.Select, clauses: list[exp.Join]) -> exp.Select:
    """``select`` with the join clauses after its FROM, in place."""
    if clauses:
        select.set("joins", [*(select.args.get("joins") or []), *clauses])
    return select


def duplicate_keys(table: str, columns: tuple[str, ...], limit: int = 5) -> exp.Select:
    """Keys held by more than one row of ``table``: ``(key columns..., rows)``, the most
    repeated first, then the number of such keys (the same on every row)."""
    keys = [exp.column(c) for c in columns]
    # a NULL key matches no row, so NULLs may repeat
    not_null = [call("isNotNull", k.copy()) for k in keys]
    repeated = exp.select(*keys, exp.alias_(call("count"), "_rows")).from_(
        exp.to_table(table)).where(exp.and_(*not_null)).group_by(
        *(k.copy() for k in keys)).having(
        exp.GT(this=exp.column("_rows"), expression=exp.Literal.number(1)))
    total = exp.Window(this=call("count"), partition_by=[])
    return exp.select(*(k.copy() for k in keys), exp.column("_rows"),
                      exp.alias_(total, "_keys")).from_(repeated.subquery("_repeated")).order_by(
        exp.Ordered(this=exp.column("_rows"), desc=True)).limit(exp.Literal.number(limit))


def join_probe(table: str, paths: Mapping[tuple[str, ...], JoinPath],
               path: tuple[str, ...]) -> exp.Select:
    """A query joining ``path`` (and the joins before it) that returns no rows: ClickHouse
    plans the join conditions, so keys it cannot compare (no common type) are found before any
    query needs them (``DESCRIBE`` does not plan the join)."""
    select = with_joins(exp.select(exp.Literal.number(1)).from_(exp.to_table(table)),
                        join_clauses(paths, {path: set()}, exp.column))
    return select.limit(exp.Literal.number(0))
