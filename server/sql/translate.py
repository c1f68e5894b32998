"""SQL over the model's tables, translated to the query of ``/v1/query``.

A statement BI tools write over a source, parsed by sqlglot (dialect ``postgres``), becomes one
``/v1/query`` body: the dimensions and ``date_trunc`` grain it groups by, the measures it asks
(``MEASURE(m)``, a measure's own name, or an aggregate matching its kind: ``SUM(total_revenue)``,
``COUNT(*)`` for an unfiltered count, ``COUNT(DISTINCT user_id)`` for an exact distinct count
of that column), its ``WHERE`` as filters and a time range, ``HAVING`` as measure filters,
``ORDER BY``, ``LIMIT`` and ``OFFSET``. A subquery or CTE a tool wraps around such a query
(``SELECT * FROM (...) AS virtual_table LIMIT 1000``), or a plain view of a table it selects
from, is folded in.

Whatever cannot be answered exactly (a ``SUM`` of a distinct count, a join between sources, a
condition on the time column inside ``OR``, raw rows) is a ``SqlError`` with a SQLSTATE and a
message saying what to write instead; never a different question answered.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sqlglot import exp

from server.sql.schema import DIMENSION, MEASURE, METRIC, TIME, Column, Schema, Table
from server.sql.types import DATE, FLOAT8, INT8, TEXT, TIMESTAMP, PgType

SYNTAX_ERROR = "42601"
UNSUPPORTED = "0A000"
UNDEFINED_TABLE = "42P01"
UNDEFINED_COLUMN = "42703"
GROUPING_ERROR = "42803"
DATATYPE_MISMATCH = "42804"
INVALID_PARAMETER = "22023"
TOO_MANY_ROWS = "54000"

GRAINS = {"minute": "minute", "hour": "hour", "day": "day", "week": "week", "month": "month",
          "quarter": "quarter", "year": "year"}
#: the aggregate functions that stand for a measure of a matching kind
_AGGREGATES: dict[type[exp.Expression], tuple[str, ...]] = {
    exp.Sum: ("sum", "count"), exp.Min: ("min",), exp.Max: ("max",), exp.Avg: ("avg",),
}
_NEGATED = {"eq": "ne", "ne": "eq", "in": "not_in", "not_in": "in", "gt": "lte",
            "lte": "gt", "lt": "gte", "gte": "lt", "is_null": "is_not_null",
            "is_not_null": "is_null", "ilike": "not_ilike", "not_ilike": "ilike"}
_COMPARISONS: dict[type[exp.Expression], str] = {
    exp.EQ: "eq", exp.NEQ: "ne", exp.GT: "gt", exp.GTE: "gte", exp.LT: "lt", exp.LTE: "lte"}
_FLIPPED = {"eq": "eq", "ne": "ne", "gt": "lt", "lt": "gt", "gte": "lte", "lte": "gte"}


class SqlError(Exception):
    """A statement the interface cannot answer: a PostgreSQL error (SQLSTATE, message, hint)."""

    def __init__(self, sqlstate: str, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
        self.message = message
        self.hint = hint


@dataclass(frozen=True, slots=True)
class Param:
    """A bound parameter (``$1`` is index 0), resolved by ``bind``."""

    index: int


@dataclass(frozen=True, slots=True)
class After:
    """The first instant after a value of the time column (an inclusive upper bound, or an
    exclusive lower one): the value plus the column's resolution."""

    value: object
    step: dt.timedelta


@dataclass(frozen=True, slots=True)
class Output:
    """A column of the answer: its name, type, and the ``/v1/query`` column it shows."""

    name: str
    type: PgType
    member: str
    #: the part of a time bucket shown (``year``), None for the value itself
    part: str | None = None


@dataclass(frozen=True, slots=True)
class Translated:
    body: dict[str, Any]
    outputs: tuple[Output, ...]
    #: the type of each parameter, by index (unknown ones are text)
    parameters: Mapping[int, PgType]
    #: whether the statement bounds its rows itself (else more rows than the limit is an error)
    limited: bool


