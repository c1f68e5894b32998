"""The clients of the warehouse and who may use them: a small pool of clickhouse-connect clients
(one engine per process for embedded chDB), the slots for queries that read a raw table, the
circuit breaker in front of ClickHouse, and ClickHouse's failures turned into our errors.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from types import TracebackType
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError
from urllib3 import Timeout

from engine.dialect import system
from engine.dialect.render import render
from semantic.errors import SemanticError
from server.observability.metrics import CLICKHOUSE_ERRORS, WarehouseHealth
from server.settings import OperatingLimits
from server.warehouse.availability import WarehouseUnavailable, engine_in_use, lock_message
from server.warehouse.circuit import Circuit
from server.warehouse.embedded import DriverParts, EmbeddedClient, chdb_summary
from server.warehouse.errors import (
    EngineInUse,
    WarehouseBusy,
    database_failure,
    error_code,
    transport_failure,
)

logger = logging.getLogger(__name__)

# clickhouse-connect logs every transport failure with a traceback at WARNING, and urllib3
# each retry of a refused connection; this module turns each failure into one error of ours
# (logged once per request by the server, and once per outage by the health tracker).
logging.getLogger("clickhouse_connect.driver._backend.http_sync").setLevel(logging.ERROR)
logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)


try:
    from clickhouse_connect.driver._backend.chdb_backend import ChdbBackend
except ImportError:  # a clickhouse-connect without the embedded backend
    pass
else:
    ChdbBackend._summary = staticmethod(chdb_summary)  # type: ignore[method-assign]


def _driver_parts() -> DriverParts | None:
    """What ``EmbeddedClient`` uses of the driver; None for a driver without them (every
    query then goes through the driver)."""
    try:
        from clickhouse_connect.datatypes.registry import get_from_name
        from clickhouse_connect.driver.binding import bind_query
        from clickhouse_connect.driver.ctypes import RespBuffCls, data_conv
        from clickhouse_connect.driver.exceptions import StreamCompleteException
        from clickhouse_connect.driver.query import QueryContext
    except ImportError:
        return None
    strings: Any = get_from_name("String")
    return DriverParts(bind=bind_query, buffer=RespBuffCls, type_named=get_from_name,
                       read_dates=data_conv.read_date_col,
                       string_encoding=strings._active_encoding(QueryContext(query="SELECT 1")),
                       complete=StreamCompleteException, error=DatabaseError)


_DRIVER = _driver_parts()


class _NoWaiting:
    """``ClientPool.without_waiting``'s context manager."""

    __slots__ = ("token",)

    def __enter__(self) -> None:
        self.token = _NO_WAITING.set(True)

    def __exit__(self, *exc: object) -> None:
        _NO_WAITING.reset(self.token)


class _Lease:
    """A client taken for one statement, given back after it (or dropped when its connection
    broke): the context manager of ``ClientPool.guarded``, a class rather than a generator,
    as every query takes one."""

    __slots__ = ("client", "pool", "read_timeout", "sql", "trial", "what")

    def __init__(self, pool: ClientPool, read_timeout: float, what: str, sql: str) -> None:
        self.pool = pool
        self.read_timeout = read_timeout
        self.what = what
        self.sql = sql

    def __enter__(self) -> Any:
        pool = self.pool
        self.trial = pool.circuit.enter()
        try:
            client = pool._acquire()
        except BaseException as exc:
            pool._failed(exc, self, reached=False)
            raise
        if not pool.embedded:
            client.timeout = Timeout(connect=pool.limits.connect_timeout, read=self.read_timeout)
        self.client = client
        return client

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        pool = self.pool
        if isinstance(exc, OperationalError) or pool.closed:
            pool._dropped()
        else:
            pool.give_back(self.client)
        if exc is None:
            pool._up()
        else:  # raised in our words, or (returning) as it is
            pool._failed(exc, self, reached=True)


#: how long a caller waiting for a client sleeps before it looks again, in case a client was
#: given back between its look and its wait (giving back takes no lock, so its wake-up can
#: come too early to be seen)
RECHECK_SECONDS = 0.05
#: embedded data directories this process has opened (one engine per process)
_OPENED: set[str] = set()

#: set while a call must not wait for a client (``Warehouse.without_waiting``)
_NO_WAITING: ContextVar[bool] = ContextVar("no_waiting", default=False)


class NoIdleClient(Exception):  # noqa: N818 - a signal to the caller, not a failure
    """No client was idle for a call made ``without_waiting``: nothing was run."""


