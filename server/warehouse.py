"""The one module that talks to ClickHouse (a server over HTTP(S), or embedded chDB).

Everything it runs was built by ``engine``; it renders expressions at this boundary and binds
request values as server-side parameters.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError
from sqlglot import exp
from urllib3 import Timeout

from engine import introspection
from engine.output import with_settings
from engine.render import Rendered, render
from engine.rows import RowError
from semantic.errors import SemanticError
from server.availability import (
    WarehouseError,
    WarehouseUnavailable,
    engine_in_use,
    lock_message,
)
from server.circuit import Circuit
from server.config import OperatingLimits
from server.observability.metrics import (
    CLICKHOUSE_ERRORS,
    QueryStats,
    WarehouseHealth,
    record_statement,
)
from server.observability.requests import note_statement
from server.warehouse_errors import (
    EXCEPTION_TAG_HEADER,
    EngineInUse,
    QueryTimeout,
    QueryTooLarge,
    WarehouseBusy,
    WarehouseTimeout,
    cut_at_exception,
    database_failure,
    error_code,
    transport_failure,
)

__all__ = ["NoIdleClient", "QueryTimeout", "QueryTooLarge", "Result", "Warehouse",
           "WarehouseBusy",
           "WarehouseError", "WarehouseTimeout", "WarehouseUnavailable", "engine_in_use",
           "lock_message"]

logger = logging.getLogger(__name__)

# clickhouse-connect logs every transport failure with a traceback at WARNING, and urllib3
# each retry of a refused connection; this module turns each failure into one error of ours
# (logged once per request by the server, and once per outage by the health tracker).
logging.getLogger("clickhouse_connect.driver._backend.http_sync").setLevel(logging.ERROR)
logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)


def _chdb_summary(result: Any) -> dict[str, Any]:
    """The summary of a chDB query in the keys of ClickHouse's ``X-ClickHouse-Summary``.

    clickhouse-connect's chDB backend fills ``read_rows``/``read_bytes`` from the chDB
    result's ``rows_read()``/``bytes_read()``, which count the rows and bytes of the *result*;
    what the query read from its tables is ``storage_rows_read()``/``storage_bytes_read()``.
    """
    try:
        return {"read_rows": str(result.storage_rows_read()),
                "read_bytes": str(result.storage_bytes_read()),
                "result_rows": str(result.rows_read()),
                "elapsed_ns": str(int(result.elapsed() * 1_000_000_000))}
    except Exception:  # noqa: BLE001 - statistics are best effort, never fail a query
        return {}


try:
    from clickhouse_connect.driver._backend.chdb_backend import ChdbBackend
except ImportError:  # a clickhouse-connect without the embedded backend
    pass
else:
    ChdbBackend._summary = staticmethod(_chdb_summary)  # type: ignore[method-assign]


#: bytes per chunk of a streamed answer
STREAM_CHUNK_BYTES = 64 * 1024
#: settings of the HTTP request rather than of the query (they cannot go in its SQL)
_TRANSPORT_SETTINGS = frozenset({"cancel_http_readonly_queries_on_client_close"})

#: embedded data directories this process has opened (one engine per process)
_OPENED: set[str] = set()

#: set while a call must not wait for a client (``Warehouse.without_waiting``)
_NO_WAITING: ContextVar[bool] = ContextVar("no_waiting", default=False)


class NoIdleClient(Exception):  # noqa: N818 - a signal to the caller, not a failure
    """No client was idle for a call made ``without_waiting``: nothing was run."""


@dataclass(frozen=True, slots=True)
class Result:
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    #: what ClickHouse reported for the query (rows and bytes read, elapsed)
    stats: QueryStats | None = None


class Warehouse:
    """A small pool of clickhouse-connect clients plus the ingestion lock.

    chDB runs one query at a time per client, so concurrent requests each take a client from
    the pool; a request that finds none free within ``limits.queue_timeout`` is answered 503
    ``busy``. Only one engine may be open per process: share one ``Warehouse``.
    """

    def __init__(self, dsn: str, location: str, pool_size: int | None = None,
                 limits: OperatingLimits | None = None) -> None:
        self.dsn = dsn
        self.location = location
        self.embedded = dsn.startswith("chdb:")
        self.limits = limits or OperatingLimits()
        self._pool: queue.LifoQueue[Any] = queue.LifoQueue()
        self._created = 0
        self._size = max(1, pool_size or self.limits.pool_size)
        self._create_lock = threading.Lock()
        #: Held by ingestion through this service and by the instant of view creation.
        self.ingestion_lock = threading.RLock()
        #: counts statements that may have written (everything but queries), incremented
        #: when each one ends: answers cached before a write are known to be stale after it
        self.writes = 0
        self._closed = False
        self.circuit = Circuit(f"ClickHouse at {location}")
        #: logs each change between reachable and unreachable once
        self.health = WarehouseHealth(location)
        # Over HTTP, X-ClickHouse-Summary (rows and bytes read) is complete only when the
        # server sends its headers after the query has run; chDB reports it in any case.
        self._query_settings: dict[str, object] = {} if self.embedded else {
            "wait_end_of_query": 1}
        self._probe_client: Any = None
        self._probing = threading.Lock()
        self._raw_slots = threading.BoundedSemaphore(min(self._size, self.limits.raw_slots))

    def _connect(self, read_timeout: float | None = None) -> Any:
        # Checked first: chDB prints its own "Cannot lock file" text on stderr when it fails.
        # Once this process has the engine open, the lock is its own.
        if self.embedded and self.dsn not in _OPENED and engine_in_use(self.dsn):
            raise EngineInUse(lock_message(self.location))
        options: dict[str, Any] = {}
        if not self.embedded:
            # clickhouse-connect takes whole seconds here; each call sets its own timeout.
            options = {"connect_timeout": math.ceil(self.limits.connect_timeout),
                       "send_receive_timeout": math.ceil(read_timeout
                                                         or self.limits.read_timeout),
                       "query_retries": 0}
        try:
            client = clickhouse_connect.get_client(dsn=self.dsn, **options)
        except Exception as exc:  # clickhouse-connect and chDB raise several kinds here
            if self.embedded and engine_in_use(self.dsn):
                raise EngineInUse(lock_message(self.location)) from exc
            raise transport_failure(exc, self.location, self.limits,
                                    read_timeout or self.limits.read_timeout, self.embedded,
                                    connecting=True) from exc
        if self.embedded:
            _OPENED.add(self.dsn)
        return client

    @contextmanager
    def without_waiting(self) -> Iterator[None]:
        """Within it, a call that finds no idle client raises ``NoIdleClient`` at once (and
        runs nothing) instead of waiting for one: for calls made on the event loop."""
        token = _NO_WAITING.set(True)
        try:
            yield
        finally:
            _NO_WAITING.reset(token)

    def _acquire(self) -> Any:
        """An idle client, a new one while the pool is below its size, else wait for one
        (at most ``limits.queue_timeout``, then ``WarehouseBusy``; ``NoIdleClient`` at once
        within ``without_waiting``).

        Waiting polls, so a slot freed by a dropped (broken) client is noticed too.
        """
        deadline = time.monotonic() + self.limits.queue_timeout
        while True:
            try:
                return self._pool.get_nowait()
            except queue.Empty:
                pass
            with self._create_lock:
                grow = self._created < self._size
                if grow:
                    self._created += 1
            if grow:
                try:
                    return self._connect()
                except Exception:
                    with self._create_lock:
                        self._created -= 1
                    raise
            if _NO_WAITING.get():
                raise NoIdleClient
            if time.monotonic() >= deadline:
                raise WarehouseBusy(f"all {self._size} ClickHouse connections are busy "
                                    "(SEMANTIC_POOL_SIZE); retry shortly", retry_after=1)
            try:
                return self._pool.get(timeout=0.05)
            except queue.Empty:
                continue

    @contextmanager
    def _client(self, read_timeout: float) -> Iterator[Any]:
        client = self._acquire()
        healthy = True
        try:
            if not self.embedded:
                client.timeout = Timeout(connect=self.limits.connect_timeout, read=read_timeout)
            yield client
        except OperationalError:
            healthy = False
            raise
        finally:
            if healthy and not self._closed:
                self._pool.put(client)
            else:
                with self._create_lock:
                    self._created -= 1

    def _bounds(self) -> dict[str, object]:
        """ClickHouse settings that bound what one request's query may cost."""
        limits = self.limits
        seconds = limits.query_timeout
        settings: dict[str, object] = {
            "max_execution_time": int(seconds) if seconds == int(seconds) else seconds}
        if limits.query_max_memory:
            settings["max_memory_usage"] = limits.query_max_memory
        if not self.embedded:  # a query whose caller went away (shutdown) stops too
            settings["cancel_http_readonly_queries_on_client_close"] = 1
        return settings

    @contextmanager
    def _guarded(self, read_timeout: float, what: str, sql: str) -> Iterator[Any]:
        """A client, with failures turned into our errors and fed to the circuit breaker."""
        trial = self.circuit.enter()
        reached = False
        try:
            with self._client(read_timeout) as client:
                reached = True
                yield client
        except OperationalError as exc:
            if error_code(exc) is not None:  # ClickHouse's error arrived mid-stream
                raise self._rejected(exc, what, sql) from exc
            failure = transport_failure(exc, self.location, self.limits, read_timeout,
                                        self.embedded)
            self._down(failure)
            raise failure from exc
        except WarehouseUnavailable as exc:
            if reached or isinstance(exc, WarehouseBusy):
                self.circuit.leave(trial)
            elif isinstance(exc, EngineInUse):  # said by the caller, not an outage to log
                self.circuit.failed(exc)
            else:  # connecting failed
                self._down(exc)
            raise
        except DatabaseError as exc:
            raise self._rejected(exc, what, sql) from exc
        except BaseException:
            self.circuit.leave(trial)
            raise
        else:
            self._up()

    def _up(self) -> None:
        self.circuit.succeeded()
        self.health.reached()

    def _down(self, failure: WarehouseUnavailable) -> None:
        self.circuit.failed(failure)
        self.health.unreachable(failure.message)

    def _rejected(self, exc: BaseException, what: str, sql: str) -> SemanticError:
        """ClickHouse answered, with an error: it is up; the error in our words."""
        self._up()
        error = database_failure(exc, self.limits, what, sql)
        CLICKHOUSE_ERRORS.labels(error.code).inc()
        return error

    @contextmanager
    def _raw_slot(self, raw: bool) -> Iterator[None]:
        """One of the ``limits.raw_slots`` slots for a query that reads a raw table, held
        within (503 ``busy`` when none frees up in time); nothing for other queries."""
        if not raw:
            yield
            return
        if not self._raw_slots.acquire(timeout=self.limits.queue_timeout):
            raise WarehouseBusy(f"all {self.limits.raw_slots} connections for queries that "
                                "read a raw table are busy (SEMANTIC_RAW_POOL_SIZE); answers "
                                "from rollups are not affected; retry shortly", retry_after=1)
        try:
            yield
        finally:
            self._raw_slots.release()

    def _select(self, statement: exp.Expression | Rendered,
                parameters: Mapping[str, object] | None, bounded: bool, raw: bool,
                extra: Mapping[str, object] | None = None) -> tuple[Any, QueryStats]:
        sql = statement if isinstance(statement, str) else render(statement)
        settings = {**self._query_settings, **(self._bounds() if bounded else {}),
                    **(extra or {})}
        with self._raw_slot(raw):
            started = time.perf_counter()
            with self._guarded(self.limits.read_timeout, "a query", sql) as client:
                result = client.query(sql, parameters=dict(parameters or {}),
                                      settings=settings or None)
        stats = record_statement("query", time.perf_counter() - started,
                                 getattr(result, "summary", None))
        note_statement(stats)
        return result, stats

    def query(self, statement: exp.Expression | Rendered,
              parameters: Mapping[str, object] | None = None, bounded: bool = False,
              raw: bool = False) -> Result:
        """Run a SELECT. ``bounded``: a request's query, stopped by ClickHouse past the query
        time and memory limits. ``raw``: it reads mostly a raw table, and takes one of the
        ``limits.raw_slots`` slots first (503 ``busy`` when none frees up in time)."""
        result, stats = self._select(statement, parameters, bounded, raw)
        return Result(tuple(result.column_names), list(result.result_rows), stats)

    def query_columns(self, statement: exp.Expression | Rendered,
                      parameters: Mapping[str, object] | None = None, bounded: bool = False,
                      raw: bool = False, settings: Mapping[str, object] | None = None,
                      ) -> tuple[tuple[str, ...], list[list[Any]], QueryStats]:
        """Like ``query``, with the values column by column (no row tuples built) and extra
        ``settings``; returns the column names, the columns and what running it cost."""
        result, stats = self._select(statement, parameters, bounded, raw, settings)
        names = tuple(result.column_names)
        return names, [list(column) for column in result.result_columns], stats

    def stream(self, statement: exp.Select, parameters: Mapping[str, object] | None,
               fmt: str, raw: bool = False, settings: Mapping[str, object] | None = None,
               chunk_bytes: int = STREAM_CHUNK_BYTES) -> Generator[bytes, None, None]:
        """A request's SELECT (bounded like ``query(..., bounded=True)``) answered as
        ClickHouse formats it (``fmt``: ``CSV``, ``Parquet``, ``ArrowStream``), in chunks of
        about ``chunk_bytes``, read as they come.

        A generator: the query starts at the first ``next``; the client (and the raw-table
        slot) stays taken until the stream is read to its end or closed. The settings travel
        in the SQL (``SETTINGS``): the embedded engine streams only queries without per-call
        settings, and then only formats without a global header or footer (CSV, not Parquet
        or Arrow, which it sends whole); a ClickHouse server streams every format.
        """
        bounds = self._bounds()
        transport = {k: bounds.pop(k) for k in list(bounds) if k in _TRANSPORT_SETTINGS}
        sql = render(with_settings(statement, {**bounds, **(settings or {})}))
        with self._raw_slot(raw):
            started = time.perf_counter()
            try:
                with self._guarded(self.limits.read_timeout, "a query", sql) as client:
                    body = client.raw_stream(sql, parameters=dict(parameters or {}), fmt=fmt,
                                             settings=transport or None)
                    try:
                        tag = None if self.embedded else body.headers.get(EXCEPTION_TAG_HEADER)
                        yield from cut_at_exception(iter(lambda: body.read(chunk_bytes), b""),
                                                    tag)
                    finally:
                        body.close()
            finally:
                note_statement(record_statement("query", time.perf_counter() - started, None))

    def command(self, statement: exp.Expression,
                parameters: Mapping[str, object] | None = None) -> None:
        """Run DDL or ``INSERT ... SELECT`` (long: ``limits.command_timeout``)."""
        sql = render(statement)
        logger.debug("command: %s", sql)
        started = time.perf_counter()
        try:
            with self._guarded(self.limits.command_timeout, "a statement", sql) as client:
                result = client.command(sql, parameters=dict(parameters or {}))
        finally:
            self.writes += 1
        note_statement(record_statement("command", time.perf_counter() - started,
                                        getattr(result, "summary", None)))

    def insert(self, table: str, columns: Sequence[str],
               rows: Sequence[Sequence[object]]) -> None:
        """Insert checked rows as one block (one INSERT), under the ingestion lock; refused
        once the warehouse is closing, so a batch is inserted whole or not at all."""
        database, name = table.split(".", 1)
        with self.ingestion_lock:
            if self._closed:
                raise WarehouseUnavailable("the server is shutting down; nothing was inserted")
            started = time.perf_counter()
            try:
                with self._guarded(self.limits.command_timeout, "the rows",
                                   f"INSERT INTO {table}") as client:
                    summary = client.insert(name, list(rows), column_names=list(columns),
                                            database=database)
            finally:
                self.writes += 1
            record_statement("insert", time.perf_counter() - started,
                             getattr(summary, "summary", None))

    def transfer(self, statement: exp.Expression) -> None:
        """Run an ``INSERT ... SELECT`` into a source under the ingestion lock, like
        ``insert``: refused once the warehouse is closing, finished before it closes."""
        with self.ingestion_lock:
            if self._closed:
                raise WarehouseUnavailable("the server is shutting down; nothing was inserted")
            self.command(statement)

    def decode_file(self, staging: exp.Table, create: exp.Expression, data: bytes,
                    fmt: str) -> list[dict[str, object]]:
        """Rows of a typed file (e.g. Parquet), decoded by ClickHouse into a staging table.
        A file ClickHouse cannot read is a ``RowError`` in our words; its text is logged."""
        self.command(create)
        name = render(staging)
        try:
            try:
                with self._guarded(self.limits.command_timeout, f"the {fmt} data",
                                   f"INSERT INTO {name} FORMAT {fmt}") as client:
                    client.raw_insert(name, insert_block=data, fmt=fmt)
            except WarehouseError as exc:
                logger.info("ClickHouse could not decode a %s body: %s", fmt, exc.message)
                raise RowError("body", f"the body is not a {fmt} file this source can read "
                               f"(it must hold the table's columns: "
                               f"{', '.join(self._staged_columns(create))})") from None
            result = self.query(exp.select("*").from_(staging.copy()))
        finally:
            self.command(exp.Drop(tables=[staging.copy()], kind="TABLE", exists=True))
        return [dict(zip(result.columns, row, strict=True)) for row in result.rows]

    def describe_data(self, statement: exp.Expression, data: bytes) -> dict[str, str]:
        """Column -> type ClickHouse infers for a file's bytes (``statement`` binds ``data``)."""
        return {row[0]: row[1] for row in self.query(statement, {"data": data}).rows}

    @staticmethod
    def _staged_columns(create: exp.Expression) -> list[str]:
        schema = create.this
        return [c.name for c in schema.expressions] if isinstance(schema, exp.Schema) else []

    def ping(self) -> None:
        self.query(introspection.PING)

    def probe(self) -> bool:
        """Whether ClickHouse answers ``SELECT 1`` now, on a client of its own (so busy
        request clients never delay it), within the connect timeout plus a second; the
        answer opens or closes the circuit breaker."""
        if not self._probing.acquire(blocking=False):  # another watcher is probing now
            return self.circuit.failure is None
        try:
            return self._probe()
        finally:
            self._probing.release()

    def _probe(self) -> bool:
        timeout = self.limits.connect_timeout + 1.0
        try:
            if self._probe_client is None:
                self._probe_client = self._connect(read_timeout=timeout)
            client = self._probe_client
            if not self.embedded:
                client.timeout = Timeout(connect=self.limits.connect_timeout, read=timeout)
            client.query(render(introspection.PING))
        except WarehouseUnavailable as exc:
            self._down(exc)
            return False
        except OperationalError as exc:
            self._probe_client = None
            self._down(transport_failure(exc, self.location, self.limits, timeout,
                                         self.embedded))
            return False
        except DatabaseError:
            pass  # it answered, if with an error: it is there
        self._up()
        return True

    def columns(self, table: str) -> dict[str, str] | None:
        """Column name -> type of ``db.table``, or None when it does not exist."""
        database, name = table.split(".", 1)
        result = self.query(introspection.COLUMNS, {"db": database, "name": name})
        return {row[0]: row[1] for row in result.rows} or None

    def describe(self, statement: exp.Expression) -> list[str]:
        """Types of the result columns of a ``DESCRIBE (SELECT ...)``, in order."""
        return [row[1] for row in self.query(statement).rows]

    def tables(self, databases: Sequence[str]) -> frozenset[str]:
        """``db.table`` names that exist in the given databases."""
        result = self.query(introspection.TABLES, {"dbs": list(databases)})
        return frozenset(f"{db}.{name}" for db, name in result.rows)

    def column_sizes(self, databases: Sequence[str]
                     ) -> dict[str, tuple[int, dict[str, int], int]]:
        """``db.table`` -> (rows, column -> uncompressed bytes, active parts) over active
        parts."""
        result = self.query(introspection.COLUMN_SIZES, {"dbs": list(databases)})
        sizes: dict[str, tuple[int, dict[str, int], int]] = {}
        for db, table, column, rows, size, parts in result.rows:
            _, columns, _ = sizes.setdefault(f"{db}.{table}", (int(rows), {}, int(parts)))
            columns[column] = int(size)
        return sizes

    def close(self) -> None:
        """Stop handing out clients and close the idle ones; an insert in flight finishes
        first (it holds the ingestion lock), later ones are refused."""
        with self.ingestion_lock:
            self._closed = True
        if self._probe_client is not None:
            self._pool.put(self._probe_client)
            self._probe_client = None
        while True:
            try:
                client = self._pool.get_nowait()
            except queue.Empty:
                break
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                logger.debug("closing a client failed", exc_info=True)
