"""PostgreSQL types of the SQL interface: the OIDs answers are described with, the type of each
ClickHouse type, and values encoded in the text and binary result formats (and bound
parameters decoded from them).

Only the types an answer can hold are here: booleans, integers, floats, numerics, text, dates,
timestamps (with and without a zone), and the catalog's ``oid``/``name``/``char``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any


@dataclass(frozen=True, slots=True)
class PgType:
    name: str
    oid: int
    size: int  # typlen: -1 for variable length
    #: pg_type's one-letter category (N numeric, S string, D date/time, B boolean, U user)
    category: str


BOOL = PgType("bool", 16, 1, "B")
NAME = PgType("name", 19, 64, "S")
INT8 = PgType("int8", 20, 8, "N")
INT2 = PgType("int2", 21, 2, "N")
INT4 = PgType("int4", 23, 4, "N")
TEXT = PgType("text", 25, -1, "S")
OID = PgType("oid", 26, 4, "N")
FLOAT4 = PgType("float4", 700, 4, "N")
FLOAT8 = PgType("float8", 701, 8, "N")
VARCHAR = PgType("varchar", 1043, -1, "S")
DATE = PgType("date", 1082, 4, "D")
TIMESTAMP = PgType("timestamp", 1114, 8, "D")
TIMESTAMPTZ = PgType("timestamptz", 1184, 8, "D")
NUMERIC = PgType("numeric", 1700, -1, "N")
CHAR = PgType("char", 18, 1, "S")

TYPES: tuple[PgType, ...] = (BOOL, NAME, INT8, INT2, INT4, TEXT, OID, FLOAT4, FLOAT8, VARCHAR,
                             DATE, TIMESTAMP, TIMESTAMPTZ, NUMERIC, CHAR)
#: the array of each type (parameters of ``x = ANY($1)``), by the element's oid
ARRAYS: dict[int, PgType] = {
    element.oid: PgType(f"_{element.name}", oid, -1, "A") for element, oid in (
        (BOOL, 1000), (INT2, 1005), (INT4, 1007), (TEXT, 1009), (VARCHAR, 1015), (INT8, 1016),
        (FLOAT4, 1021), (FLOAT8, 1022), (TIMESTAMP, 1115), (DATE, 1182), (TIMESTAMPTZ, 1185),
        (NUMERIC, 1231))}
ELEMENTS = {array.oid: element for element, array in
            ((t, ARRAYS[t.oid]) for t in TYPES if t.oid in ARRAYS)}
BY_OID = {t.oid: t for t in (*TYPES, *ARRAYS.values())}


def array_of(element: PgType) -> PgType:
    return ARRAYS.get(element.oid, ARRAYS[TEXT.oid])


#: the names a client may write a parameter's type with (``$1::int``), for decoding
SQL_NAMES = {"boolean": BOOL, "bigint": INT8, "integer": INT4, "smallint": INT2,
             "double precision": FLOAT8, "real": FLOAT4, "character varying": VARCHAR,
             "timestamp without time zone": TIMESTAMP, "timestamp with time zone": TIMESTAMPTZ,
             **{t.name: t for t in TYPES}}

_WRAPPERS = re.compile(r"^(?:Nullable|LowCardinality)\((.*)\)$")


def clickhouse_type(name: str) -> PgType:
    """The PostgreSQL type a ClickHouse type is answered as.

    >>> [clickhouse_type(t).name for t in ("LowCardinality(Nullable(String))", "UInt32",
    ...  "UInt64", "Int64", "Float32", "Decimal(18, 2)", "Date32", "DateTime('UTC')", "Bool")]
    ['text', 'int8', 'numeric', 'int8', 'float8', 'numeric', 'date', 'timestamp', 'bool']
    """
    while (inner := _WRAPPERS.match(name)) is not None:
        name = inner.group(1)
    if name.startswith(("Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32")):
        return INT8
    if name.startswith(("UInt64", "Int128", "UInt128", "Int256", "UInt256", "Decimal")):
        return NUMERIC
    if name.startswith("Float"):
        return FLOAT8
    if name.startswith("Date32") or name == "Date":
        return DATE
    if name.startswith("DateTime"):
        return TIMESTAMP
    if name == "Bool":
        return BOOL
    return TEXT


#: the SQL name ``format_type`` shows for a type, where it differs from the type's own
_SHOWN = {v.oid: k for k, v in SQL_NAMES.items()
          if " " in k or k in ("boolean", "bigint", "integer", "smallint")}


def format_type(oid: int) -> str:
    """``pg_catalog.format_type``: the type's SQL name.

    >>> format_type(20), format_type(1114), format_type(25)
    ('bigint', 'timestamp without time zone', 'text')
    """
    return _SHOWN.get(oid) or (BY_OID[oid].name if oid in BY_OID else "unknown")


# -- text format --------------------------------------------------------------------------

def _text_float(value: Any) -> bytes:
    number = float(value)
    if math.isnan(number):
        return b"NaN"
    if math.isinf(number):
        return b"Infinity" if number > 0 else b"-Infinity"
    return repr(number).encode()


def _text_timestamp(value: Any) -> bytes:
    if isinstance(value, dt.datetime):
        naive: dt.datetime = value.replace(tzinfo=None)
        return naive.isoformat(" ").encode()
    if isinstance(value, dt.date):
        return f"{value.isoformat()} 00:00:00".encode()
    return str(value).encode()


def _text_timestamptz(value: Any) -> bytes:
    if isinstance(value, dt.datetime):
        aware: dt.datetime = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        text = aware.isoformat(" ")
        return (text[:-3] if text.endswith(":00") else text).encode()
    return _text_timestamp(value)


def _text_date(value: Any) -> bytes:
    if isinstance(value, dt.datetime):
        value = value.date()
    return value.isoformat().encode() if isinstance(value, dt.date) else str(value).encode()


def _text_bool(value: Any) -> bytes:
    if isinstance(value, str):
        return b"t" if value.lower() in ("t", "true", "1", "yes") else b"f"
    return b"t" if value else b"f"


def _text_numeric(value: Any) -> bytes:
    if isinstance(value, float):
        return _text_float(value)
    return str(value).encode()


def _text_plain(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


TEXT_ENCODERS: dict[int, Callable[[Any], bytes]] = {
    BOOL.oid: _text_bool, FLOAT4.oid: _text_float, FLOAT8.oid: _text_float,
    NUMERIC.oid: _text_numeric, DATE.oid: _text_date, TIMESTAMP.oid: _text_timestamp,
    TIMESTAMPTZ.oid: _text_timestamptz,
}

# -- binary format ------------------------------------------------------------------------

_EPOCH = dt.datetime(2000, 1, 1)
_EPOCH_DATE = dt.date(2000, 1, 1)


def _micros(value: dt.datetime) -> int:
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _binary_timestamp(value: Any) -> bytes:
    if isinstance(value, dt.datetime):
        value = value.replace(tzinfo=None)
    elif isinstance(value, dt.date):
        value = dt.datetime.combine(value, dt.time())
    return struct.pack("!q", _micros(value))


def _binary_timestamptz(value: Any) -> bytes:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return _binary_timestamp(value)


def _binary_date(value: Any) -> bytes:
    if isinstance(value, dt.datetime):
        value = value.date()
    return struct.pack("!i", (value - _EPOCH_DATE).days)


def _binary_numeric(value: Any) -> bytes:
    """PostgreSQL's numeric: base-10000 digits, a weight, a sign and a display scale."""
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    if number.is_nan() or (isinstance(value, float) and not math.isfinite(value)):
        return struct.pack("!hhhh", 0, 0, 0xC000, 0)
    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    scale = max(0, -exponent)
    text = "".join(map(str, digits)).rjust(scale, "0")
    # pad to whole base-10000 groups on both sides of the decimal point
    integer = text[:len(text) + exponent] if exponent < 0 else text + "0" * exponent
    fraction = text[len(text) + exponent:] if exponent < 0 else ""
    integer = integer.lstrip("0")
    integer = "0" * (-len(integer) % 4) + integer
    fraction = fraction + "0" * (-len(fraction) % 4)
    groups = [int(integer[i:i + 4]) for i in range(0, len(integer), 4)]
    groups += [int(fraction[i:i + 4]) for i in range(0, len(fraction), 4)]
    weight = len(integer) // 4 - 1
    while groups and groups[-1] == 0:
        groups.pop()
    while groups and groups[0] == 0:
        groups.pop(0)
        weight -= 1
    if not groups:
        weight = 0
    return struct.pack(f"!hhhh{len(groups)}h", len(groups), weight,
                       0x4000 if sign else 0, scale, *groups)


