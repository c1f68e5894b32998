"""ClickHouse types: parsing them, their base type, how a value of each is written, and the
instants a time column of each can hold."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

from sqlglot import exp


def data_type(text: str) -> exp.DataType:
    """Parse a ClickHouse type; built with the dialect so ``String`` stays non-nullable.

    >>> data_type("AggregateFunction(uniq, String)").sql(dialect="clickhouse")
    'AggregateFunction(uniq, String)'
    """
    return _parse_type(text).copy()


@lru_cache(maxsize=512)
def _parse_type(text: str) -> exp.DataType:
    # Types come from the model and the warehouse, so the cache stays small; parsing is the
    # dearest step of binding a filter value.
    return exp.DataType.build(text, dialect="clickhouse")


FLOAT_TYPES = ("Float32", "Float64", "Nullable(Float32)", "Nullable(Float64)")


def base_type(type_name: str) -> str:
    """``LowCardinality(Nullable(DateTime))`` -> ``DateTime``, in any nesting order."""
    while type_name.startswith(("Nullable(", "LowCardinality(")):
        type_name = type_name[type_name.index("(") + 1:-1]
    return type_name


def is_date_type(type_name: str) -> bool:
    """A calendar-day type (``Date``/``Date32``), as opposed to an instant (``DateTime``)."""
    return base_type(type_name) in ("Date", "Date32")


#: integer types -> the values they hold (a bound filter value must fit its column's type)
INTEGER_RANGES: dict[str, tuple[int, int]] = {
    **{f"UInt{bits}": (0, 2**bits - 1) for bits in (8, 16, 32, 64, 128, 256)},
    **{f"Int{bits}": (-(2**(bits - 1)), 2**(bits - 1) - 1) for bits in (8, 16, 32, 64, 128, 256)},
}
#: types whose values a client writes as strings (a number compared with them is a mistake)
STRING_TYPE_PREFIXES = ("String", "FixedString(", "Enum8(", "Enum16(", "UUID", "IPv4", "IPv6")


def value_kind(type_name: str) -> str:
    """How a filter value for a column of this type is written: ``integer``, ``number``,
    ``string``, ``date`` (``YYYY-MM-DD``), ``datetime`` or ``other``.

    >>> [value_kind(t) for t in ("LowCardinality(String)", "UInt8", "Decimal(9, 2)", "Date32")]
    ['string', 'integer', 'number', 'date']
    """
    base = base_type(type_name)
    if base in INTEGER_RANGES:
        return "integer"
    if base.startswith(("Float", "Decimal", "BFloat16")):
        return "number"
    if base.startswith(STRING_TYPE_PREFIXES):
        return "string"
    if base in ("Date", "Date32"):
        return "date"
    if base.startswith("DateTime"):
        return "datetime"
    return "other"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def time_span(type_name: str) -> tuple[datetime, datetime]:
    """The instants ``[first, last)`` a time range may name on a time column of this type.

    ``DateTime64`` holds 1900 to 2299; ``DateTime`` (and days, which are compared as
    ``DateTime``) 1970 to 2106-02-07. The end is held back to a year boundary before the
    type's last instant, so rounding a range out to whole buckets never leaves the type.

    >>> [t.year for t in time_span("DateTime('UTC')")]
    [1970, 2106]
    """
    if base_type(type_name).startswith("DateTime64"):
        return datetime(1900, 1, 1, tzinfo=UTC), datetime(2299, 1, 1, tzinfo=UTC)
    return _EPOCH, datetime(2106, 1, 1, tzinfo=UTC)


def nullable(type_name: str) -> str:
    """The type ``toNullable`` gives a value of ``type_name`` (what a LEFT JOIN's columns have).

    Arrays, maps and the like cannot be Nullable: they stay as they are (a row without a match
    gets an empty one).

    >>> nullable("LowCardinality(String)"), nullable("Nullable(Int64)"), nullable("UInt8")
    ('LowCardinality(Nullable(String))', 'Nullable(Int64)', 'Nullable(UInt8)')
    >>> nullable("Array(String)")
    'Array(String)'
    """
    if type_name.startswith("Nullable(") or type_name.startswith("LowCardinality(Nullable("):
        return type_name
    if not can_be_nullable(type_name):
        return type_name
    if type_name.startswith("LowCardinality("):
        return f"LowCardinality(Nullable({type_name[len('LowCardinality('):-1]}))"
    return f"Nullable({type_name})"


#: types ClickHouse cannot wrap in Nullable
NOT_NULLABLE_PREFIXES = ("Array(", "Map(", "Nested(", "Variant(", "Dynamic", "JSON", "Object(")


def can_be_nullable(type_name: str) -> bool:
    return not type_name.startswith(NOT_NULLABLE_PREFIXES)


#: bytes a value of each fixed-width type takes in a column
_WIDTHS: dict[str, int] = {
    **{f"{kind}{bits}": bits // 8 for kind in ("UInt", "Int")
       for bits in (8, 16, 32, 64, 128, 256)},
    "Float32": 4, "Float64": 8, "BFloat16": 2, "Bool": 1, "Date": 2, "Date32": 4,
    "DateTime": 4, "DateTime64": 8, "UUID": 16, "IPv4": 4, "IPv6": 16, "Enum8": 1, "Enum16": 2,
    "Decimal32": 4, "Decimal64": 8, "Decimal128": 16, "Decimal256": 32,
}


def _arguments(type_name: str) -> list[str]:
    """The top-level arguments of a parameterized type: ``T(a, B(c, d))`` -> ``a``,
    ``B(c, d)``."""
    inner = type_name[type_name.index("(") + 1:-1]
    found, depth, start = [], 0, 0
    for i, char in enumerate(inner):
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            found.append(inner[start:i].strip())
            start = i + 1
    return [*found, inner[start:].strip()]


def fixed_width(type_name: str) -> int | None:
    """Bytes each value of a fixed-width type takes in a column (a Nullable one: one more,
    its null mark); None where values vary (strings, arrays, aggregate states) or are
    dictionary-encoded (``LowCardinality``).

    >>> [fixed_width(t) for t in ("UInt64", "Nullable(Date)", "DateTime('UTC')", "String")]
    [8, 3, 4, None]
    >>> fixed_width("SimpleAggregateFunction(sum, Decimal(18, 2))"), fixed_width("FixedString(3)")
    (8, 3)
    """
    if type_name.startswith("Nullable("):
        inner = fixed_width(type_name[len("Nullable("):-1])
        return inner + 1 if inner is not None else None
    if type_name.startswith("SimpleAggregateFunction("):
        return fixed_width(_arguments(type_name)[-1])
    if type_name.startswith("FixedString("):
        return int(_arguments(type_name)[0])
    name = type_name.split("(", 1)[0]
    if name == "Decimal":
        precision = int(_arguments(type_name)[0])
        return next(size for limit, size in ((9, 4), (18, 8), (38, 16), (76, 32))
                    if precision <= limit)
    return _WIDTHS.get(name)