@dataclass(slots=True)
class _Item:
    kind: str  # dimension, grain or measure
    member: str
    name: str
    type: PgType
    key: str  # the expression's SQL, to match GROUP BY and ORDER BY items
    grain: str | None = None
    #: the part of the bucket shown (``year``: its number), None for the bucket itself
    part: str | None = None


@dataclass(slots=True)
class _Builder:
    table: Table
    parameters: dict[int, PgType] = field(default_factory=dict)
    grain: str | None = None
    #: output names of the select items -> their members (HAVING may name them)
    aliases: dict[str, str] = field(default_factory=dict)

    def column(self, node: exp.Expression, context: str) -> Column:
        if not isinstance(node, exp.Column):
            raise SqlError(UNSUPPORTED, f"{context} must name a column of "
                           f"{self.table.name}, not {node.sql('postgres')[:200]}")
        found = self.table.column(node.name)
        if found is None:
            raise SqlError(UNDEFINED_COLUMN, f'column "{node.name}" does not exist in '
                           f"{self.table.name}", hint=_columns_hint(self.table))
        return found

    def value(self, node: exp.Expression, column: Column) -> object:
        """A literal or parameter compared with ``column``."""
        if isinstance(node, exp.Placeholder | exp.Parameter):
            index = _parameter_index(node)
            self.parameters.setdefault(index, column.type if column.kind != METRIC else FLOAT8)
            return Param(index)
        if isinstance(node, exp.Cast | exp.StrToTime | exp.StrToDate | exp.TsOrDsToDate):
            return self.value(node.this, column)
        if isinstance(node, exp.Paren):
            return self.value(node.this, column)
        if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) and \
                not node.this.is_string:
            number = self.value(node.this, column)
            assert isinstance(number, int | float)
            return -number
        if isinstance(node, exp.Literal):
            if node.is_string:
                return node.this
            text = node.this
            return int(text) if text.lstrip("-").isdigit() else float(text)
        if isinstance(node, exp.Boolean):
            return "true" if node.this else "false"
        if isinstance(node, exp.Null):
            raise SqlError(UNSUPPORTED, f"compare {column.name} with NULL using IS NULL or "
                           "IS NOT NULL (= NULL is never true)")
        raise SqlError(UNSUPPORTED, f"{column.name} can be compared with literal values and "
                       f"parameters only, not {node.sql('postgres')[:200]}")


def _parameter_index(node: exp.Expression) -> int:
    name = node.name if isinstance(node, exp.Parameter) else node.this
    if name is None or not str(name).isdigit() or int(name) < 1:
        raise SqlError(SYNTAX_ERROR, "write parameters as $1, $2, ...")
    return int(name) - 1


def _columns_hint(table: Table) -> str:
    names = ", ".join(f'"{c.name}"' if "." in c.name else c.name for c in table.columns)
    return f"the columns of {table.name}: {names}"


def output_name(node: exp.Expression) -> str:
    """The name PostgreSQL gives a select item.

    >>> from sqlglot import parse_one
    >>> [output_name(e) for e in parse_one("SELECT a, b AS c, pg_catalog.version(), "
    ...  "SUM(x), date_trunc('day', t), 1, CASE WHEN a THEN 1 END").expressions]
    ['a', 'c', 'version', 'sum', 'date_trunc', '?column?', 'case']
    """
    if isinstance(node, exp.Alias):
        return node.alias
    if isinstance(node, exp.Column):
        return node.name
    if isinstance(node, exp.Dot):
        return output_name(node.expression)
    if isinstance(node, exp.Case):
        return "case"
    if isinstance(node, exp.Cast):
        return output_name(node.this)
    if isinstance(node, exp.TimestampTrunc | exp.DateTrunc):
        return "date_trunc"
    if isinstance(node, exp.Anonymous):
        return str(node.this).lower()
    if isinstance(node, exp.Func):
        return node.sql_name().lower()
    return "?column?"


# -- select items -------------------------------------------------------------------------

def _measure(table: Table, column: Column) -> tuple[str, PgType]:
    if column.kind not in (MEASURE, METRIC):
        raise SqlError(UNSUPPORTED, f"{column.name} is a dimension, not a measure; aggregates "
                       "stand for the model's measures", hint=_measures_hint(table))
    return column.name, column.type


