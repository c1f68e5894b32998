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
import re
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from sqlglot import exp

from server.sql.schema import DIMENSION, MEASURE, METRIC, TIME, Column, Schema, Table
from server.sql.types import (
    DATE,
    FLOAT8,
    INT8,
    NUMERIC,
    SQL_NAMES,
    TEXT,
    TIMESTAMP,
    PgType,
    array_of,
)

SYNTAX_ERROR = "42601"
UNSUPPORTED = "0A000"
UNDEFINED_TABLE = "42P01"
UNDEFINED_COLUMN = "42703"
GROUPING_ERROR = "42803"
DATATYPE_MISMATCH = "42804"
INVALID_PARAMETER = "22023"
TOO_MANY_ROWS = "54000"
#: the clock of the statement being bound (``bind``'s ``now``)
_NOW: ContextVar[dt.datetime | None] = ContextVar("sql_now", default=None)
#: the most parameters a statement may have (the protocol counts them in 16 bits)
MAX_PARAMETERS = 32767

GRAINS = {"minute": "minute", "hour": "hour", "day": "day", "week": "week", "month": "month",
          "quarter": "quarter", "year": "year"}
#: the aggregate functions that stand for a measure of a matching kind
_AGGREGATES: dict[type[exp.Expression], tuple[str, ...]] = {
    exp.Sum: ("sum", "count"), exp.Min: ("min",), exp.Max: ("max",), exp.Avg: ("avg",),
}
_NEGATED = {"like": "not_like", "not_like": "like",
            "eq": "ne", "ne": "eq", "in": "not_in", "not_in": "in", "gt": "lte",
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
class Spread:
    """A list parameter whose items are the values of an ``IN`` (``x = ANY($1)``)."""

    index: int


@dataclass(frozen=True, slots=True)
class Moment:
    """A time computed from the clock (``now() - interval '7 days'``,
    ``date_trunc('month', current_date)``), evaluated each time the statement runs."""

    expression: exp.Expression


@dataclass(frozen=True, slots=True)
class Naive:
    """A bound value read as a timestamp without zone (its offset, if any, left out)."""

    value: object


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
    #: the most rows an answer may have (``LIMIT ALL`` or ``NULL``: this)
    max_rows: int = 100_000
    #: ``LIMIT 0``: the statement's columns, no rows (tools ask it to learn them)
    empty: bool = False


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
    #: the names a column may be qualified with (the table's, its alias)
    qualifiers: frozenset[str] = frozenset()
    #: the zone of ``date_trunc(unit, time, zone)``
    zone: str | None = None

    def column(self, node: exp.Expression, context: str) -> Column:
        while isinstance(node, exp.Cast) and _keeps_values(node):
            node = node.this
        if not isinstance(node, exp.Column):
            raise SqlError(UNSUPPORTED, f"{context} must name a column of "
                           f"{self.table.name}, not {node.sql('postgres')[:200]}")
        if node.table and node.table not in self.qualifiers:
            raise SqlError(UNDEFINED_TABLE, f'missing FROM-clause entry for table '
                           f'"{node.table}"')
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
        if isinstance(node, exp.Cast) and isinstance(node.this, exp.Placeholder | exp.Parameter):
            # $1::timestamptz: the type the client binds it as
            declared = SQL_NAMES.get(node.to.sql("postgres").lower())
            if declared is not None:
                self.parameters.setdefault(_parameter_index(node.this), declared)
            value = self.value(node.this, column)
            return value if declared is not TIMESTAMP else Naive(value)
        if isinstance(node, exp.StrToTime | exp.StrToDate):
            _check_format(node)
            return self.value(node.this, column)
        if isinstance(node, exp.Cast | exp.TsOrDsToDate):
            value = self.value(node.this, column)
            zoned = isinstance(node, exp.Cast) and node.to.this in (
                exp.DType.TIMESTAMPTZ, exp.DType.TIMESTAMPLTZ)
            return value if zoned or not isinstance(value, str) else _naive(value)
        if column.kind == TIME and _relative(node):
            return Moment(node.copy())  # now() - interval '7 days': evaluated when bound
        if isinstance(node, exp.Paren):
            return self.value(node.this, column)
        if isinstance(node, exp.ByteString | exp.RawString | exp.UnicodeString):
            return str(node.this)
        if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) and \
                not node.this.is_string:
            number = self.value(node.this, column)
            assert isinstance(number, int | float)
            return -number
        if isinstance(node, exp.Literal):
            if node.is_string:
                # a timestamp without zone ignores an offset written in a literal
                return _naive(node.this) if column.kind == TIME else (
                    _number(node.this) if column.kind in (MEASURE, METRIC) else node.this)
            return _number(node.this)
        if isinstance(node, exp.Boolean):
            return "true" if node.this else "false"
        if isinstance(node, exp.Null):
            raise SqlError(UNSUPPORTED, f"compare {column.name} with NULL using IS NULL or "
                           "IS NOT NULL (= NULL is never true)")
        raise SqlError(UNSUPPORTED, f"{column.name} can be compared with literal values and "
                       f"parameters only, not {node.sql('postgres')[:200]}")


