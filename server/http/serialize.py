"""JSON values: ClickHouse results -> stable JSON types."""

from __future__ import annotations

import datetime as dt
import functools
import math
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec

_MAX_EXACT_FLOAT = 2**53


def json_value(value: Any) -> Any:
    """Convert one ClickHouse value to a JSON-friendly one.

    Floats holding whole numbers become integers (as ClickHouse's own JSON output shows them),
    NaN and infinities become null, dates become ISO strings.

    >>> json_value(247486808.0), json_value(2.5), json_value(float("nan"))
    (247486808, 2.5, None)
    >>> json_value(dt.date(2026, 1, 1))
    '2026-01-01'
    """
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if value.is_integer() and abs(value) < _MAX_EXACT_FLOAT:
            return int(value)
        return value
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return json_value(float(value))
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return value


#: value types msgspec encodes as we want them without conversion (dates: ISO 8601, as
#: ``date.isoformat`` writes them)
_PLAIN = frozenset({int, str, bool, type(None), dt.date})


def _float(value: float | None) -> float | int | None:
    if value is None or not math.isfinite(value):
        return None
    if value.is_integer() and abs(value) < _MAX_EXACT_FLOAT:
        return int(value)
    return value


def json_column(values: list[Any]) -> list[Any]:
    """A column of ClickHouse values as JSON values, converted only when a value needs it
    (counts, strings and dates, the common case, are returned as they are). A column holds
    one type (and nulls): its values are converted by that type's rule, without asking each
    value its type again.

    >>> json_column([1, 2]), json_column([2.0, 2.5, None])
    ([1, 2], [2, 2.5, None])
    >>> json_column([dt.datetime(2026, 1, 1, 12), None])
    ['2026-01-01T12:00:00', None]
    """
    kinds = set(map(type, values))
    if kinds <= _PLAIN:
        return values
    kinds.discard(type(None))
    if kinds == {float}:
        return [_float(value) for value in values]
    if kinds == {dt.datetime}:
        return [value.isoformat() if value is not None else None for value in values]
    return [json_value(value) for value in values]


def json_rows(names: tuple[str, ...], columns: tuple[list[Any], ...]) -> list[Any]:
    """Rows of JSON values, built column by column, which ``encode`` writes as JSON objects
    (keys in the order of ``names``).

    >>> encode(json_rows(("a", "b"), ([1, 2], [0.5, 3.0])))
    b'[{"a":1,"b":0.5},{"a":2,"b":3}]'
    """
    converted = [json_column(column) for column in columns]
    row = _row_type(names)
    if row is None or not converted:
        return [dict(zip(names, values, strict=True)) for values in zip(*converted, strict=True)]
    return list(map(row, *converted))


def json_object(names: tuple[str, ...], columns: tuple[list[Any], ...]) -> dict[str, Any]:
    """The first row as ``json_rows`` makes it (each value converted alike), or every name
    null when there is none: an answer of one object.

    >>> json_object(("n", "avg"), ([3], [2.0])), json_object(("n",), ([],))
    ({'n': 3, 'avg': 2}, {'n': None})
    """
    if not columns or not columns[0]:
        return dict.fromkeys(names)
    return dict(zip(names, [json_value(column[0]) for column in columns], strict=True))


@functools.lru_cache(maxsize=256)
def _row_type(names: tuple[str, ...]) -> Any:
    """A msgspec struct of one field per name, encoded under that name: made and encoded
    about five times as fast as a dict per row. None for repeated names (a dict keeps the
    last value of a repeated key) and for names msgspec does not rename to (quotes,
    backslashes, control characters)."""
    if len(set(names)) != len(names):
        return None
    fields = [f"f{i}" for i in range(len(names))]
    try:
        return msgspec.defstruct("Row", fields, rename=dict(zip(fields, names, strict=True)))
    except ValueError:
        return None


def encode(payload: Any) -> bytes:
    return msgspec.json.encode(payload)