def _measures_hint(table: Table) -> str:
    names = [c.name for c in table.columns if c.kind in (MEASURE, METRIC)]
    return (f"write MEASURE(name) with one of: {', '.join(names)}" if names else
            f"{table.name} has no measures")


def _aggregate(builder: _Builder, node: exp.Expression) -> tuple[str, PgType]:
    """The measure an aggregate call stands for."""
    table = builder.table
    shown = node.sql("postgres")[:200]
    if isinstance(node, exp.Anonymous) and str(node.this).lower() == "measure":
        if len(node.expressions) != 1:
            raise SqlError(SYNTAX_ERROR, "MEASURE takes one measure or metric name")
        column = builder.column(node.expressions[0], "MEASURE's argument")
        return _measure(table, column)
    if isinstance(node, exp.Count):
        argument = node.this
        if isinstance(argument, exp.Star):
            found = table.measure_for("count", None)
            if found is None:
                raise SqlError(UNSUPPORTED, f"{table.name} has no unfiltered count measure for "
                               "COUNT(*)", hint=_measures_hint(table))
            return found.name, INT8
        if isinstance(argument, exp.Distinct) and len(argument.expressions) == 1 and \
                isinstance(argument.expressions[0], exp.Column):
            name = argument.expressions[0].name
            found = table.measure_for("count_distinct", name)
            if found is None:
                raise SqlError(UNSUPPORTED, f"no exact distinct count of {name} is defined for "
                               f"{shown}; add a measure with agg: count_distinct and column: "
                               f"{name}", hint=_measures_hint(table))
            return found.name, INT8
        raise SqlError(UNSUPPORTED, f"{shown} cannot be answered: COUNT(*) counts rows with the "
                       "model's count measure, COUNT(DISTINCT column) uses its exact distinct "
                       "count", hint=_measures_hint(table))
    kinds = _AGGREGATES.get(type(node))
    if kinds is None:
        raise SqlError(UNSUPPORTED, f"{shown} cannot be answered exactly from the model; "
                       "select dimensions, date_trunc of the time column and measures",
                       hint=_measures_hint(table))
    function = type(node).__name__.upper()
    argument = node.this
    if isinstance(argument, exp.Distinct):
        raise SqlError(UNSUPPORTED, f"{shown}: DISTINCT is supported in COUNT only")
    if isinstance(argument, exp.Column) and table.column(argument.name) is None:
        # a column of the source's table the model aggregates (SUM(amount)): its measure
        found = next((m for kind in kinds if (m := table.measure_for(kind, argument.name))),
                     None)
        if found is not None:
            return found.name, found.type
    column = builder.column(argument, f"{function}'s argument")
    if column.kind in (MEASURE, METRIC):
        if column.agg in kinds:
            return column.name, column.type
        what = f"a {column.agg}" if column.agg else "a metric"
        raise SqlError(UNSUPPORTED, f"{shown} cannot be answered exactly: {column.name} is "
                       f"{what.replace('_', ' ')}, which {function} of its groups does "
                       f"not give; write MEASURE({column.name})")
    found = next((table.measure_for(kind, column.name) for kind in kinds
                  if table.measure_for(kind, column.name) is not None), None)
    if found is None:
        raise SqlError(UNSUPPORTED, f"{shown}: the model defines no unfiltered "
                       f"{kinds[0]} of {column.name}", hint=_measures_hint(table))
    return found.name, found.type


