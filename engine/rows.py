"""Rows sent for ingestion, checked against the source table's column types before anything is
inserted: a batch with one bad row is rejected whole, naming the row and the field.

Values arrive as JSON values or as CSV text (``text=True``: every value is a string, the empty
string is NULL for Nullable columns).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from uuid import UUID

from engine.clickhouse import base_type
from semantic.errors import FieldError

MAX_ROWS = 1_000_000


class RowError(FieldError):
    """A row of a batch is invalid; ``field`` is ``rows[i].column`` (``rows[i]`` for the row)."""

    code = "invalid_rows"


_INT = re.compile(r"^(U?)Int(8|16|32|64|128|256)$")
_DATETIME = re.compile(r"^DateTime(64)?(\(.*\))?$")


def _integer(type_name: str) -> Callable[[object, bool], object]:
    match = _INT.match(type_name)
    assert match is not None
    unsigned, bits = match.group(1) == "U", int(match.group(2))
    low, high = (0, 2**bits - 1) if unsigned else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)

    def convert(value: object, text: bool) -> object:
        if text and isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise ValueError(f"expected an integer ({type_name}), got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected an integer ({type_name}), got {value!r}")
        if not low <= value <= high:
            raise ValueError(f"{value} is out of range for {type_name} ({low}..{high})")
        return value
    return convert


def _float(value: object, text: bool) -> object:
    if text and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"expected a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {value!r}")
    return float(value)


def _string(value: object, text: bool) -> object:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


_ENUM_NAME = re.compile(r"'((?:[^'\\]|\\.)*)'\s*=")


def _enum(type_name: str) -> Callable[[object, bool], object]:
    """A value of ``Enum8('a' = 1, ...)``: one of its names."""
    names = [re.sub(r"\\(.)", r"\1", n) for n in _ENUM_NAME.findall(type_name)]

    def convert(value: object, text: bool) -> object:
        if not isinstance(value, str) or value not in names:
            raise ValueError(f"expected one of {', '.join(map(repr, names))}, got {value!r}")
        return value
    return convert


def _boolean(value: object, text: bool) -> object:
    if text and isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _date(value: object, text: bool) -> object:
    if isinstance(value, date) and not isinstance(value, datetime):  # from a typed file
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a date 'YYYY-MM-DD', got {value!r}")
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"expected a date 'YYYY-MM-DD', got {value!r}") from None


def _datetime(value: object, text: bool) -> object:
    """ISO 8601 (naive = UTC) or seconds since the epoch."""
    if text and isinstance(value, str) and re.fullmatch(r"\s*-?\d+(\.\d+)?\s*", value):
        value = float(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, datetime):  # from a typed file
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value
    if not isinstance(value, str):
        raise ValueError(f"expected a timestamp (ISO 8601 or epoch seconds), got {value!r}")
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("expected a timestamp like '2026-01-01 12:00:00' or "
                         f"'2026-01-01T12:00:00Z' (naive = UTC), got {value!r}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _decimal(value: object, text: bool) -> object:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected a decimal number, got {value!r}")
    try:
        return Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"expected a decimal number, got {value!r}") from None


def _uuid(value: object, text: bool) -> object:
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        raise ValueError(f"expected a UUID, got {value!r}") from None


def converter(type_name: str) -> Callable[[object, bool], object]:
    """Checks and converts one value for a column type; raises ``ValueError``."""
    nullable = type_name.startswith(("Nullable(", "LowCardinality(Nullable("))
    base = base_type(type_name)
    if _INT.match(base):
        convert = _integer(base)
    elif base.startswith("Float"):
        convert = _float
    elif base.startswith("Enum"):
        convert = _enum(base)
    elif base == "String" or base.startswith("FixedString("):
        convert = _string
    elif base == "Bool":
        convert = _boolean
    elif base in ("Date", "Date32"):
        convert = _date
    elif _DATETIME.match(base):
        convert = _datetime
    elif base.startswith("Decimal"):
        convert = _decimal
    elif base == "UUID":
        convert = _uuid
    else:  # arrays, maps, tuples, IPs...: ClickHouse checks them when the batch is inserted
        def convert(value: object, text: bool) -> object:
            return value

    def check(value: object, text: bool) -> object:
        if value is None or (text and value == "" and nullable):
            if nullable:
                return None
            raise ValueError(f"null is not allowed: the column is {type_name}")
        return convert(value, text)
    return check


def check_rows(columns: Mapping[str, str], rows: Sequence[object], text: bool = False,
               row_names: Sequence[str] | None = None) -> list[list[object]]:
    """Every row as a list of values in ``columns`` order, or ``RowError`` for the first bad
    row. Each row is an object with every column (Nullable ones may be omitted)."""
    if not rows:
        raise RowError("rows", "the batch has no rows")
    if len(rows) > MAX_ROWS:
        raise RowError("rows", f"a batch holds at most {MAX_ROWS:,} rows; split it")
    converters = {name: converter(type_name) for name, type_name in columns.items()}
    optional = {n for n, t in columns.items() if t.startswith(("Nullable(",
                                                              "LowCardinality(Nullable("))}
    checked = []
    for index, row in enumerate(rows):
        where = row_names[index] if row_names else f"rows[{index}]"
        if not isinstance(row, dict):
            raise RowError(where, f"{where}: a row is an object of column: value")
        for name in row:
            if name not in columns:
                raise RowError(f"{where}.{name}", f"{where}: unknown column '{name}'; the "
                               f"table has {', '.join(columns)}")
        values: list[object] = []
        for name, convert in converters.items():
            if name not in row:
                if name in optional:
                    values.append(None)
                    continue
                raise RowError(f"{where}.{name}", f"{where}: column '{name}' is missing")
            try:
                values.append(convert(row[name], text))
            except ValueError as exc:
                raise RowError(f"{where}.{name}", f"{where}, column '{name}': {exc}") from None
        checked.append(values)
    return checked