_OFFSET = re.compile(r"(?<=\d)\s*(Z|[+-]\d{2}(:?\d{2})?)$")
#: TO_TIMESTAMP / TO_DATE formats that read the ISO forms the time range takes as they are
_ISO_FORMATS = ("%Y-%m-%d", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f",
                "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f")


def _naive(text: str) -> str:
    """A time literal compared with the time column (a timestamp without zone) loses any
    offset, as in PostgreSQL.

    >>> _naive("2026-03-01 00:00:00+05:00"), _naive("2026-03-01T10:00Z"), _naive("x-1")
    ('2026-03-01 00:00:00', '2026-03-01T10:00', 'x-1')
    """
    return _OFFSET.sub("", text) if re.match(r"\d{4}-\d{2}-\d{2}[T ]\d", text) else text


def _number(text: str) -> object:
    """A number written in a statement (or a string a measure is compared with, which
    PostgreSQL reads as a number)."""
    try:
        return int(text) if text.strip().lstrip("-").isdigit() else float(text)
    except ValueError:
        return text


def _check_format(node: exp.Expression) -> None:
    written = node.args.get("format")
    if isinstance(written, exp.Literal) and written.this not in _ISO_FORMATS:
        raise SqlError(UNSUPPORTED, f"{node.sql('postgres')[:200]}: only ISO formats "
                       "('YYYY-MM-DD HH24:MI:SS.US' and shorter) are read; write the value as "
                       "'YYYY-MM-DD HH:MM:SS'")


#: casts that leave values as they are, by the category of what they cast
_KEEPING = {"N": ("double precision", "float8", "numeric", "decimal"),
            "S": ("text", "varchar", "character varying"),
            "D": ("timestamp", "timestamp without time zone")}


def _keeps_values(node: exp.Cast, typed: PgType | None = None) -> bool:
    """Whether a cast leaves its values as they are (``x::text`` of text, ``SUM(x)::numeric``,
    ``n::bigint`` of an integer); one that rounds or reformats (``::int`` of a float) does
    not."""
    target = node.to.sql("postgres").lower()
    if typed is None:
        return target in _KEEPING["S"]
    if typed in (INT8, NUMERIC) and target in ("bigint", "int8"):
        return True
    return target in _KEEPING.get(typed.category, ())


def _parameter_index(node: exp.Expression) -> int:
    name = node.name if isinstance(node, exp.Parameter) else node.this
    if name is None or not str(name).isdigit() or int(name) < 1:
        raise SqlError(SYNTAX_ERROR, "write parameters as $1, $2, ...")
    if int(name) > MAX_PARAMETERS:
        raise SqlError(TOO_MANY_ROWS, f"a statement has at most {MAX_PARAMETERS} parameters")
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
        if isinstance(argument, exp.Star) or (isinstance(argument, exp.Literal) and
                                              not argument.is_string):  # COUNT(1)
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
    casts: list[exp.Cast] = []
    while isinstance(inner, exp.Cast | exp.Paren):
        if isinstance(inner, exp.Cast):
            casts.append(inner)
        inner = inner.this
    item = _plain_item(builder, inner, name or output_name(node))
    for cast in casts:
        if not _keeps_values(cast, item.type):
            raise SqlError(UNSUPPORTED, f"{cast.sql('postgres')[:200]}: the cast would change "
                           f"the values of {item.name} ({item.type.name}); cast them in the "
                           "tool, or select them as they are")
    return item


