"""Rows sent for ingestion, checked against the source table's column types before anything is
inserted: a batch with one bad row is rejected whole, naming the row and the field.

Values arrive as JSON values or as CSV text (``text=True``: every value is a string, the empty
string is NULL for Nullable columns). Each is checked against what its column can hold
(integer and DateTime ranges, FixedString lengths; NaN and infinities only when allowed), so
a batch that passes the check (``dry_run``) is one ClickHouse accepts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from uuid import UUID

from engine.dialect.types import base_type
from semantic.errors import FieldError

MAX_ROWS = 100_000

#: what ClickHouse's date and time types can hold (inclusive), as UTC instants or dates
_DATETIME_RANGE = (datetime(1970, 1, 1, tzinfo=UTC), datetime(2106, 2, 7, 6, 28, 15, tzinfo=UTC))
_DATETIME64_RANGE = (datetime(1900, 1, 1, tzinfo=UTC),
                     datetime(2299, 12, 31, 23, 59, 59, 999999, tzinfo=UTC))
_DATE_RANGE = (date(1970, 1, 1), date(2149, 6, 6))
_DATE32_RANGE = (date(1900, 1, 1), date(2299, 12, 31))
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FLOAT32_MAX = 3.4028234663852886e38


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


def _float(type_name: str, allow_nonfinite: bool) -> Callable[[object, bool], object]:
    single = type_name == "Float32"

    def convert(value: object, text: bool) -> object:
        if text and isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ValueError(f"expected a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"expected a number, got {value!r}")
        try:
            number = float(value)
        except OverflowError:  # an integer beyond any float
            raise ValueError(f"{value} is out of range for {type_name}") from None
        if not math.isfinite(number):
            if not allow_nonfinite:
                raise ValueError(f"{value!r} is not a finite number (NaN and infinities are "
                                 "refused: they would turn every sum over the column into "
                                 "NaN; SEMANTIC_INGEST_ALLOW_NONFINITE=1 accepts them)")
        elif single and abs(number) > _FLOAT32_MAX:
            raise ValueError(f"{value} is out of range for Float32")
        return number
    return convert


def _string(value: object, text: bool) -> object:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _fixed_string(type_name: str) -> Callable[[object, bool], object]:
    size = int(type_name[len("FixedString("):-1])

    def convert(value: object, text: bool) -> object:
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {value!r}")
        if len(value.encode()) > size:
            raise ValueError(f"{len(value.encode())} bytes do not fit {type_name}")
        return value
    return convert


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


def _date(type_name: str) -> Callable[[object, bool], object]:
    low, high = _DATE32_RANGE if type_name == "Date32" else _DATE_RANGE

    def convert(value: object, text: bool) -> object:
        if isinstance(value, date) and not isinstance(value, datetime):  # from a typed file
            return value
        if not isinstance(value, str):
            raise ValueError(f"expected a date 'YYYY-MM-DD', got {value!r}")
        try:
            day = date.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"expected a date 'YYYY-MM-DD', got {value!r}") from None
        if not low <= day <= high:
            raise ValueError(f"{value!r} is out of range for {type_name} ({low} to {high})")
        return day
    return convert


def _instant(value: object, text: bool) -> datetime:
    """ISO 8601 (naive = UTC) or seconds since the epoch, as an aware datetime."""
    if text and isinstance(value, str) and re.fullmatch(r"\s*-?\d+(\.\d+)?\s*", value):
        value = float(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return _EPOCH + timedelta(seconds=value)
        except (OverflowError, ValueError):  # NaN, infinities, 1e30: beyond any datetime
            raise ValueError(f"{value!r} seconds since the epoch is not a representable "
                             "time") from None
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


def _datetime(type_name: str) -> Callable[[object, bool], object]:
    low, high = _DATETIME64_RANGE if type_name.startswith("DateTime64") else _DATETIME_RANGE

    def convert(value: object, text: bool) -> object:
        instant = _instant(value, text)
        try:
            inside = low <= instant <= high
        except OverflowError:  # an offset pushing a time near year 1 or 9999 past the limits
            inside = False
        if not inside:
            raise ValueError(f"{value!r} is out of range for {type_name} "
                             f"({low:%Y-%m-%d %H:%M:%S} to {high:%Y-%m-%d %H:%M:%S} UTC)")
        return instant
    return convert


def _decimal(value: object, text: bool) -> object:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError(f"expected a decimal number, got {value!r}")
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"expected a decimal number, got {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a finite number (a Decimal column holds none)")
    return number


def _uuid(value: object, text: bool) -> object:
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        raise ValueError(f"expected a UUID, got {value!r}") from None


def converter(type_name: str,
              allow_nonfinite: bool = False) -> Callable[[object, bool], object]:
    """Checks and converts one value for a column type; raises ``ValueError``.

    >>> check = converter("DateTime")
    >>> check("2026-01-01 12:00:00", False)
    datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.timezone.utc)
    >>> check(-1, False)
    Traceback (most recent call last):
    ...
    ValueError: -1 is out of range for DateTime (1970-01-01 00:00:00 to 2106-02-07 06:28:15 UTC)
    """
    nullable = type_name.startswith(("Nullable(", "LowCardinality(Nullable("))
    base = base_type(type_name)
    if _INT.match(base):
        convert = _integer(base)
    elif base.startswith("Float"):
        convert = _float(base, allow_nonfinite)
    elif base.startswith("Enum"):
        convert = _enum(base)
    elif base == "String":
        convert = _string
    elif base.startswith("FixedString("):
        convert = _fixed_string(base)
    elif base == "Bool":
        convert = _boolean
    elif base in ("Date", "Date32"):
        convert = _date(base)
    elif _DATETIME.match(base):
        convert = _datetime(base)
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
               row_names: Sequence[str] | None = None, max_rows: int = MAX_ROWS,
               allow_nonfinite: bool = False) -> list[list[object]]:
    """Every row as a list of values in ``columns`` order, or ``RowError`` for the first bad
    row. Each row is an object with every column (Nullable ones may be omitted)."""
    if not rows:
        raise RowError("rows", "the batch has no rows")
    if len(rows) > max_rows:
        raise RowError("rows", f"the batch has {len(rows):,} rows; a batch holds at most "
                       f"{max_rows:,} (SEMANTIC_MAX_BATCH_ROWS): split it")
    converters = {name: converter(type_name, allow_nonfinite)
                  for name, type_name in columns.items()}
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
