"""What the service runs on ClickHouse (a server over HTTP(S), or embedded chDB): queries,
streamed answers, DDL, inserts and typed files, each on a client of the pool
(``server.warehouse.pool``).

Everything it runs was built by ``engine``; it renders expressions at this boundary and binds
request values as server-side parameters.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Generator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from engine.dialect import system
from engine.dialect.render import Rendered, render
from engine.ingestion.rows import RowError
from engine.serving.output import with_settings
from server.observability.metrics import (
    QueryStats,
    WarehouseHealth,
    count_statement,
    record_statement,
    statement_stats,
)
from server.observability.requests import after_response, note_statement
from server.settings import OperatingLimits
from server.warehouse.availability import WarehouseError, WarehouseUnavailable
from server.warehouse.circuit import Circuit
from server.warehouse.errors import EXCEPTION_TAG_HEADER, cut_at_exception
from server.warehouse.pool import ClientPool

logger = logging.getLogger(__name__)

#: bytes per chunk of a streamed answer
STREAM_CHUNK_BYTES = 64 * 1024
#: settings of the HTTP request rather than of the query (they cannot go in its SQL)
_TRANSPORT_SETTINGS = frozenset({"cancel_http_readonly_queries_on_client_close"})


#: Settings of a query that reads a few thousand rows at most (a rollup's): one thread reads
#: them faster than the setup of several takes, and concurrent requests on a small machine
#: then do not fight over its cores; no PREWHERE, which reads the filtered columns first to
#: skip the granules no row of passes, where a rollup's range spans a granule or two (the
#: primary key has already picked them): moving the filter there cost about 0.13 ms of a
#: 2.2 ms query over a day range.
SMALL_READ_SETTINGS: dict[str, object] = {"max_threads": 1, "optimize_move_to_prewhere": 0}
#: Settings of a query whose every table holds a granule of rows at most (a few hundred days of
#: a few regions): the query plan's optimizations (reading in key order, pushing limits and
#: filters down, merging steps) have nothing to skip or reorder in one granule, and working
#: them out cost about 0.03-0.07 ms of a 1.8-2 ms query. The primary key still picks the
#: granules a range needs: that analysis is not one of them.
TINY_READ_SETTINGS: dict[str, object] = {**SMALL_READ_SETTINGS,
                                         "query_plan_enable_optimizations": 0}


@dataclass(frozen=True, slots=True)
class Result:
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    #: what ClickHouse reported for the query (rows and bytes read, elapsed)
    stats: QueryStats | None = None


class Warehouse:
    """The statements the service runs, on clients of its pool, plus the ingestion lock.

    Only one engine may be open per process: share one ``Warehouse``.
    """

    def __init__(self, dsn: str, location: str, pool_size: int | None = None,
                 limits: OperatingLimits | None = None) -> None:
        self.pool = ClientPool(dsn, location, pool_size, limits)
        #: whether ClickHouse runs in this process (chDB); what statements and the service's
        #: freshness rules depend on
        self.embedded = self.pool.embedded
        #: Held by ingestion through this service and by the instant of view creation.
        self.ingestion_lock = threading.RLock()
        #: counts statements that may have written (everything but queries), incremented
        #: when each one ends: answers cached before a write are known to be stale after it
        self.writes = 0
        # Over HTTP, X-ClickHouse-Summary (rows and bytes read) is complete only when the
        # server sends its headers after the query has run; chDB reports it in any case, and
        # keeps no query log, whose entry would cost it about 0.03 ms a query.
        self._query_settings: dict[str, object] = {"log_queries": 0} if self.embedded else {
            "wait_end_of_query": 1}
        #: what a request's query runs with (its bounds), made once
        self._bounded: dict[str, object] = {**self._query_settings, **self._bounds()}
        if self.embedded:  # most SELECTs are a request's on small rollups: the embedded
            # engine's connections hold their settings, so such a query sends none
            self.pool.held = {**self._bounded, **TINY_READ_SETTINGS}

    @property
    def dsn(self) -> str:
        return self.pool.dsn

    @property
    def location(self) -> str:
        return self.pool.location

    @property
    def limits(self) -> OperatingLimits:
        return self.pool.limits

    @property
    def circuit(self) -> Circuit:
        return self.pool.circuit

    @property
    def health(self) -> WarehouseHealth:
        return self.pool.health

    def without_waiting(self) -> AbstractContextManager[None]:
        """Within it (``with``), a call that finds no idle client raises ``NoIdleClient`` at
        once (and runs nothing) instead of waiting for one: for calls made on the event
        loop."""
        return self.pool.without_waiting()

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

    def _select(self, statement: exp.Expression | Rendered,
                parameters: Mapping[str, object] | None, bounded: bool, raw: bool,
                extra: Mapping[str, object] | None = None) -> tuple[Any, QueryStats]:
        sql = statement if isinstance(statement, str) else render(statement)
        if bounded and not extra:
            settings = dict(self._bounded)  # the client may add to what it is given
        else:
            settings = {**self._query_settings, **(self._bounds() if bounded else {}),
                        **(extra or {})}
        if raw:
            with self.pool.raw_slot(raw):
                return self._run_select(sql, parameters, settings)
        return self._run_select(sql, parameters, settings)

    def _run_select(self, sql: str, parameters: Mapping[str, object] | None,
                    settings: dict[str, object]) -> tuple[Any, QueryStats]:
        started = time.perf_counter()
        with self.pool.guarded(self.limits.read_timeout, "a query", sql) as client:
            result = client.query(sql, parameters=dict(parameters or {}),
                                  settings=settings or None)
        seconds = time.perf_counter() - started
        stats = statement_stats(getattr(result, "summary", None))
        after_response(count_statement, "query", seconds, stats)
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
        # the driver's columns and ``read_native``'s are lists made for this answer
        return tuple(result.column_names), result.result_columns, stats

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
        with self.pool.raw_slot(raw):
            started = time.perf_counter()
            try:
                with self.pool.guarded(self.limits.read_timeout, "a query", sql) as client:
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
            with self.pool.guarded(self.limits.command_timeout, "a statement", sql) as client:
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
            if self.pool.closed:
                raise WarehouseUnavailable("the server is shutting down; nothing was inserted")
            started = time.perf_counter()
            try:
                with self.pool.guarded(self.limits.command_timeout, "the rows",
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
            if self.pool.closed:
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
                with self.pool.guarded(self.limits.command_timeout, f"the {fmt} data",
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
        self.query(system.PING)

    def probe(self) -> bool:
        """Whether ClickHouse answers ``SELECT 1`` now (``ClientPool.probe``)."""
        return self.pool.probe()

    def close(self) -> None:
        """Stop handing out clients and close the idle ones; an insert in flight finishes
        first (it holds the ingestion lock), later ones are refused."""
        with self.ingestion_lock:
            self.pool.closed = True
        self.pool.close()
