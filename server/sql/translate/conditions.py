"""``WHERE`` and ``HAVING``: conditions as the filters of ``/v1/query`` (``NOT`` pushed down to
the leaves) and the range of the time column (conditions on it ANDed at the top)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from server.sql.errors import GROUPING_ERROR, UNSUPPORTED, SqlError
from server.sql.schema import MEASURE, METRIC, Column
from server.sql.translate.builder import After, Builder, Param, Spread, parameter_index
from server.sql.translate.items import aggregate_measure
from server.sql.types import (
    array_of,
)

_NEGATED = {"like": "not_like", "not_like": "like",
            "eq": "ne", "ne": "eq", "in": "not_in", "not_in": "in", "gt": "lte",
            "lte": "gt", "lt": "gte", "gte": "lt", "is_null": "is_not_null",
            "is_not_null": "is_null", "ilike": "not_ilike", "not_ilike": "ilike"}
_COMPARISONS: dict[type[exp.Expression], str] = {
    exp.EQ: "eq", exp.NEQ: "ne", exp.GT: "gt", exp.GTE: "gte", exp.LT: "lt", exp.LTE: "lte"}
_FLIPPED = {"eq": "eq", "ne": "ne", "gt": "lt", "lt": "gt", "gte": "lte", "lte": "gte"}


# -- WHERE and HAVING ---------------------------------------------------------------------

@dataclass(slots=True)
class _Range:
    start: object = None
    end: object = None


def _time_bound(builder: Builder, column: Column, op: str, value: object,
                bounds: _Range) -> None:
    step = column.step
    if op in ("gte", "gt"):
        if bounds.start is not None:
            raise SqlError(UNSUPPORTED, f"{column.name} has two lower bounds; keep one")
        bounds.start = value if op == "gte" else After(value, step)
    elif op in ("lt", "lte"):
        if bounds.end is not None:
            raise SqlError(UNSUPPORTED, f"{column.name} has two upper bounds; keep one")
        bounds.end = value if op == "lt" else After(value, step)
    else:
        raise SqlError(UNSUPPORTED, f"the time column {column.name} is filtered by a range: "
                       f"{column.name} >= '2026-03-01' AND {column.name} < '2026-03-08' (or "
                       "BETWEEN)")


def _leaf(builder: Builder, node: exp.Expression, measures: bool,
          negate: bool = False) -> dict[str, Any]:
    """One condition as a filter of ``/v1/query`` (on dimensions, or on measures in HAVING)."""
    shown = node.sql("postgres")[:200]
    if isinstance(node, exp.Not):
        return condition_filter(builder, node.this, measures, not negate)
    if isinstance(node, exp.Paren):
        return condition_filter(builder, node.this, measures, negate)
    if isinstance(node, exp.Between) and node.args.get("symmetric"):
        raise SqlError(UNSUPPORTED, "BETWEEN SYMMETRIC cannot be answered; write the bounds in "
                       "order")
    if isinstance(node, exp.In | exp.Between | exp.Like | exp.ILike | exp.Is) and \
            node.args.get("negate"):  # x NOT IN (...), NOT BETWEEN, NOT LIKE, IS NOT NULL
        plain = node.copy()
        plain.set("negate", None)
        return _leaf(builder, plain, measures, not negate)
    op: str
    values: list[object]
    quantifier = _quantifier(node.expression) if isinstance(node, exp.EQ | exp.NEQ) else None
    if quantifier is not None:
        # x = ANY(ARRAY[...]) / x = ANY($1): IN; x <> ALL(...): NOT IN
        member = _member(builder, node.this, measures)
        kind, listed = quantifier
        while isinstance(listed, exp.Paren | exp.Cast):
            listed = listed.this
        if (kind == "any") != isinstance(node, exp.EQ):
            raise SqlError(UNSUPPORTED, f"{shown}: write = ANY(...) or <> ALL(...)")
        op = "in" if isinstance(node, exp.EQ) else "not_in"
        if isinstance(listed, exp.Array):
            values = [builder.value(v, member) for v in listed.expressions]
        elif isinstance(listed, exp.Placeholder | exp.Parameter):
            index = parameter_index(listed)
            builder.parameters.setdefault(index, array_of(member.type))
            values = [Spread(index)]
        else:
            raise SqlError(UNSUPPORTED, f"{shown}: ANY takes an ARRAY[...] or a parameter")
    elif type(node) in _COMPARISONS:
        left, right = node.this, node.expression
        op = _COMPARISONS[type(node)]
        if not _is_member(left) and _is_member(right):
            left, right, op = right, left, _FLIPPED[op]
        member = _member(builder, left, measures)
        values = [builder.value(right, member)]
    elif isinstance(node, exp.In):
        member = _member(builder, node.this, measures)
        if node.args.get("query") is not None:
            raise SqlError(UNSUPPORTED, "IN (SELECT ...) cannot be answered; list the values")
        items = [v for v in node.expressions if not isinstance(v, exp.Null)]
        if len(items) < len(node.expressions) and negate:
            raise SqlError(UNSUPPORTED, f"{shown}: NOT IN a list holding NULL is never true; "
                           "leave NULL out (and add IS NOT NULL if meant)")
        if not items:
            raise SqlError(UNSUPPORTED, f"{shown}: IN (NULL) is never true")
        values = [builder.value(v, member) for v in items]
        op = "in"
    elif isinstance(node, exp.Is):
        member = _member(builder, node.this, measures)
        if not isinstance(node.expression, exp.Null):
            raise SqlError(UNSUPPORTED, f"{shown}: IS compares with NULL only")
        op, values = "is_null", []
    elif isinstance(node, exp.Between):
        member = _member(builder, node.this, measures)
        low = {"member": member.name, "op": "gte",
               "values": [builder.value(node.args["low"], member)]}
        high = {"member": member.name, "op": "lte",
                "values": [builder.value(node.args["high"], member)]}
        if negate:
            return {"or": [negated(low), negated(high)]}
        return {"and": [low, high]}
    elif isinstance(node, exp.ILike | exp.Like):
        member = _member(builder, node.this, measures)
        pattern = builder.value(node.expression, member)
        if isinstance(node, exp.ILike):
            op, values = "ilike", [pattern]
        elif isinstance(pattern, Param):
            op, values = LIKE, [pattern]  # read when the pattern is bound
        else:
            op, values = like_filter(member.name, pattern)
    else:
        raise SqlError(UNSUPPORTED, f"the condition {shown} cannot be answered; conditions "
                       "compare a column with values (=, <>, <, >, IN, BETWEEN, LIKE, ILIKE, "
                       "IS NULL) joined by AND, OR and NOT")
    leaf: dict[str, Any] = {"member": member.name, "op": op}
    if values:
        leaf["values"] = values
    return negated(leaf) if negate else leaf


#: a LIKE (NOT LIKE) whose pattern is a parameter, until it is bound
LIKE, NOT_LIKE = "like", "not_like"


def _quantifier(node: exp.Expression) -> tuple[str, exp.Expression] | None:
    """``ANY(list)`` / ``ALL(list)``: which, and the list (sqlglot reads ``ALL(...)`` as a
    function call)."""
    if isinstance(node, exp.Any | exp.All):
        return ("any" if isinstance(node, exp.Any) else "all"), node.this
    if isinstance(node, exp.Anonymous) and str(node.this).upper() in ("ANY", "ALL") and \
            len(node.expressions) == 1:
        return str(node.this).lower(), node.expressions[0]
    return None


def like_filter(member: str, pattern: object) -> tuple[str, list[object]]:
    """LIKE as the operators of ``/v1/query``: a pattern without wildcards is equality,
    ``abc%`` a prefix, ``%abc%`` a substring; other patterns are case-sensitive forms the
    query API has no operator for."""
    if isinstance(pattern, str) and "\\" not in pattern and "_" not in pattern:
        inner = pattern.strip("%")
        if "%" not in inner:
            if pattern == inner:
                return "eq", [pattern]
            if pattern == inner + "%":
                return "starts_with", [inner]
            if pattern == f"%{inner}%":
                return "contains", [inner]
    raise SqlError(UNSUPPORTED, f"LIKE {pattern!r} on {member}: LIKE supports 'text', "
                   "'prefix%' and '%part%' patterns; use ILIKE for other patterns (it "
                   "ignores case)")


def negated(leaf: dict[str, Any]) -> dict[str, Any]:
    if "or" in leaf or "and" in leaf:
        (kind, items), = leaf.items()
        return {"and" if kind == "or" else "or": [negated(item) for item in items]}
    op = _NEGATED.get(leaf["op"])
    if op is None:
        raise SqlError(UNSUPPORTED, f"NOT of a {leaf['op'].replace('_', ' ')} condition on "
                       f"{leaf['member']} cannot be answered; use NOT ILIKE")
    return {**leaf, "op": op}


def condition_filter(builder: Builder, node: exp.Expression, measures: bool,
          negate: bool = False) -> dict[str, Any]:
    if isinstance(node, exp.And | exp.Or):
        kind = "and" if isinstance(node, exp.And) else "or"
        if negate:
            kind = "or" if kind == "and" else "and"
        items = [condition_filter(builder, part, measures, negate)
                 for part in _flatten(node, type(node))]
        return {kind: items}
    return _leaf(builder, node, measures, negate)


def _flatten(node: exp.Expression, kind: type[exp.Expression]) -> list[exp.Expression]:
    parts: list[exp.Expression] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, kind):
            stack += [current.expression, current.this]
        elif isinstance(current, exp.Paren) and isinstance(current.this, kind):
            stack.append(current.this)
        else:
            parts.append(current)
    return parts


def _is_member(node: exp.Expression) -> bool:
    return isinstance(node, exp.Column | exp.Func) and not isinstance(
        node, exp.Cast | exp.StrToTime | exp.StrToDate | exp.TsOrDsToDate)


def _member(builder: Builder, node: exp.Expression, measures: bool) -> Column:
    """The dimension (WHERE) or measure (HAVING) a condition is on."""
    if measures:
        if isinstance(node, exp.Column):
            column = builder.table.column(node.name)
            if column is None and node.name in builder.aliases:
                column = builder.table.column(builder.aliases[node.name])
        else:
            name, _ = aggregate_measure(builder, node)
            column = builder.table.column(name)
        if column is None or column.kind not in (MEASURE, METRIC):
            raise SqlError(UNSUPPORTED, f"HAVING compares measures; "
                           f"{node.sql('postgres')[:200]} is not one (put conditions on "
                           "dimensions in WHERE)")
        return column
    column = builder.column(node, "a condition")
    if column.kind in (MEASURE, METRIC):
        raise SqlError(GROUPING_ERROR, f"{column.name} is a measure: compare it in HAVING, "
                       "not WHERE")
    return column


def where_filters(builder: Builder, node: exp.Expression | None) -> tuple[list[Any], _Range]:
    """Filters on dimensions and the time range (from conditions on the time column, which
    must be ANDed at the top)."""
    bounds = _Range()
    filters: list[Any] = []
    if node is None:
        return filters, bounds
    time = builder.table.time
    for part in _flatten(node, exp.And):
        while isinstance(part, exp.Paren):
            part = part.this
        if _always_true(part):  # WHERE 1=1, WHERE TRUE (as tools start their conditions)
            continue
        if time is not None and _on_time(part, time):
            if isinstance(part, exp.Between) and _is_column(part.this, time) and \
                    not part.args.get("negate") and not part.args.get("symmetric"):
                _time_bound(builder, time, "gte", builder.value(part.args["low"], time), bounds)
                _time_bound(builder, time, "lte", builder.value(part.args["high"], time),
                            bounds)
                continue
            if type(part) in _COMPARISONS:
                left, right, op = part.this, part.expression, _COMPARISONS[type(part)]
                if not _is_column(left, time):
                    left, right, op = right, left, _FLIPPED[op]
                if _is_column(left, time) and not _on_time(right, time):
                    _time_bound(builder, time, op, builder.value(right, time), bounds)
                    continue
            raise SqlError(UNSUPPORTED, f"the time column {time.name} is filtered by a range "
                           f"joined with AND at the top of WHERE: {time.name} >= '2026-03-01' "
                           f"AND {time.name} < '2026-03-08'")
        filters.append(condition_filter(builder, part, measures=False))
    return filters, bounds


def _on_time(node: exp.Expression, time: Column) -> bool:
    return any(c.name == time.name for c in node.find_all(exp.Column))


def _is_column(node: exp.Expression, time: Column) -> bool:
    """The time column itself (a range on ``ts::date`` or ``date_trunc(...)`` is not one on
    ``ts``)."""
    return isinstance(node, exp.Column) and node.name == time.name


def _always_true(node: exp.Expression) -> bool:
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    return (isinstance(node, exp.EQ) and isinstance(node.this, exp.Literal) and
            isinstance(node.expression, exp.Literal) and node.this == node.expression)
