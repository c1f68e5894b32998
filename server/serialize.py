"""JSON values: ClickHouse results -> stable JSON types."""

from __future__ import annotations

import datetime as dt
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


def encode(payload: Any) -> bytes:
    return msgspec.json.encode(payload)