def _plain_item(builder: _Builder, inner: exp.Expression, name: str) -> _Item:
    key = inner.sql("postgres")
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
        zone = inner.args.get("zone")
        if zone is not None:
            if not (isinstance(zone, exp.Literal) and zone.is_string):
                raise SqlError(UNSUPPORTED, "date_trunc's zone must be a literal name, "
                               "'Europe/Berlin'")
            if builder.zone not in (None, zone.this):
                raise SqlError(UNSUPPORTED, "a query has one time zone: date_trunc with "
                               f"'{builder.zone}' and '{zone.this}'")
            builder.zone = zone.this
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
            index = _parameter_index(listed)
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
            return {"or": [_negated(low), _negated(high)]}
        return {"and": [low, high]}
    elif isinstance(node, exp.ILike | exp.Like):
        member = _member(builder, node.this, measures)
        pattern = builder.value(node.expression, member)
        if isinstance(node, exp.ILike):
            op, values = "ilike", [pattern]
        elif isinstance(pattern, Param):
            op, values = LIKE, [pattern]  # read when the pattern is bound
        else:
            op, values = _like(member.name, pattern)
    else:
        raise SqlError(UNSUPPORTED, f"the condition {shown} cannot be answered; conditions "
                       "compare a column with values (=, <>, <, >, IN, BETWEEN, LIKE, ILIKE, "
                       "IS NULL) joined by AND, OR and NOT")
    leaf: dict[str, Any] = {"member": member.name, "op": op}
    if values:
        leaf["values"] = values
    return _negated(leaf) if negate else leaf


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


def _like(member: str, pattern: object) -> tuple[str, list[object]]:
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
        filters.append(_node(builder, part, measures=False))
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
        if with_.args.get("recursive"):
            raise SqlError(UNSUPPORTED, "WITH RECURSIVE cannot be answered from the model")
        for cte in with_.expressions:
            ctes[cte.alias] = cte.this
    if isinstance(statement, exp.Subquery):
        statement = statement.this
    if not isinstance(statement, exp.Select):
        raise SqlError(UNSUPPORTED, f"{type(statement).__name__.upper()} statements cannot be "
                       "answered; the model's tables are read with SELECT")
    return _select(statement, schema, ctes, max_rows)


def _source(select: exp.Select, schema: Schema, ctes: Mapping[str, exp.Expression],
            max_rows: int) -> Translated | tuple[Table, exp.Expression | None, frozenset[str]]:
    """What a SELECT reads: an answered subquery, or a table (with the conditions of a view
    of it a tool wrapped, and the names its columns may be qualified with)."""
    from_ = select.args.get("from_") or select.args.get("from")
    if from_ is None:
        raise SqlError(UNSUPPORTED, "name a table: SELECT ... FROM events")
    if select.args.get("joins"):
        raise SqlError(UNSUPPORTED, "joins between tables cannot be answered exactly; a "
                       "source's joined dimensions are its own columns (\"user.country\")")
    node = from_.this
    if isinstance(node, exp.Table) and node.args.get("sample") is not None:
        raise SqlError(UNSUPPORTED, "TABLESAMPLE cannot be answered exactly")
    alias = node.alias
    if isinstance(node, exp.Table) and not node.db and node.name in ctes:
        body = ctes[node.name].copy()
        # the CTE's own body cannot name it (that would be WITH RECURSIVE)
        ctes = {k: v for k, v in ctes.items() if k != node.name}
        alias = alias or node.name
        node = exp.Subquery(this=body)
    if isinstance(node, exp.Subquery):
        inner = node.this
        if isinstance(inner, exp.Select) and _is_view(inner):
            inner_from = inner.args.get("from_") or inner.args.get("from")
            if inner_from is None or isinstance(inner_from.this, exp.Subquery):
                raise SqlError(UNSUPPORTED, "name a table: SELECT ... FROM events")
            table = _table(schema, inner_from.this)
            where = inner.args.get("where")
            names = {table.name, inner_from.this.alias, alias or node.alias} - {""}
            return table, where.this if where is not None else None, frozenset(names)
        if not isinstance(inner, exp.Select):
            raise SqlError(UNSUPPORTED, "a subquery in FROM must be a SELECT")
        return _select(inner, schema, ctes, max_rows)
    table = _table(schema, node)
    return table, None, frozenset({table.name, node.alias} - {""})