#: numbers of a fixed width in the binary format: their ``struct`` layout and Python type
_FIXED: dict[int, tuple[struct.Struct, type[int] | type[float]]] = {
    INT2.oid: (struct.Struct("!h"), int), INT4.oid: (struct.Struct("!i"), int),
    OID.oid: (struct.Struct("!I"), int), INT8.oid: (struct.Struct("!q"), int),
    FLOAT4.oid: (struct.Struct("!f"), float), FLOAT8.oid: (struct.Struct("!d"), float)}


def _fixed_encoder(layout: struct.Struct, kind: type[int] | type[float]) -> Callable[[Any], bytes]:
    return lambda v: layout.pack(kind(v))


BINARY_ENCODERS: dict[int, Callable[[Any], bytes]] = {
    BOOL.oid: lambda v: b"\x01" if _text_bool(v) == b"t" else b"\x00",
    **{oid: _fixed_encoder(layout, kind) for oid, (layout, kind) in _FIXED.items()},
    NUMERIC.oid: _binary_numeric,
    DATE.oid: _binary_date,
    TIMESTAMP.oid: _binary_timestamp,
    TIMESTAMPTZ.oid: _binary_timestamptz,
    CHAR.oid: lambda v: str(v).encode()[:1],
}


def encode_value(value: Any, oid: int, binary: bool) -> bytes | None:
    """One value of a DataRow; None is SQL NULL (a NaN of a float is NaN, not NULL)."""
    if value is None:
        return None
    if binary:
        encoder = BINARY_ENCODERS.get(oid)
        if encoder is not None:
            return encoder(value)
        return _text_plain(value)
    return TEXT_ENCODERS.get(oid, _text_plain)(value)


