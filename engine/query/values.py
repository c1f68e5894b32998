"""Filter values checked against the type of what they are compared with, before any SQL.

A value ClickHouse cannot read as the column's type would fail the whole query in the engine
(or, worse, match nothing without a word): a number against a string dimension, ``300`` against
a ``UInt8``, a malformed date. Each is refused here with a message saying what was expected.
Strings given for numeric and date columns (query parameters of generated endpoints are all
strings) are read as the column's type.
"""

from __future__ import annotations

import ipaddress
import math
import re
import uuid
from datetime import date, datetime
from decimal import Decimal

from engine.dialect.types import INTEGER_RANGES, base_type, value_kind
from semantic.suggest import shown

_INTEGER = re.compile(r"[+-]?\d{1,80}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?")
_ENUM_LABEL = re.compile(r"'((?:[^'\\]|\\.)*)'\s*=")
_FIXED = re.compile(r"FixedString\((\d+)\)")
_DECIMAL = re.compile(r"Decimal(?:(32|64|128|256)\((\d+)\)|\((\d+)(?:,\s*(\d+))?\))")
#: digits of DecimalN(S)
_DECIMAL_DIGITS = {"32": 9, "64": 18, "128": 38, "256": 76}
#: the largest magnitude of the float types (beyond it ClickHouse cannot read the value)
_FLOAT_MAX = {"Float32": 3.4028234663852886e38, "BFloat16": 3.3895313892515355e38}


def _encodable(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"'{shown(text)}' is not valid Unicode (a lone surrogate?)") from None
    return text


def _number(value: object, type_name: str) -> float | int:
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValueError(f"'{shown(value)}' is not a number ({type_name})") from None
    if not isinstance(value, int | float):
        raise ValueError(f"expected a number ({type_name}), got {shown(value)}")
    try:
        finite = math.isfinite(float(value))
    except OverflowError:
        finite = False
    if not finite:
        raise ValueError(f"{shown(value)} is not a finite number ({type_name})")
    base = base_type(type_name)
    decimal = _DECIMAL.fullmatch(base)
    if decimal:
        bits, scale32, precision, scale = decimal.groups()
        digits = _DECIMAL_DIGITS[bits] if bits else int(precision)
        places = int(scale32 if bits else scale or 0)
        whole = digits - places
        if abs(float(value)) >= 10.0 ** whole:
            raise ValueError(f"{shown(value)} does not fit {base} (less than 1e{whole} in "
                             "magnitude)")
        # ClickHouse would cut the extra digits off, silently comparing with another value
        exponent = Decimal(str(value)).as_tuple().exponent
        if isinstance(exponent, int) and -exponent > places:
            raise ValueError(f"{shown(value)} has more decimal places than {base} holds "
                             f"({places})")
    if base in _FLOAT_MAX and abs(float(value)) > _FLOAT_MAX[base]:
        raise ValueError(f"{shown(value)} does not fit {base}")
    return value


def _integer(value: object, type_name: str) -> int:
    text = value.strip() if isinstance(value, str) else None
    if text is not None and _INTEGER.fullmatch(text):
        value = int(text)
    elif isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise ValueError(f"expected an integer ({type_name}), got {shown(value)}")
    low, high = INTEGER_RANGES[base_type(type_name)]
    if not low <= value <= high:
        raise ValueError(f"{shown(value)} does not fit {type_name} ({low} to {high})")
    return value


def _string(value: object, type_name: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string ({type_name}), got the number {shown(value)}; "
                         "write it in quotes if you mean the text")
    _encodable(value)
    base = base_type(type_name)
    fixed = _FIXED.fullmatch(base)
    if fixed and len(value.encode("utf-8")) > int(fixed.group(1)):
        raise ValueError(f"'{shown(value)}' is longer than {base} holds")
    if base.startswith("Enum"):
        labels = [label.replace("\\'", "'") for label in _ENUM_LABEL.findall(base)]
        if value not in labels:
            raise ValueError(f"'{shown(value)}' is not a value of {shown(base)}")
    try:
        if base == "UUID":
            uuid.UUID(value)
        elif base == "IPv4":
            ipaddress.IPv4Address(value)
        elif base == "IPv6":
            ipaddress.IPv6Address(value)
    except ValueError:
        raise ValueError(f"'{shown(value)}' is not a valid {base}") from None
    return value


def _temporal(value: object, type_name: str, kind: str) -> str:
    base = base_type(type_name)
    form = _DATE if kind == "date" else _DATETIME
    if not isinstance(value, str) or not form.fullmatch(value.strip()):
        example = "2026-01-31" if kind == "date" else "2026-01-31 12:00:00"
        raise ValueError(f"expected a {base} like '{example}', got {shown(value)}")
    text = value.strip()
    try:
        parsed = date.fromisoformat(text) if kind == "date" else \
            datetime.fromisoformat(text[:26])
    except ValueError:
        raise ValueError(f"'{shown(value)}' is not a valid {base}") from None
    precision = re.match(r"DateTime64\((\d+)", base)
    fraction = (text.rpartition(".")[2] if "." in text else "").rstrip("0")
    if kind == "datetime" and len(fraction) > (int(precision.group(1)) if precision else 0):
        # ClickHouse would cut the extra digits off, silently comparing with another instant
        raise ValueError(f"'{shown(value)}' has more fractional digits than {base} holds")
    wide = base in ("Date32",) or base.startswith("DateTime64")
    first, last = (1900, 2299) if wide else (1970, 2105 if kind == "datetime" else 2148)
    if not first <= parsed.year <= last:
        raise ValueError(f"'{shown(value)}' is outside what {base} holds "
                         f"(years {first} to {last})")
    if isinstance(parsed, datetime):  # as written (nanoseconds too), seconds always given
        day, _, clock = text.replace("T", " ").partition(" ")
        return f"{day} {clock}:00" if clock.count(":") == 1 else f"{day} {clock}"
    return parsed.isoformat()


def typed_value(value: object, type_name: str) -> object:
    """``value`` as a filter on a column of ClickHouse type ``type_name`` binds it, or
    ValueError saying what was expected.

    >>> typed_value("42", "UInt8"), typed_value("2026-01-31", "Date")
    (42, '2026-01-31')
    >>> typed_value(5, "String")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: expected a string (String), got the number 5; write it in quotes if you mean ...
    """
    if value is None or isinstance(value, bool | dict | list):
        raise ValueError("filter values must be strings or numbers (test for null with "
                         "'is_null')")
    kind = value_kind(type_name)
    if kind == "integer":
        return _integer(value, type_name)
    if kind == "number":
        return _number(value, type_name)
    if kind == "string":
        return _string(value, type_name)
    if kind in ("date", "datetime"):
        return _temporal(value, type_name, kind)
    if isinstance(value, str):
        return _encodable(value)
    return _number(value, type_name)


def measure_value(value: object) -> float | int:
    """A value compared with a measure (``HAVING``): a finite number."""
    if value is None or isinstance(value, bool | dict | list | str):
        raise ValueError(f"a measure is compared with a number, got {shown(value)}")
    return _number(value, "Float64")