def _select(select: exp.Select, schema: Schema, ctes: Mapping[str, exp.Expression],
            max_rows: int) -> Translated:
    found = _source(select, schema, ctes, max_rows)
    if isinstance(found, Translated):
        return _outer(select, found, max_rows)
    source, extra_where, qualifiers = found
    builder = _Builder(source, qualifiers=qualifiers)
    items = [_item(builder, node) for node in select.expressions]
    builder.aliases = {i.name: i.member for i in items}
    measures = [i for i in items if i.kind == "measure"]
    grouped = _group_by(select, items, builder)
    distinct = select.args.get("distinct")
    if not measures and grouped is None and not distinct:
        raise SqlError(GROUPING_ERROR, "this would return raw rows, which the model does not "
                       "answer; add GROUP BY (or DISTINCT) over the columns, or a measure")
    if distinct is not None and (distinct.args.get("on") is not None or any(
            m not in {i.member for i in items} for m in grouped or ())):
        raise SqlError(UNSUPPORTED, "DISTINCT ON, or DISTINCT over fewer columns than are "
                       "grouped by, cannot be answered; group by the columns selected")
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
    if builder.zone is not None:
        body["timezone"] = builder.zone
    limited, empty = _limits(select, body, builder, max_rows)
    outputs = tuple(Output(i.name, i.type, i.member, i.part) for i in items)
    return Translated(body, outputs, builder.parameters, limited, max_rows, empty)


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


def _order(select: exp.Select, items: list[_Item],
           builder: _Builder) -> list[dict[str, str]]:
    order = select.args.get("order")
    if order is None:
        return []
    members: list[dict[str, str]] = []
    returned = {i.member for i in items}
    for ordered in order.expressions:
        item = _reference(ordered.this, items, builder)
        if item.member not in returned:
            raise SqlError(UNSUPPORTED, f"ORDER BY {item.name}: order by the columns returned")
        members.append(_ordering(item.member, ordered))
    return members


def _ordering(member: str, ordered: exp.Expression) -> dict[str, str]:
    """An ORDER BY item; NULLs come where PostgreSQL puts them (last ascending, first
    descending) unless ``NULLS FIRST``/``LAST`` says otherwise."""
    descending = bool(ordered.args.get("desc"))
    first = ordered.args.get("nulls_first")  # sqlglot sets PostgreSQL's default when unwritten
    nulls_first = descending if first is None else bool(first)
    found = {"member": member, "direction": "desc" if descending else "asc"}
    return {**found, "nulls": "first"} if nulls_first else found


def _integer(builder: _Builder, node: exp.Expression | None, what: str) -> object:
    """A LIMIT or OFFSET: a whole number, a parameter, or None (``LIMIT ALL``, ``NULL``)."""
    while isinstance(node, exp.Paren | exp.Cast):
        node = node.this
    if node is None or isinstance(node, exp.Null) or (isinstance(node, exp.Var)
                                                      and node.name.upper() == "ALL"):
        return None
    if isinstance(node, exp.Placeholder | exp.Parameter):
        index = _parameter_index(node)
        builder.parameters.setdefault(index, INT8)
        return Param(index)
    if isinstance(node, exp.Literal) and node.this.strip().isdigit():
        return int(node.this)
    raise SqlError(SYNTAX_ERROR, f"{what} must be a whole number")


def _limit_node(select: exp.Select) -> exp.Expression | None:
    limit = select.args.get("limit")
    if isinstance(limit, exp.Fetch):  # FETCH FIRST n ROWS ONLY
        options = limit.args.get("limit_options")
        if options is not None and (options.args.get("percent") or
                                    options.args.get("with_ties")):
            raise SqlError(UNSUPPORTED, "FETCH ... PERCENT or WITH TIES cannot be answered")
        count = limit.args.get("count")
        return count if count is not None else exp.Literal.number(1)
    return limit.expression if limit is not None else None