# -- parameters ---------------------------------------------------------------------------

class ParameterError(ValueError):
    """A bound parameter that cannot be read as its declared type."""


def _text_array(text: str) -> list[str | None]:
    """A one-dimensional array literal's items.

    >>> _text_array('{a,"b c",NULL,d}')
    ['a', 'b c', None, 'd']
    """
    if not (text.startswith("{") and text.endswith("}")):
        raise ParameterError(f"an array parameter must read {{a,b,...}}, not {text[:50]!r}")
    items: list[str | None] = []
    body, index = text[1:-1], 0
    while index < len(body):
        if body[index] == '"':
            index += 1
            chars: list[str] = []
            while index < len(body) and body[index] != '"':
                if body[index] == "\\":
                    index += 1
                chars.append(body[index])
                index += 1
            items.append("".join(chars))
            index += 2  # the quote and the comma
        else:
            end = body.find(",", index)
            end = len(body) if end < 0 else end
            word = body[index:end]
            if word.startswith("{"):
                raise ParameterError("arrays of more than one dimension are not supported")
            items.append(None if word.upper() == "NULL" else word)
            index = end + 1
    return items


def _binary_array(data: bytes) -> list[Any]:
    dims, _, element = struct.unpack_from("!iii", data)
    if dims == 0:
        return []
    if dims != 1:
        raise ParameterError("arrays of more than one dimension are not supported")
    count = struct.unpack_from("!i", data, 12)[0]
    offset = 20
    items: list[Any] = []
    for _ in range(count):
        size = struct.unpack_from("!i", data, offset)[0]
        offset += 4
        if size < 0:
            items.append(None)
            continue
        items.append(decode_parameter(data[offset:offset + size], element, True))
        offset += size
    return items


def _binary_numeric_value(data: bytes) -> Decimal:
    count, weight, sign, scale = struct.unpack_from("!hhHh", data)
    if sign == 0xC000:
        return Decimal("NaN")
    digits = struct.unpack_from(f"!{count}h", data, 8)
    value = Decimal(0)
    for index, digit in enumerate(digits):
        value += Decimal(digit).scaleb(4 * (weight - index))
    value = -value if sign == 0x4000 else value
    return value.quantize(Decimal(1).scaleb(-scale)) if scale else value


def decode_parameter(data: bytes | None, oid: int, binary: bool) -> Any:
    """A bound parameter as the Python value it stands for in the statement."""
    if data is None:
        return None
    if oid in ELEMENTS:
        if binary:
            return _binary_array(data)
        element = ELEMENTS[oid].oid
        return [decode_parameter(v.encode(), element, False) if v is not None else None
                for v in _text_array(data.decode("utf-8"))]
    try:
        return _decode(data, oid, binary)
    except OverflowError:
        raise ParameterError(f"a {BY_OID[oid].name} parameter is out of range") from None


def _decode(data: bytes, oid: int, binary: bool) -> Any:
    if not binary:
        text = data.decode("utf-8")
        if oid in (INT2.oid, INT4.oid, INT8.oid, OID.oid):
            return int(text)
        if oid in (FLOAT4.oid, FLOAT8.oid, NUMERIC.oid):
            return Decimal(text) if oid == NUMERIC.oid else float(text)
        if oid in (DATE.oid, TIMESTAMP.oid, TIMESTAMPTZ.oid):
            return text
        if oid == BOOL.oid:
            return text.lower() in ("t", "true", "1", "yes", "on")
        return text
    try:
        fixed = _FIXED.get(oid)
        if fixed is not None:
            return fixed[0].unpack(data)[0]
        if oid == BOOL.oid:
            return data != b"\x00"
        if oid == DATE.oid:
            return _EPOCH_DATE + dt.timedelta(days=struct.unpack("!i", data)[0])
        if oid in (TIMESTAMP.oid, TIMESTAMPTZ.oid):
            moment = _EPOCH + dt.timedelta(microseconds=struct.unpack("!q", data)[0])
            return moment.replace(tzinfo=dt.UTC) if oid == TIMESTAMPTZ.oid else moment
        if oid == NUMERIC.oid:
            return _binary_numeric_value(data)
    except struct.error:
        raise ParameterError(f"a binary parameter of type {BY_OID[oid].name} has "
                             f"{len(data)} bytes") from None
    if oid in (TEXT.oid, VARCHAR.oid, NAME.oid, 0):
        return data.decode("utf-8")
    raise ParameterError(f"binary parameters of type oid {oid} are not supported; send "
                         "them as text")
