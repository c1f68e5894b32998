"""SELECTs on the embedded engine (chDB) run straight on a pooled client's own connection
(``EmbeddedClient``), with its answer decoded here (``read_native``) into the columns and
Python values clickhouse-connect's decoder gives.

This module imports no client library: ``server.warehouse.pool``, the one module that does,
hands it the client and the driver's parts it uses (``DriverParts``).
"""

from __future__ import annotations

import sys
import threading
from array import array
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any


def chdb_summary(result: Any) -> dict[str, Any]:
    """The summary of a chDB query in the keys of ClickHouse's ``X-ClickHouse-Summary``.

    clickhouse-connect's chDB backend fills ``read_rows``/``read_bytes`` from the chDB
    result's ``rows_read()``/``bytes_read()``, which count the rows and bytes of the *result*;
    what the query read from its tables is ``storage_rows_read()``/``storage_bytes_read()``.
    """
    try:  # numbers, where the header has their text: both are read as numbers
        return {"read_rows": result.storage_rows_read(),
                "read_bytes": result.storage_bytes_read(),
                "result_rows": result.rows_read(),
                "elapsed_ns": int(result.elapsed() * 1_000_000_000)}
    except Exception:  # noqa: BLE001 - statistics are best effort, never fail a query
        return {}


class _NativeBytes:
    """A whole Native answer as the byte source clickhouse-connect's buffer reads."""

    __slots__ = ("data", "exception_tag", "last_message")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.last_message: bytes | None = None
        self.exception_tag: str | None = None

    @property
    def gen(self) -> Iterator[bytes]:
        return iter((self.data,))

    def close(self) -> None:
        pass


class NativeResult:
    """A decoded answer, read as clickhouse-connect's ``QueryResult`` is read."""

    __slots__ = ("_parts", "_types", "column_names", "result_columns", "summary")

    def __init__(self, parts: DriverParts, names: tuple[str, ...], types: tuple[str, ...],
                 columns: list[list[Any]]) -> None:
        self._parts = parts
        self.column_names = names
        self._types = types
        self.result_columns = columns
        self.summary: dict[str, Any] = {}

    @property
    def result_rows(self) -> list[tuple[Any, ...]]:
        return list(zip(*self.result_columns, strict=True))

    @property
    def column_types(self) -> tuple[Any, ...]:
        """The driver's type of each column."""
        return tuple(self._parts.type_named(name) for name in self._types)


@dataclass(frozen=True, slots=True)
class DriverParts:
    """The parts of clickhouse-connect this module uses, given by ``server.warehouse.pool``:
    its parameter binding, its byte buffer (a C extension where built), its column readers
    and its errors."""

    #: (sql, parameters, server time zone) -> (bound SQL, engine parameters)
    bind: Callable[..., tuple[str | bytes, dict[str, Any]]]
    #: a byte source -> the driver's buffer over it
    buffer: Callable[[Any], Any]
    #: a type name -> the driver's type (its ``read_column`` reads a column of it)
    type_named: Callable[[str], Any]
    #: a block of dates (buffer, rows) -> ``date`` values
    read_dates: Callable[[Any, int], Any]
    #: how the driver decodes a ``String`` column
    string_encoding: str | None
    #: raised by the buffer at the end of the data
    complete: type[Exception]
    #: the driver's error for ClickHouse's answer to a bad query
    error: type[Exception]


#: the array codes of fixed-width numbers, read by the buffer itself (as the driver's number
#: types read them with the default formats)
_ARRAYS = {"UInt8": "B", "UInt16": "H", "UInt32": "I", "UInt64": "Q", "Int8": "b", "Int16": "h",
           "Int32": "i", "Int64": "q", "Float32": "f", "Float64": "d"}


#: the width of each of those numbers
_WIDTHS = {name: array(code).itemsize for name, code in _ARRAYS.items()}
#: whether the machine's numbers are stored the other way round from ClickHouse's
_SWAPPED = sys.byteorder != "little"


def _leb128(data: bytes, at: int) -> tuple[int, int]:
    """The variable-length integer at ``at`` and where the next field starts (past the end of
    ``data`` when it is cut short there)."""
    value = shift = 0
    while True:
        if at >= len(data):
            return value, len(data) + 1
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


def _text(data: bytes, at: int) -> tuple[str, int]:
    """The length-prefixed text at ``at`` ("" past the end of ``data``) and what follows."""
    size, at = _leb128(data, at)
    if at + size > len(data):
        return "", len(data) + 1
    return data[at:at + size].decode(), at + size


def _read_numbers(parts: DriverParts, data: bytes) -> NativeResult | None:
    """``read_native`` for an answer of fixed-width numbers only (totals, counts), read with
    ``array`` alone: it runs right after the engine has filled the caches, where the driver's
    buffer and readers cost several times more than these few lines. None for an answer
    holding any other type, or cut short (the general reader then says what is wrong)."""
    names: list[str] = []
    types: list[str] = []
    columns: list[list[Any]] = []
    at, end, first = 0, len(data), True
    while at < end:
        count, at = _leb128(data, at)
        rows, at = _leb128(data, at)
        for index in range(count):
            name, at = _text(data, at)
            type_name, at = _text(data, at)
            code = _ARRAYS.get(type_name)
            size = rows * _WIDTHS.get(type_name, 0)
            if code is None or at + size > end:
                return None
            values, at = array(code, data[at:at + size]), at + size
            if _SWAPPED:
                values.byteswap()
            if first:
                names.append(name)
                types.append(type_name)
                columns.append(values.tolist())
            else:
                columns[index].extend(values)
        first = False
    return NativeResult(parts, tuple(names), tuple(types), columns)