class ClientPool:
    """A small pool of clickhouse-connect clients.

    chDB runs one query at a time per client, so concurrent requests each take a client from
    the pool; a request that finds none free within ``limits.queue_timeout`` is answered 503
    ``busy``. Only one engine may be open per process: share one pool (one ``Warehouse``).
    """

    def __init__(self, dsn: str, location: str, pool_size: int | None = None,
                 limits: OperatingLimits | None = None) -> None:
        self.dsn = dsn
        self.location = location
        self.embedded = dsn.startswith("chdb:")
        self.limits = limits or OperatingLimits()
        #: idle clients, the latest given back on top (a deque's ends are atomic: taking and
        #: giving back cost no lock); callers waiting for one are woken by ``_returned``
        self._idle: deque[Any] = deque()
        self._returned = threading.Condition()
        self._waiting = 0
        self._created = 0
        self._size = max(1, pool_size or self.limits.pool_size)
        #: settings the embedded engine's clients hold on their connections
        #: (``EmbeddedClient``); set before the first client is made
        self.held: dict[str, object] = {}
        self._create_lock = threading.Lock()
        #: set by ``Warehouse.close``: clients given back are closed, not kept
        self.closed = False
        self.circuit = Circuit(f"ClickHouse at {location}")
        #: logs each change between reachable and unreachable once
        self.health = WarehouseHealth(location)
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
            if _DRIVER is not None and EmbeddedClient.wraps(client):
                return EmbeddedClient(client, _DRIVER, self.held)
        return client

    def without_waiting(self) -> _NoWaiting:
        """Within it (``with``), a call that finds no idle client raises ``NoIdleClient`` at
        once (and runs nothing) instead of waiting for one: for calls made on the event
        loop."""
        return _NoWaiting()

    def _acquire(self) -> Any:
        """An idle client, a new one while the pool is below its size, else wait for one
        (at most ``limits.queue_timeout``, then ``WarehouseBusy``; ``NoIdleClient`` at once
        within ``without_waiting``).

        Waiting polls, so a slot freed by a dropped (broken) client is noticed too.
        """
        deadline = 0.0
        while True:
            try:
                return self._idle.pop()
            except IndexError:
                pass
            with self._create_lock:
                grow = self._created < self._size
                if grow:
                    self._created += 1
            if grow:
                try:
                    return self._connect()
                except Exception:
                    self._dropped()
                    raise
            if _NO_WAITING.get():
                raise NoIdleClient
            now = time.monotonic()
            deadline = deadline or now + self.limits.queue_timeout
            if now >= deadline:
                raise self.busy()
            with self._returned:
                self._waiting += 1
                try:
                    if not self._idle:
                        self._returned.wait(min(RECHECK_SECONDS, deadline - now))
                finally:
                    self._waiting -= 1

    def give_back(self, client: Any) -> None:
        """Return a client taken by ``_acquire`` to the idle ones."""
        self._idle.append(client)
        if self._waiting:
            with self._returned:
                self._returned.notify()

    def _dropped(self) -> None:
        """A client taken (or being made) is gone: its slot is free."""
        with self._create_lock:
            self._created -= 1

    @property
    def size(self) -> int:
        """How many clients the pool holds at most (queries running at once)."""
        return self._size

    def busy(self) -> WarehouseBusy:
        """The answer to a call that found no client free within the queue timeout."""
        return WarehouseBusy(f"all {self._size} ClickHouse connections are busy "
                             "(SEMANTIC_POOL_SIZE); retry shortly", retry_after=1)

    def guarded(self, read_timeout: float, what: str, sql: str) -> _Lease:
        """A client (``with``), with failures turned into our errors and fed to the circuit
        breaker."""
        return _Lease(self, read_timeout, what, sql)

    def _failed(self, exc: BaseException, lease: _Lease, reached: bool) -> None:
        """A statement's failure: raised in our words, or (returning) raised as it is."""
        if isinstance(exc, OperationalError):
            if error_code(exc) is not None:  # ClickHouse's error arrived mid-stream
                raise self._rejected(exc, lease.what, lease.sql) from exc
            failure = transport_failure(exc, self.location, self.limits, lease.read_timeout,
                                        self.embedded)
            self._down(failure)
            raise failure from exc
        if isinstance(exc, WarehouseUnavailable):
            if reached or isinstance(exc, WarehouseBusy):
                self.circuit.leave(lease.trial)
            elif isinstance(exc, EngineInUse):  # said by the caller, not an outage to log
                self.circuit.failed(exc)
            else:  # connecting failed
                self._down(exc)
        elif isinstance(exc, DatabaseError):
            raise self._rejected(exc, lease.what, lease.sql) from exc
        else:
            self.circuit.leave(lease.trial)

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
    def raw_slot(self, raw: bool) -> Iterator[None]:
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
            client.query(render(system.PING))
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

    def close(self) -> None:
        """Close the idle clients (and the probe's); clients in use are closed when given
        back (``closed`` is set first)."""
        self.closed = True
        if self._probe_client is not None:
            self._idle.append(self._probe_client)
            self._probe_client = None
        while True:
            try:
                client = self._idle.pop()
            except IndexError:
                break
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                logger.debug("closing a client failed", exc_info=True)