def _item(builder: _Builder, node: exp.Expression) -> _Item:
    name = node.alias if isinstance(node, exp.Alias) else None
    inner = node.this if isinstance(node, exp.Alias) else node
    day = _day_of(builder, inner)
    if day is not None:
        return replace(day, name=name or output_name(node))
    while isinstance(inner, exp.Cast | exp.Paren):
        inner = inner.this
    key = inner.sql("postgres")
    name = name or output_name(node)
    if isinstance(inner, exp.Extract):
        return _extract(builder, inner, name, key)
    if isinstance(inner, exp.Star):
        raise SqlError(UNSUPPORTED, f"SELECT * over {builder.table.name} would return raw rows, "
                       "which the model does not answer; name dimensions and measures: SELECT "
                       "region, MEASURE(total_events) FROM events GROUP BY 1",
                       hint=_columns_hint(builder.table))
    if isinstance(inner, exp.Column):
        column = builder.column(inner, "a select item")
        if column.kind == DIMENSION:
            return _Item("dimension", column.name, name, column.type, key)
        if column.kind == TIME:
            raise SqlError(UNSUPPORTED, f"{column.name} is the time column: group by "
                           f"date_trunc('day', {column.name}) (or minute, hour, week, month, "
                           "quarter, year)")
        member, typed = _measure(builder.table, column)
        return _Item("measure", member, name, typed, key)
    if isinstance(inner, exp.TimestampTrunc | exp.DateTrunc):
        column = builder.column(inner.this, "date_trunc's second argument")
        if column.kind != TIME:
            raise SqlError(UNSUPPORTED, f"date_trunc applies to the time column only, not "
                           f"{column.name}")
        unit = inner.unit.name.lower() if inner.unit is not None else ""
        grain = GRAINS.get(unit)
        if grain is None:
            raise SqlError(UNSUPPORTED, f"date_trunc('{unit}', ...): the grains are "
                           f"{', '.join(GRAINS)}")
        _grain(builder, grain)
        return _Item("grain", column.name, name, TIMESTAMP, key, grain)
    member, typed = _aggregate(builder, inner)
    return _Item("measure", member, name, typed, key)


def _grain(builder: _Builder, grain: str) -> None:
    if builder.grain is not None and builder.grain != grain:
        raise SqlError(UNSUPPORTED, "a query has one grain: date_trunc with "
                       f"'{builder.grain}' and '{grain}'")
    builder.grain = grain


def _day_of(builder: _Builder, node: exp.Expression) -> _Item | None:
    """``ts::date``, ``CAST(ts AS DATE)``, ``DATE(ts)`` of the time column: the day grain,
    answered as dates."""
    if isinstance(node, exp.Cast) and node.to.this in (exp.DType.DATE, exp.DType.DATE32):
        argument = node.this
    elif isinstance(node, exp.Date) and not node.expressions:
        argument = node.this
    else:
        return None
    time = builder.table.time
    if time is None or not isinstance(argument, exp.Column) or argument.name != time.name:
        return None
    _grain(builder, "day")
    return _Item("grain", time.name, "", DATE, node.sql("postgres"), "day")


def _extract(builder: _Builder, node: exp.Extract, name: str, key: str) -> _Item:
    """``EXTRACT(YEAR FROM ts)`` (or ``date_part('year', ts)``): the year grain, answered as
    the year's number. Other fields repeat across years (a month of every year) and are not a
    grain of the model."""
    column = builder.column(node.expression, "EXTRACT's argument")
    field = node.this.name.lower()
    if column.kind != TIME or field != "year":
        raise SqlError(UNSUPPORTED, f"EXTRACT({field.upper()} FROM {column.name}) cannot be "
                       "answered: EXTRACT(YEAR FROM <time column>) is the year grain; for "
                       f"other buckets write date_trunc('{field}', {column.name})")
    _grain(builder, "year")
    return _Item("grain", column.name, name, INT8, key, "year", part="year")


# -- WHERE and HAVING ---------------------------------------------------------------------

@dataclass(slots=True)
class _Range:
    start: object = None
    end: object = None