def _column(parts: DriverParts, source: Any, type_name: str, column: str, rows: int,
            context: Any) -> Any:
    """One column of a block: numbers, strings and dates read directly, any other type by
    the driver's own reader of that type."""
    code = _ARRAYS.get(type_name)
    if code is not None:
        return source.read_array(code, rows)
    if type_name == "String":
        return source.read_str_col(rows, parts.string_encoding)
    if type_name == "Date":
        return parts.read_dates(source, rows)
    context.start_column(column)
    return parts.type_named(type_name).read_column(source, rows, context)


def read_native(parts: DriverParts, data: bytes, context: Any) -> NativeResult:
    """An answer in ClickHouse's ``Native`` format, every block of it: the column names,
    type names and columns (lists) the driver's decoder makes of it, without the work it
    does per column for options a query of ours never sets. ``context``: a query context of
    the driver's, for the columns its readers read (one per thread at a time)."""
    numbers = _read_numbers(parts, data)
    return numbers if numbers is not None else _read_blocks(parts, data, context)


def _read_blocks(parts: DriverParts, data: bytes, context: Any) -> NativeResult:
    """``read_native`` through the driver's buffer, for an answer of any types."""
    source = parts.buffer(_NativeBytes(data))
    names: list[str] = []
    types: list[str] = []
    columns: list[list[Any]] = []
    first = True
    while True:
        try:
            count = source.read_leb128()
        except parts.complete:
            break
        rows = source.read_leb128()
        for index in range(count):
            name = source.read_leb128_str()
            type_name = source.read_leb128_str()
            values = _column(parts, source, type_name, name, rows, context) if rows else ()
            if first:
                names.append(name)
                types.append(type_name)
                columns.append(list(values))
            else:
                columns[index].extend(values)
        first = False
    return NativeResult(parts, tuple(names), tuple(types), columns)


class _Default:
    """A setting's value in a ``SETTINGS`` clause or ``SET``: back to the engine's default."""

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Any = _Default()


def _setting_text(value: object) -> str:
    if value is DEFAULT:
        return "DEFAULT"
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _settings_text(settings: Mapping[str, object]) -> str:
    return ", ".join(f"{name} = {_setting_text(value)}" for name, value in settings.items())


class EmbeddedClient:
    """A clickhouse-connect chDB client whose SELECTs go straight to the engine.

    The driver prepares every query for any server (a query context, settings checked
    against the server's, the SQL scanned for binds and for being read-only) before the
    engine runs it, and decodes each column through layers of options: together about
    0.15 ms, a tenth of a query on a small rollup. Here a SELECT is run on the client's own
    chDB connection, under its lock, and its Native answer decoded by ``read_native``, so the
    columns and their Python types are the driver's. Everything else (commands, inserts,
    streams) is the driver's.

    ``held``: settings most SELECTs run with (a request's bounds, one thread for a rollup),
    set once on the connection (``SET``) rather than sent with each query: a ``SETTINGS``
    clause costs the engine about 0.05 ms, a fortieth of such a query. A SELECT sends only
    what differs from them (a held setting it does not ask for goes back to ``DEFAULT``), and
    the connection is given back its defaults before the driver uses it for anything, so
    nothing else runs bounded by settings it did not ask for.
    """

    def __init__(self, client: Any, parts: DriverParts,
                 held: Mapping[str, object] | None = None) -> None:
        self._client = client
        self._parts = parts
        handle = client._backend._handle  # noqa: SLF001 - the client's own engine connection
        self._conn = handle.conn
        self._lock: threading.Lock = handle.lock
        self._server_tz = client.server_tz
        self._context = client.create_query_context(query="SELECT 1")
        #: the settings to hold, and whether the connection holds them now
        self._wanted: dict[str, object] = dict(held or {})
        self._holding = False

    @staticmethod
    def wraps(client: Any) -> bool:
        """Whether this driver's chDB client has the connection and lock this class uses."""
        handle = getattr(getattr(client, "_backend", None), "_handle", None)
        return handle is not None and hasattr(handle, "conn") and hasattr(handle, "lock")

    def _set(self, settings: Mapping[str, object]) -> None:
        """``SET`` on the connection (its lock held)."""
        self._conn.query("SET " + _settings_text(settings), "TabSeparated")

    def query(self, sql: str, parameters: dict[str, Any] | None = None,
              settings: dict[str, Any] | None = None) -> Any:
        parts = self._parts
        params: dict[str, Any] = {}
        if parameters:
            bound_sql, bound = parts.bind(sql, parameters, self._server_tz)
            if isinstance(bound_sql, bytes):  # binary binds: the driver's way
                return self.driver.query(sql, parameters=parameters, settings=settings)
            sql = bound_sql
            params = {k[6:] if k.startswith("param_") else k: v for k, v in bound.items()}
        asked = settings or {}
        wanted = self._wanted
        extra = {name: value for name, value in asked.items()
                 if name not in wanted or wanted[name] != value}
        extra.update((name, DEFAULT) for name in wanted if name not in asked)
        if extra:
            sql += "\n SETTINGS " + _settings_text(extra)
        try:
            with self._lock:
                if wanted and not self._holding:
                    self._set(wanted)
                    self._holding = True
                result = self._conn.query(sql + "\n FORMAT Native", "Native", params=params)
        except Exception as exc:  # chDB raises its own error with ClickHouse's text
            raise parts.error(str(exc)) from exc
        parsed = read_native(parts, result.bytes(), self._context)
        parsed.summary = chdb_summary(result)
        return parsed

    @property
    def driver(self) -> Any:
        """The driver's client, its connection back at the engine's defaults."""
        if self._holding:
            with self._lock:
                self._set(dict.fromkeys(self._wanted, DEFAULT))
                self._holding = False
        return self._client

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # copy and pickle protocols: not the driver's to answer
            raise AttributeError(name)
        return getattr(self.driver, name)