def _limits(select: exp.Select, body: dict[str, Any], builder: _Builder,
            max_rows: int) -> tuple[bool, bool]:
    """The body's limit and offset; whether the statement bounds its rows itself, and
    whether it asks for none (``LIMIT 0``)."""
    offset = select.args.get("offset")
    count = _integer(builder, _limit_node(select), "LIMIT")
    skip = _integer(builder, offset.expression if offset is not None else None, "OFFSET")
    if skip is not None:
        body["offset"] = skip
    if count == 0:
        body["limit"] = 1
        return True, True
    if isinstance(count, int) and count > max_rows:  # more than an answer may have: all of it
        count = None
    body["limit"] = count
    return count is not None, False


def _outer(select: exp.Select, inner: Translated, max_rows: int) -> Translated:
    """A query over an answered subquery: columns of it, its order, a part of its rows."""
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
    if select.args.get("distinct") is not None and len(outputs) < len(inner.outputs):
        raise SqlError(UNSUPPORTED, "DISTINCT over some of a subquery's columns cannot be "
                       "answered; select DISTINCT inside it")
    body = dict(inner.body)
    cut = inner.limited or bool(body.get("offset"))
    order = select.args.get("order")
    if order is not None:
        if cut:
            raise SqlError(UNSUPPORTED, "ORDER BY over a subquery with LIMIT or OFFSET cannot be "
                           "answered; order inside the subquery")
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
            members.append(_ordering(found.member, ordered))
        body["order"] = members
    builder = _Builder(Table("", None, ()), dict(inner.parameters))
    offset = select.args.get("offset")
    count = _integer(builder, _limit_node(select), "LIMIT")
    skip = _integer(builder, offset.expression if offset is not None else None, "OFFSET")
    if count is None and skip is None:
        return replace(inner, body=body, outputs=tuple(outputs),
                       parameters=builder.parameters)
    inner_count = body.get("limit") if inner.limited else None
    inner_skip = body.get("offset") or 0
    if any(isinstance(v, Param) for v in (count, skip)) and (inner.limited or inner_skip) or \
            isinstance(inner_count, Param) or isinstance(inner_skip, Param):
        raise SqlError(UNSUPPORTED, "LIMIT and OFFSET both inside and outside a subquery must "
                       "be numbers; write them in one place")
    skip = skip or 0
    if isinstance(inner_count, int):  # the outer rows are a part of the inner ones
        left = inner_count - skip if isinstance(skip, int) else inner_count
        count = left if count is None else min(count, left) if isinstance(count, int) else count
    if isinstance(skip, int) and isinstance(inner_skip, int):
        skip = inner_skip + skip
    if skip:
        body["offset"] = skip
    empty = inner.empty or count == 0 or (isinstance(count, int) and count < 0)
    if isinstance(count, int) and count > max_rows:
        count = None
    body["limit"] = 1 if empty else count
    return Translated(body, tuple(outputs), builder.parameters, count is not None or empty,
                      max_rows, empty)


# -- parameters ---------------------------------------------------------------------------

def _bound(value: object, values: list[object]) -> object:
    if isinstance(value, Param):
        if value.index >= len(values):
            raise SqlError("08P01", f"the statement uses ${value.index + 1} but "
                           f"{len(values)} parameter(s) were bound")
        value = values[value.index]
        if isinstance(value, list | tuple):
            raise SqlError("42883", "a list (array) parameter is compared as one value; write "
                           "= ANY($n) to compare with each of its items")
    if isinstance(value, Moment):
        return evaluate_moment(value.expression, _NOW.get() or dt.datetime.now(dt.UTC)
                               ).isoformat(" ")
    if isinstance(value, Naive):
        bound = _bound(value.value, values)
        return _naive(bound) if isinstance(bound, str) else bound
    if isinstance(value, After):
        instant = _floor(_instant(_bound(value.value, values)), value.step)
        return (instant + value.step).isoformat(" ")
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
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


_CLOCK = (exp.CurrentTimestamp, exp.CurrentDate, exp.Localtimestamp, exp.CurrentDatetime)
_SHIFTS = {"second": "seconds", "minute": "minutes", "hour": "hours", "day": "days",
           "week": "weeks", "month": "months", "quarter": "quarters", "year": "years"}


