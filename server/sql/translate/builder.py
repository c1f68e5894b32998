"""What a statement's translation is built from: the values it holds until bound (parameters,
times from the clock, bounds past a value), the answer's columns, the builder of one SELECT
(its table, grain, zone, parameters) and the checks on values and casts."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from server.sql.errors import (
    SYNTAX_ERROR,
    TOO_MANY_ROWS,
    UNDEFINED_COLUMN,
    UNDEFINED_TABLE,
    UNSUPPORTED,
    SqlError,
)
from server.sql.schema import MEASURE, METRIC, TIME, Column, Table
from server.sql.types import (
    FLOAT8,
    INT8,
    NUMERIC,
    SQL_NAMES,
    TIMESTAMP,
    PgType,
)

#: the most parameters a statement may have (the protocol counts them in 16 bits)
MAX_PARAMETERS = 32767


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
class Item:
    kind: str  # dimension, grain or measure
    member: str
    name: str
    type: PgType
    key: str  # the expression's SQL, to match GROUP BY and ORDER BY items
    grain: str | None = None
    #: the part of the bucket shown (``year``: its number), None for the bucket itself
    part: str | None = None


@dataclass(slots=True)
class Builder:
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
        while isinstance(node, exp.Cast) and keeps_values(node):
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
                           f"{self.table.name}", hint=columns_hint(self.table))
        return found

    def value(self, node: exp.Expression, column: Column) -> object:
        """A literal or parameter compared with ``column``."""
        if isinstance(node, exp.Placeholder | exp.Parameter):
            index = parameter_index(node)
            self.parameters.setdefault(index, column.type if column.kind != METRIC else FLOAT8)
            return Param(index)
        if isinstance(node, exp.Cast) and isinstance(node.this, exp.Placeholder | exp.Parameter):
            # $1::timestamptz: the type the client binds it as
            declared = SQL_NAMES.get(node.to.sql("postgres").lower())
            if declared is not None:
                self.parameters.setdefault(parameter_index(node.this), declared)
            value = self.value(node.this, column)
            return value if declared is not TIMESTAMP else Naive(value)
        if isinstance(node, exp.StrToTime | exp.StrToDate):
            _check_format(node)
            return self.value(node.this, column)
        if isinstance(node, exp.Cast | exp.TsOrDsToDate):
            value = self.value(node.this, column)
            zoned = isinstance(node, exp.Cast) and node.to.this in (
                exp.DType.TIMESTAMPTZ, exp.DType.TIMESTAMPLTZ)
            return value if zoned or not isinstance(value, str) else naive_time(value)
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
                return naive_time(node.this) if column.kind == TIME else (
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


def naive_time(text: str) -> str:
    """A time literal compared with the time column (a timestamp without zone) loses any
    offset, as in PostgreSQL.

    >>> naive_time("2026-03-01 00:00:00+05:00"), naive_time("2026-03-01T10:00Z"), naive_time("x-1")
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


def keeps_values(node: exp.Cast, typed: PgType | None = None) -> bool:
    """Whether a cast leaves its values as they are (``x::text`` of text, ``SUM(x)::numeric``,
    ``n::bigint`` of an integer); one that rounds or reformats (``::int`` of a float) does
    not."""
    target = node.to.sql("postgres").lower()
    if typed is None:
        return target in _KEEPING["S"]
    if typed in (INT8, NUMERIC) and target in ("bigint", "int8"):
        return True
    return target in _KEEPING.get(typed.category, ())


def parameter_index(node: exp.Expression) -> int:
    name = node.name if isinstance(node, exp.Parameter) else node.this
    if name is None or not str(name).isdigit() or int(name) < 1:
        raise SqlError(SYNTAX_ERROR, "write parameters as $1, $2, ...")
    if int(name) > MAX_PARAMETERS:
        raise SqlError(TOO_MANY_ROWS, f"a statement has at most {MAX_PARAMETERS} parameters")
    return int(name) - 1


def columns_hint(table: Table) -> str:
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


_CLOCK = (exp.CurrentTimestamp, exp.CurrentDate, exp.Localtimestamp, exp.CurrentDatetime)


def from_clock(node: exp.Expr) -> bool:
    return isinstance(node, _CLOCK) or (isinstance(node, exp.Anonymous) and
                                        str(node.this).lower() == "now")


def _relative(node: exp.Expression) -> bool:
    """Whether a value is computed from the clock."""
    return any(from_clock(n) for n in node.walk())
