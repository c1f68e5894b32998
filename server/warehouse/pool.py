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
from collections.abc import Callable, Iterator, Mapping
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


class _NativeBytes:
    """A whole Native answer as the byte source clickhouse-connect's decoder reads."""

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
    engine runs it: about 0.13 ms, a twentieth of a query on a small rollup. Here a SELECT
    is run on the client's own chDB connection, under its lock, and its Native answer decoded
    by the driver's decoder with one context made once, so the columns and their Python
    types are the driver's. Everything else (commands, inserts, streams) is the driver's.

    ``held``: settings most SELECTs run with (a request's bounds, one thread for a rollup),
    set once on the connection (``SET``) rather than sent with each query: a ``SETTINGS``
    clause costs the engine about 0.05 ms, a fortieth of such a query. A SELECT sends only
    what differs from them (a held setting it does not ask for goes back to ``DEFAULT``), and
    the connection is given back its defaults before the driver uses it for anything, so
    nothing else runs bounded by settings it did not ask for.
    """

    def __init__(self, client: Any, held: Mapping[str, object] | None = None) -> None:
        self._client = client
        handle = client._backend._handle  # noqa: SLF001 - the client's own engine connection
        self._conn = handle.conn
        self._lock: threading.Lock = handle.lock
        self._server_tz = client.server_tz
        self._context = client.create_query_context(query="SELECT 1")
        #: the settings to hold, and those set on the connection now
        self._wanted: dict[str, object] = dict(held or {})
        self._held: dict[str, object] = {}

    @staticmethod
    def wraps(client: Any) -> bool:
        """Whether this driver's chDB client has the connection and lock this class uses."""
        handle = getattr(getattr(client, "_backend", None), "_handle", None)
        return handle is not None and hasattr(handle, "conn") and hasattr(handle, "lock") \
            and _DECODER is not None

    def _set(self, settings: Mapping[str, object]) -> None:
        """``SET`` on the connection (its lock held)."""
        self._conn.query("SET " + _settings_text(settings), "TabSeparated")

    def query(self, sql: str, parameters: dict[str, Any] | None = None,
              settings: dict[str, Any] | None = None) -> Any:
        assert _DECODER is not None
        params: dict[str, Any] = {}
        if parameters:
            bound_sql, bound = _DECODER.bind(sql, parameters, self._server_tz)
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
                if self._held is not wanted and wanted:
                    self._set(wanted)
                    self._held = wanted
                result = self._conn.query(sql + "\n FORMAT Native", "Native", params=params)
        except Exception as exc:  # chDB raises its own error with ClickHouse's text
            raise DatabaseError(str(exc)) from exc
        parsed = _DECODER.parse(_DECODER.buffer(_NativeBytes(result.bytes())), self._context)
        parsed.summary = _chdb_summary(result)
        return parsed

    @property
    def driver(self) -> Any:
        """The driver's client, its connection back at the engine's defaults."""
        if self._held:
            with self._lock:
                self._set(dict.fromkeys(self._held, DEFAULT))
                self._held = {}
        return self._client

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # copy and pickle protocols: not the driver's to answer
            raise AttributeError(name)
        return getattr(self.driver, name)


class _Decoder:
    """The parts of clickhouse-connect ``EmbeddedClient`` uses."""

    def __init__(self) -> None:
        from clickhouse_connect.driver.binding import bind_query
        from clickhouse_connect.driver.ctypes import RespBuffCls
        from clickhouse_connect.driver.transform import NativeTransform
        self.bind: Callable[..., tuple[str | bytes, dict[str, Any]]] = bind_query
        self.buffer: Callable[[_NativeBytes], Any] = RespBuffCls
        self.parse: Callable[[Any, Any], Any] = NativeTransform.parse_response


try:
    _DECODER: _Decoder | None = _Decoder()
except ImportError:  # another clickhouse-connect: every query goes through the driver
    _DECODER = None


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
            if EmbeddedClient.wraps(client):
                return EmbeddedClient(client, self.held)
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