def _clock(node: exp.Expr) -> bool:
    return isinstance(node, _CLOCK) or (isinstance(node, exp.Anonymous) and
                                        str(node.this).lower() == "now")


def _relative(node: exp.Expression) -> bool:
    """Whether a value is computed from the clock."""
    return any(_clock(n) for n in node.walk())


def _interval(node: exp.Interval) -> tuple[int, str]:
    """``INTERVAL '-30 day'``: how many of which unit."""
    unit = node.args.get("unit")
    text = f"{node.this.name} {unit.name if unit is not None else ''}".strip().lower()
    found = re.fullmatch(r"([+-]?\d+)\s+([a-z]+?)s?", text)
    if found is None or found.group(2) not in _SHIFTS:
        raise SqlError(UNSUPPORTED, f"INTERVAL '{text}': write one count of one unit, "
                       "INTERVAL '7 days'")
    return int(found.group(1)), found.group(2)


def _moved(moment: dt.datetime, count: int, unit: str) -> dt.datetime:
    """``moment`` moved by ``count`` units in calendar arithmetic, on the wall clock (a
    month from the 31st lands on the last day of the shorter month, as PostgreSQL does)."""
    if unit in ("month", "quarter", "year"):
        months = count * {"month": 1, "quarter": 3, "year": 12}[unit]
        index = moment.year * 12 + moment.month - 1 + months
        year, month = divmod(index, 12)
        last = (dt.date(year + (month + 1) // 12, (month + 1) % 12 + 1, 1)
                - dt.timedelta(days=1)).day
        return moment.replace(year=year, month=month + 1, day=min(moment.day, last))
    return moment + dt.timedelta(**{_SHIFTS[unit]: count})


def _truncated(moment: dt.datetime, unit: str) -> dt.datetime:
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    cuts = {"second": moment.replace(microsecond=0),
            "minute": moment.replace(second=0, microsecond=0),
            "hour": moment.replace(minute=0, second=0, microsecond=0), "day": day,
            "week": day - dt.timedelta(days=day.weekday()), "month": day.replace(day=1),
            "quarter": day.replace(day=1, month=(day.month - 1) // 3 * 3 + 1),
            "year": day.replace(day=1, month=1)}
    if unit not in cuts:
        raise SqlError(UNSUPPORTED, f"date_trunc('{unit}', ...) of the clock: the units are "
                       f"{', '.join(cuts)}")
    return cuts[unit]


def evaluate_moment(node: exp.Expression, now: dt.datetime) -> dt.datetime:
    """A value computed from the clock, at ``now`` (an aware time in the session's zone).

    >>> import sqlglot, zoneinfo
    >>> now = dt.datetime(2026, 3, 31, 15, 30, tzinfo=zoneinfo.ZoneInfo("UTC"))
    >>> def at(text):
    ...     return evaluate_moment(sqlglot.parse_one(text, read="postgres"), now).isoformat()
    >>> at("now() - interval '7 days'"), at("date_trunc('day', now() + interval '-30 day')")
    ('2026-03-24T15:30:00+00:00', '2026-03-01T00:00:00+00:00')
    >>> at("date_trunc('month', current_date) - interval '1 month'"), at("current_date - 1")
    ('2026-02-01T00:00:00+00:00', '2026-03-30T00:00:00+00:00')
    >>> at("now() - interval '1 month'")
    '2026-02-28T15:30:00+00:00'
    """
    if isinstance(node, exp.Paren):
        return evaluate_moment(node.this, now)
    if isinstance(node, exp.CurrentDate):
        return _truncated(now, "day")
    if _clock(node):
        return now
    if isinstance(node, exp.TimestampTrunc | exp.DateTrunc):
        unit = node.unit.name.lower() if node.unit is not None else ""
        return _truncated(evaluate_moment(node.this, now), unit)
    if isinstance(node, exp.Cast) and node.to.this in (exp.DType.DATE, exp.DType.DATE32):
        return _truncated(evaluate_moment(node.this, now), "day")
    if isinstance(node, exp.Cast):
        return evaluate_moment(node.this, now)
    if isinstance(node, exp.Add | exp.Sub):
        sign = 1 if isinstance(node, exp.Add) else -1
        moment = evaluate_moment(node.this, now)
        by = node.expression
        if isinstance(by, exp.Interval):
            count, unit = _interval(by)
            return _moved(moment, sign * count, unit)
        if isinstance(by, exp.Literal) and not by.is_string and by.this.isdigit():
            return _moved(moment, sign * int(by.this), "day")  # a date plus days
    raise SqlError(UNSUPPORTED, f"{node.sql('postgres')[:200]}: a time computed from the clock "
                   "is now(), current_date, date_trunc of them and +/- INTERVAL 'n unit'")


def _floor(instant: dt.datetime, step: dt.timedelta) -> dt.datetime:
    """The last value of the column's resolution at or before ``instant``: a strict bound
    moves from there by one step (``> 03.5`` is ``>= 04`` at whole seconds).

    >>> str(_floor(dt.datetime(2026, 3, 1, 0, 0, 3, 500000), dt.timedelta(seconds=1)))
    '2026-03-01 00:00:03'
    """
    if step >= dt.timedelta(days=1):
        return instant.replace(hour=0, minute=0, second=0, microsecond=0)
    micros = step // dt.timedelta(microseconds=1)
    return instant - dt.timedelta(microseconds=(instant.second * 1_000_000
                                                + instant.microsecond) % micros)


def _instant(value: object) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None) if value.tzinfo is None else value
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    try:
        return dt.datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise SqlError("22007", f"invalid input syntax for type timestamp: {value!r}") from None


@dataclass(frozen=True, slots=True)
class Bound:
    """A statement's query with its parameters bound."""

    body: dict[str, Any]
    #: more rows than the limit is an error (the statement did not bound its rows itself)
    strict: bool
    #: ``LIMIT 0``: no rows (the query is still checked and run)
    empty: bool


def bind(translated: Translated, values: list[object], now: dt.datetime | None = None) -> Bound:
    """The body with every parameter (and bound of the time column) replaced by its value;
    times computed from the clock are evaluated at ``now`` (aware, in the session's zone;
    default: the present, UTC)."""
    token = _NOW.set(now)
    try:
        return _bind(translated, values)
    finally:
        _NOW.reset(token)


def _bind(translated: Translated, values: list[object]) -> Bound:

    def leaf(node: dict[str, Any]) -> dict[str, Any]:
        items: list[object] = []
        for value in node.get("values", ()):
            if isinstance(value, Spread):  # x = ANY($1): the list's items
                listed = values[value.index] if value.index < len(values) else None
                if not isinstance(listed, list | tuple):
                    raise SqlError("42883", "= ANY($n) takes a list (an array) parameter")
                items += [_bound(v, values) for v in listed if v is not None]
            else:
                items.append(_bound(value, values))
        if node["op"] in (LIKE, NOT_LIKE):
            op, items = _like(node["member"], items[0])
            if node["op"] == NOT_LIKE:
                op = _negated({"member": node["member"], "op": op})["op"]
            return {**node, "op": op, "values": items}
        if "values" in node and not items:
            raise SqlError(UNSUPPORTED, f"the list compared with {node['member']} is empty")
        return {**node, "values": items} if "values" in node else node

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if "member" in node and "op" in node:
                return leaf(node)
            return {k: None if k in ("limit", "offset") and isinstance(v, Param)
                    and v.index < len(values) and values[v.index] is None  # LIMIT NULL
                    else walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, Param | After | Naive | Moment):
            return _bound(node, values)
        return node

    body: dict[str, Any] = walk(translated.body)
    if body.get("offset", 0) is None:
        del body["offset"]
    strict, empty = not translated.limited, translated.empty
    limit = body.get("limit")
    if limit is None or (isinstance(limit, int) and limit > translated.max_rows):
        # no LIMIT (or NULL, ALL, more than an answer may have): all rows, or an error
        body["limit"], strict = translated.max_rows, True
    elif limit == 0:
        body["limit"], empty = 1, True
    return Bound(body, strict, empty)


def parameter_types(translated: Translated, count: int) -> list[PgType]:
    return [translated.parameters.get(i, TEXT) for i in range(count)]

