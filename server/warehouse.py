"""The one module that talks to ClickHouse (a server over HTTP(S), or embedded chDB).

Everything it runs was built by ``engine``; it renders expressions at this boundary and binds
request values as server-side parameters.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError
from sqlglot import exp

from engine import introspection
from engine.render import Rendered, render
from engine.rows import RowError
from server.availability import (
    WarehouseError,
    WarehouseUnavailable,
    engine_in_use,
    lock_message,
)
from server.observability.metrics import (
    CLICKHOUSE_ERRORS,
    QueryStats,
    WarehouseHealth,
    record_statement,
)
from server.observability.requests import note_statement

logger = logging.getLogger(__name__)

__all__ = ["Result", "Warehouse", "WarehouseError", "WarehouseUnavailable", "engine_in_use",
           "lock_message"]


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


@dataclass(frozen=True, slots=True)
class Result:
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    #: what ClickHouse reported for the query (rows and bytes read, elapsed)
    stats: QueryStats | None = None


class Warehouse:
    """A small pool of clickhouse-connect clients plus the ingestion lock.

    chDB runs one query at a time per client, so concurrent requests each take a client from
    the pool. Only one engine may be open per process: share one ``Warehouse``.
    """

    def __init__(self, dsn: str, location: str, pool_size: int = 4) -> None:
        self.dsn = dsn
        self.location = location
        self.embedded = dsn.startswith("chdb:")
        self._pool: queue.LifoQueue[Any] = queue.LifoQueue()
        self._created = 0
        self._size = max(1, pool_size)
        self._create_lock = threading.Lock()
        #: Held by ingestion through this service and by the instant of view creation.
        self.ingestion_lock = threading.RLock()
        self._closed = False
        #: logs each change between reachable and unreachable once
        self.health = WarehouseHealth(location)
        # Over HTTP, X-ClickHouse-Summary (rows and bytes read) is complete only when the
        # server sends its headers after the query has run; chDB reports it in any case.
        self._query_settings = {} if self.embedded else {"wait_end_of_query": 1}

    def _connect(self) -> Any:
        # Checked first: chDB prints its own "Cannot lock file" text on stderr when it fails.
        if self.embedded and self._created <= 1 and engine_in_use(self.dsn):
            raise WarehouseUnavailable(lock_message(self.location))
        try:
            return clickhouse_connect.get_client(dsn=self.dsn)
        except Exception as exc:  # clickhouse-connect and chDB raise several kinds here
            text = str(exc)
            if self.embedded and engine_in_use(self.dsn):
                raise WarehouseUnavailable(lock_message(self.location)) from exc
            raise WarehouseUnavailable(f"cannot connect to ClickHouse at {self.location}: "
                                       f"{text.splitlines()[0] if text else type(exc).__name__}"
                                       ) from exc

    def _acquire(self) -> Any:
        """An idle client, a new one while the pool is below its size, else wait for one.

        Waiting polls, so a slot freed by a dropped (broken) client is noticed too.
        """
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
            try:
                return self._pool.get(timeout=0.05)
            except queue.Empty:
                continue

    @contextmanager
    def _client(self) -> Iterator[Any]:
        client = self._acquire()
        healthy = True
        try:
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

    def _run(self, kind: str, statement: exp.Expression | Rendered,
             parameters: Mapping[str, object] | None = None) -> Any:
        sql = statement if isinstance(statement, str) else render(statement)
        started = time.perf_counter()
        try:
            with self._client() as client:
                if kind == "query":
                    result = client.query(sql, parameters=dict(parameters or {}),
                                          settings=self._query_settings)
                else:
                    result = client.command(sql, parameters=dict(parameters or {}))
        except WarehouseUnavailable as exc:  # no client could connect
            self.health.unreachable(exc.message)
            raise
        except OperationalError as exc:
            error = WarehouseUnavailable(f"ClickHouse at {self.location} is unavailable: "
                                         f"{str(exc).splitlines()[0]}")
            self.health.unreachable(error.message)
            raise error from exc
        except DatabaseError as exc:
            CLICKHOUSE_ERRORS.labels(WarehouseError.code).inc()
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            raise WarehouseError(f"ClickHouse rejected a query: {message}", sql) from exc
        self.health.reached()
        stats = record_statement(kind, time.perf_counter() - started,
                                 getattr(result, "summary", None))
        note_statement(stats)
        return result, stats

    def query(self, statement: exp.Expression | Rendered,
              parameters: Mapping[str, object] | None = None) -> Result:
        result, stats = self._run("query", statement, parameters)
        return Result(tuple(result.column_names), list(result.result_rows), stats)

    def command(self, statement: exp.Expression,
                parameters: Mapping[str, object] | None = None) -> None:
        logger.debug("command: %s", render(statement))
        self._run("command", statement, parameters)

    def insert(self, table: str, columns: Sequence[str],
               rows: Sequence[Sequence[object]]) -> None:
        """Insert checked rows as one block (one INSERT), under the ingestion lock."""
        database, name = table.split(".", 1)
        started = time.perf_counter()
        try:
            with self.ingestion_lock, self._client() as client:
                summary = client.insert(name, list(rows), column_names=list(columns),
                                        database=database)
        except OperationalError as exc:
            error = WarehouseUnavailable(f"ClickHouse at {self.location} is unavailable: "
                                         f"{str(exc).splitlines()[0]}")
            self.health.unreachable(error.message)
            raise error from exc
        except DatabaseError as exc:
            CLICKHOUSE_ERRORS.labels(WarehouseError.code).inc()
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            raise WarehouseError(f"ClickHouse rejected the rows: {message}",
                                 f"INSERT INTO {table}") from exc
        self.health.reached()
        record_statement("insert", time.perf_counter() - started, getattr(summary, "summary", None))

    def decode_file(self, staging: exp.Table, create: exp.Expression, data: bytes,
                    fmt: str) -> list[dict[str, object]]:
        """Rows of a typed file (e.g. Parquet), decoded by ClickHouse into a staging table."""
        self.command(create)
        name = render(staging)
        try:
            with self._client() as client:
                client.raw_insert(name, insert_block=data, fmt=fmt)
            result = self.query(exp.select("*").from_(staging.copy()))
        except DatabaseError as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            raise RowError("body", f"ClickHouse could not read the {fmt} data: "
                           f"{message}") from exc
        finally:
            self.command(exp.Drop(tables=[staging.copy()], kind="TABLE", exists=True))
        return [dict(zip(result.columns, row, strict=True)) for row in result.rows]

    def describe_data(self, statement: exp.Expression, data: bytes) -> dict[str, str]:
        """Column -> type ClickHouse infers for a file's bytes (``statement`` binds ``data``)."""
        return {row[0]: row[1] for row in self.query(statement, {"data": data}).rows}

    def ping(self) -> None:
        self.query(introspection.PING)

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

    def column_sizes(self, databases: Sequence[str]) -> dict[str, tuple[int, dict[str, int]]]:
        """``db.table`` -> (rows, column -> uncompressed bytes) over active parts."""
        result = self.query(introspection.COLUMN_SIZES, {"dbs": list(databases)})
        sizes: dict[str, tuple[int, dict[str, int]]] = {}
        for db, table, column, rows, size in result.rows:
            _, columns = sizes.setdefault(f"{db}.{table}", (int(rows), {}))
            columns[column] = int(size)
        return sizes

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                client = self._pool.get_nowait()
            except queue.Empty:
                break
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                logger.debug("closing a client failed", exc_info=True)