def _time_bound(builder: _Builder, column: Column, op: str, value: object,
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


def _leaf(builder: _Builder, node: exp.Expression, measures: bool,
          negate: bool = False) -> dict[str, Any]:
    """One condition as a filter of ``/v1/query`` (on dimensions, or on measures in HAVING)."""
    shown = node.sql("postgres")[:200]
    if isinstance(node, exp.Not):
        return _node(builder, node.this, measures, not negate)
    if isinstance(node, exp.Paren):
        return _node(builder, node.this, measures, negate)
    if isinstance(node, exp.In | exp.Between | exp.Like | exp.ILike) and \
            node.args.get("negate"):  # x NOT IN (...), NOT BETWEEN, NOT LIKE, NOT ILIKE
        plain = node.copy()
        plain.set("negate", None)
        return _leaf(builder, plain, measures, not negate)
    op: str
    values: list[object]
    if type(node) in _COMPARISONS:
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
        values = [builder.value(v, member) for v in node.expressions]
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
            return {"or": [_negated(low), _negated(high)]}
        return {"and": [low, high]}
    elif isinstance(node, exp.ILike | exp.Like):
        member = _member(builder, node.this, measures)
        pattern = builder.value(node.expression, member)
        if isinstance(node, exp.ILike):
            op, values = "ilike", [pattern]
        else:
            op, values = _like(member, pattern)
    else:
        raise SqlError(UNSUPPORTED, f"the condition {shown} cannot be answered; conditions "
                       "compare a column with values (=, <>, <, >, IN, BETWEEN, LIKE, ILIKE, "
                       "IS NULL) joined by AND, OR and NOT")
    leaf: dict[str, Any] = {"member": member.name, "op": op}
    if values:
        leaf["values"] = values
    return _negated(leaf) if negate else leaf


def _like(member: Column, pattern: object) -> tuple[str, list[object]]:
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
    raise SqlError(UNSUPPORTED, f"LIKE {pattern!r} on {member.name}: LIKE supports 'text', "
                   "'prefix%' and '%part%' patterns; use ILIKE for other patterns (it "
                   "ignores case)")


def _negated(leaf: dict[str, Any]) -> dict[str, Any]:
    if "or" in leaf or "and" in leaf:
        (kind, items), = leaf.items()
        return {"and" if kind == "or" else "or": [_negated(item) for item in items]}
    op = _NEGATED.get(leaf["op"])
    if op is None:
        raise SqlError(UNSUPPORTED, f"NOT of a {leaf['op'].replace('_', ' ')} condition on "
                       f"{leaf['member']} cannot be answered; use NOT ILIKE")
    return {**leaf, "op": op}


def _node(builder: _Builder, node: exp.Expression, measures: bool,
          negate: bool = False) -> dict[str, Any]:
    if isinstance(node, exp.And | exp.Or):
        kind = "and" if isinstance(node, exp.And) else "or"
        if negate:
            kind = "or" if kind == "and" else "and"
        items = [_node(builder, part, measures, negate) for part in _flatten(node, type(node))]
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


def _member(builder: _Builder, node: exp.Expression, measures: bool) -> Column:
    """The dimension (WHERE) or measure (HAVING) a condition is on."""
    if measures:
        if isinstance(node, exp.Column):
            column = builder.table.column(node.name)
            if column is None and node.name in builder.aliases:
                column = builder.table.column(builder.aliases[node.name])
        else:
            name, _ = _aggregate(builder, node)
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


def _where(builder: _Builder, node: exp.Expression | None) -> tuple[list[Any], _Range]:
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
        if time is not None and _on_time(part, time):
            if isinstance(part, exp.Between):
                _time_bound(builder, time, "gte", builder.value(part.args["low"], time), bounds)
                _time_bound(builder, time, "lte", builder.value(part.args["high"], time),
                            bounds)
                continue
            if type(part) in _COMPARISONS:
                left, right, op = part.this, part.expression, _COMPARISONS[type(part)]
                if not (isinstance(left, exp.Column) and left.name == time.name):
                    left, right, op = right, left, _FLIPPED[op]
                if isinstance(left, exp.Column) and left.name == time.name:
                    _time_bound(builder, time, op, builder.value(right, time), bounds)
                    continue
            raise SqlError(UNSUPPORTED, f"the time column {time.name} is filtered by a range "
                           f"joined with AND at the top of WHERE: {time.name} >= '2026-03-01' "
                           f"AND {time.name} < '2026-03-08'")
        filters.append(_node(builder, part, measures=False))
    return filters, bounds


def _on_time(node: exp.Expression, time: Column) -> bool:
    return any(c.name == time.name for c in node.find_all(exp.Column))


# -- statements ---------------------------------------------------------------------------

def _table(schema: Schema, node: exp.Expression) -> Table:
    if not isinstance(node, exp.Table):
        raise SqlError(UNSUPPORTED, f"FROM {node.sql('postgres')[:200]} cannot be answered")
    database = node.db
    if database and database != "public":
        raise SqlError(UNDEFINED_TABLE, f'relation "{database}.{node.name}" does not exist; '
                       "the model's tables are in the schema public")
    table = schema.get(node.name)
    if table is None:
        raise SqlError(UNDEFINED_TABLE, f'relation "{node.name}" does not exist',
                       hint=f"the tables: {', '.join(schema) or 'none'}")
    return table


def _is_view(select: exp.Select) -> bool:
    """A ``SELECT * [WHERE ...]`` of a table: the table itself (filtered), as tools wrap it."""
    return (len(select.expressions) == 1 and isinstance(select.expressions[0], exp.Star)
            and not any(select.args.get(k) for k in ("group", "having", "order", "limit",
                                                      "offset", "joins", "distinct")))


def translate(statement: exp.Expression, schema: Schema, max_rows: int) -> Translated:
    """The ``/v1/query`` body of a SELECT over the model's tables."""
    ctes: dict[str, exp.Expression] = {}
    with_ = statement.args.get("with_") or statement.args.get("with")
    if isinstance(with_, exp.With):
        for cte in with_.expressions:
            ctes[cte.alias] = cte.this
    if isinstance(statement, exp.Subquery):
        statement = statement.this
    if not isinstance(statement, exp.Select):
        raise SqlError(UNSUPPORTED, f"{type(statement).__name__.upper()} statements cannot be "
                       "answered; the model's tables are read with SELECT")
    return _select(statement, schema, ctes, max_rows)


def _source(select: exp.Select, schema: Schema, ctes: Mapping[str, exp.Expression],
            max_rows: int) -> Table | Translated | tuple[Table, exp.Expression | None]:
    from_ = select.args.get("from_") or select.args.get("from")
    if from_ is None:
        raise SqlError(UNSUPPORTED, "name a table: SELECT ... FROM events")
    if select.args.get("joins"):
        raise SqlError(UNSUPPORTED, "joins between tables cannot be answered exactly; a "
                       "source's joined dimensions are its own columns (\"user.country\")")
    node = from_.this
    if isinstance(node, exp.Table) and not node.db and node.name in ctes:
        node = exp.Subquery(this=ctes[node.name].copy())
    if isinstance(node, exp.Subquery):
        inner = node.this
        if isinstance(inner, exp.Select) and _is_view(inner):
            inner_from = inner.args.get("from_") or inner.args.get("from")
            table = _table(schema, inner_from.this) if inner_from is not None else None
            if table is None:
                raise SqlError(UNSUPPORTED, "name a table: SELECT ... FROM events")
            where = inner.args.get("where")
            return table, where.this if where is not None else None
        if not isinstance(inner, exp.Select):
            raise SqlError(UNSUPPORTED, "a subquery in FROM must be a SELECT")
        return _select(inner, schema, ctes, max_rows)
    return _table(schema, node)


def _select(select: exp.Select, schema: Schema, ctes: Mapping[str, exp.Expression],
            max_rows: int) -> Translated:
    source = _source(select, schema, ctes, max_rows)
    if isinstance(source, Translated):
        return _outer(select, source)
    extra_where: exp.Expression | None = None
    if isinstance(source, tuple):
        source, extra_where = source
    builder = _Builder(source)
    items = [_item(builder, node) for node in select.expressions]
    builder.aliases = {i.name: i.member for i in items}
    measures = [i for i in items if i.kind == "measure"]
    grouped = _group_by(select, items, builder)
    if not measures and grouped is None and not select.args.get("distinct"):
        raise SqlError(GROUPING_ERROR, "this would return raw rows, which the model does not "
                       "answer; add GROUP BY (or DISTINCT) over the columns, or a measure")
    where = select.args.get("where")
    condition = where.this if where is not None else None
    if extra_where is not None:
        condition = extra_where if condition is None else exp.and_(extra_where, condition)
    filters, bounds = _where(builder, condition)
    having = select.args.get("having")
    if having is not None:
        filters.append(_node(builder, having.this, measures=True))
    dimensions = [i.member for i in items if i.kind == "dimension"]
    time = source.time
    # the grain's bucket is returned under the time column's name without being listed
    dimensions += [m for m in grouped or () if m not in dimensions
                   and not (time is not None and m == time.name)]
    body: dict[str, Any] = {"source": source.name,
                            "measures": list(dict.fromkeys(i.member for i in measures)),
                            "dimensions": list(dict.fromkeys(dimensions))}
    if builder.grain is not None:
        body["grain"] = builder.grain
    if filters:
        body["filters"] = filters
    if bounds.start is not None or bounds.end is not None:
        body["time_range"] = {k: v for k, v in (("from", bounds.start), ("to", bounds.end))
                              if v is not None}
    order = _order(select, items, builder)
    if order:
        body["order"] = order
    limited = _limits(select, body, builder, max_rows)
    outputs = tuple(Output(i.name, i.type, i.member, i.part) for i in items)
    return Translated(body, outputs, builder.parameters, limited)


def _group_by(select: exp.Select, items: list[_Item], builder: _Builder) -> list[str] | None:
    """The members grouped by (None without GROUP BY); every non-measure item must be one."""
    group = select.args.get("group")
    if group is None:
        if any(i.kind == "measure" for i in items) and any(i.kind != "measure" for i in items):
            shown = next(i for i in items if i.kind != "measure")
            raise SqlError(GROUPING_ERROR, f'column "{shown.name}" must appear in the GROUP BY '
                           "clause or be used in an aggregate function",
                           hint="add GROUP BY over the dimensions (GROUP BY 1, 2)")
        return None
    members: list[str] = []
    for node in group.expressions:
        item = _reference(node, items, builder)
        if item.kind == "measure":
            raise SqlError(GROUPING_ERROR, f"aggregate functions are not allowed in GROUP BY "
                           f"({item.name})")
        members.append(item.member)
    for item in items:
        if item.kind != "measure" and item.member not in members:
            raise SqlError(GROUPING_ERROR, f'column "{item.name}" must appear in the GROUP BY '
                           "clause or be used in an aggregate function")
    return members


def _reference(node: exp.Expression, items: list[_Item], builder: _Builder) -> _Item:
    """A GROUP BY or ORDER BY item: a position, an output name, or an expression."""
    if isinstance(node, exp.Literal) and not node.is_string and node.this.isdigit():
        position = int(node.this)
        if not 1 <= position <= len(items):
            raise SqlError(UNDEFINED_COLUMN, f"position {position} is not in select list")
        return items[position - 1]
    if isinstance(node, exp.Column) and not node.table:
        named = [i for i in items if i.name == node.name]
        if named:
            return named[0]
    key = node.sql("postgres")
    keyed = [i for i in items if i.key == key]
    if keyed:
        return keyed[0]
    return _item(builder, node)


def _order(select: exp.Select, items: list[_Item], builder: _Builder) -> list[dict[str, str]]:
    order = select.args.get("order")
    if order is None:
        return []
    members: list[dict[str, str]] = []
    returned = {i.member for i in items}
    for ordered in order.expressions:
        item = _reference(ordered.this, items, builder)
        if item.member not in returned:
            raise SqlError(UNSUPPORTED, f"ORDER BY {item.name}: order by the columns returned")
        members.append({"member": item.member,
                        "direction": "desc" if ordered.args.get("desc") else "asc"})
    return members


def _integer(builder: _Builder, node: exp.Expression | None, what: str) -> object:
    if node is None:
        return None
    if isinstance(node, exp.Placeholder | exp.Parameter):
        index = _parameter_index(node)
        builder.parameters.setdefault(index, INT8)
        return Param(index)
    if isinstance(node, exp.Literal) and not node.is_string and node.this.isdigit():
        return int(node.this)
    if isinstance(node, exp.Null):
        return None
    raise SqlError(SYNTAX_ERROR, f"{what} must be a whole number")


def _limits(select: exp.Select, body: dict[str, Any], builder: _Builder,
            max_rows: int) -> bool:
    limit = select.args.get("limit")
    offset = select.args.get("offset")
    count = _integer(builder, limit.expression if limit is not None else None, "LIMIT")
    skip = _integer(builder, offset.expression if offset is not None else None, "OFFSET")
    body["limit"] = count if count is not None else max_rows
    if skip is not None:
        body["offset"] = skip
    return count is not None


def _outer(select: exp.Select, inner: Translated) -> Translated:
    """A query over an answered subquery: columns of it, its order, and a smaller limit."""
    for key in ("where", "group", "having", "joins"):
        if select.args.get(key):
            raise SqlError(UNSUPPORTED, f"{key.upper()} over a subquery that aggregates cannot "
                           "be answered; put it inside the subquery")
    by_name = {o.name: o for o in inner.outputs}
    outputs: list[Output] = []
    for node in select.expressions:
        if isinstance(node, exp.Star):
            outputs += inner.outputs
            continue
        name = node.alias if isinstance(node, exp.Alias) else None
        column = node.this if isinstance(node, exp.Alias) else node
        if not isinstance(column, exp.Column) or column.name not in by_name:
            raise SqlError(UNSUPPORTED, f"{node.sql('postgres')[:200]}: over a subquery, select "
                           f"its columns ({', '.join(by_name)})")
        outputs.append(replace(by_name[column.name], name=name or column.name))
    body = dict(inner.body)
    order = select.args.get("order")
    if order is not None:
        members = []
        for ordered in order.expressions:
            node = ordered.this
            found = by_name.get(node.name) if isinstance(node, exp.Column) else None
            if isinstance(node, exp.Literal) and node.this.isdigit() and \
                    1 <= int(node.this) <= len(outputs):
                found = outputs[int(node.this) - 1]
            if found is None:
                raise SqlError(UNSUPPORTED, f"ORDER BY {node.sql('postgres')[:200]}: order by "
                               "the subquery's columns")
            members.append({"member": found.member,
                            "direction": "desc" if ordered.args.get("desc") else "asc"})
        body["order"] = members
    builder = _Builder(Table("", None, ()), dict(inner.parameters))
    limited = inner.limited
    limit = select.args.get("limit")
    if limit is not None:
        count = _integer(builder, limit.expression, "LIMIT")
        if isinstance(count, int) and isinstance(body.get("limit"), int):
            body["limit"] = min(count, body["limit"]) if inner.limited else count
        elif count is not None:
            body["limit"] = count
        limited = limited or count is not None
    offset = select.args.get("offset")
    if offset is not None:
        if body.get("offset"):
            raise SqlError(UNSUPPORTED, "OFFSET both inside and outside a subquery")
        body["offset"] = _integer(builder, offset.expression, "OFFSET")
    return Translated(body, tuple(outputs), builder.parameters, limited)


# -- parameters ---------------------------------------------------------------------------

def _bound(value: object, values: list[object]) -> object:
    if isinstance(value, Param):
        if value.index >= len(values):
            raise SqlError("08P01", f"the statement uses ${value.index + 1} but "
                           f"{len(values)} parameter(s) were bound")
        value = values[value.index]
    if isinstance(value, After):
        instant = _instant(_bound(value.value, values))
        return (instant + value.step).isoformat(" ")
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat(" ") if isinstance(value, dt.datetime) else value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        raise SqlError(INVALID_PARAMETER, "a NULL parameter in a comparison is never true; "
                       "use IS NULL")
    if not isinstance(value, str | int | float):
        return str(value)
    return value


def _instant(value: object) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None) if value.tzinfo is None else value
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    try:
        return dt.datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise SqlError("22007", f"invalid input syntax for type timestamp: {value!r}") from None


def bind(translated: Translated, values: list[object]) -> dict[str, Any]:
    """The body with every parameter (and bound of the time column) replaced by its value."""

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, Param | After):
            return _bound(node, values)
        return node

    body: dict[str, Any] = walk(translated.body)
    return body


def parameter_types(translated: Translated, count: int) -> list[PgType]:
    return [translated.parameters.get(i, TEXT) for i in range(count)]

