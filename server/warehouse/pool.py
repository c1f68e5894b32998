"""The clients of the warehouse and who may use them: a small pool of clickhouse-connect clients
(one engine per process for embedded chDB), the slots for queries that read a raw table, the
circuit breaker in front of ClickHouse, and ClickHouse's failures turned into our errors.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
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
        self._pool: queue.LifoQueue[Any] = queue.LifoQueue()
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
                raise self.busy()
            try:
                return self._pool.get(timeout=0.05)
            except queue.Empty:
                continue

    @property
    def size(self) -> int:
        """How many clients the pool holds at most (queries running at once)."""
        return self._size

    def busy(self) -> WarehouseBusy:
        """The answer to a call that found no client free within the queue timeout."""
        return WarehouseBusy(f"all {self._size} ClickHouse connections are busy "
                             "(SEMANTIC_POOL_SIZE); retry shortly", retry_after=1)

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
            if healthy and not self.closed:
                self._pool.put(client)
            else:
                with self._create_lock:
                    self._created -= 1
    @contextmanager
    def guarded(self, read_timeout: float, what: str, sql: str) -> Iterator[Any]:
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
