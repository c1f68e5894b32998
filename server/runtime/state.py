"""What the app keeps between requests: the model, the warehouse and the compiled runtime."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from semantic.errors import SemanticError
from semantic.model import Model
from server.operations.apply import apply_model, apply_summary
from server.operations.validation import check_offline
from server.runtime.cache import DEFAULT_MAX_BYTES, DEFAULT_MAX_STALENESS, ResultCache
from server.runtime.compile import compile_against
from server.runtime.compiled import Runtime
from server.runtime.dispatch import Dispatcher
from server.runtime.freshness import PartsWatcher
from server.settings import Limits, load_limits
from server.warehouse.availability import WarehouseUnavailable
from server.warehouse.statements import Warehouse

logger = logging.getLogger(__name__)

#: seconds between two attempts to compile the model after one failed
RETRY_COMPILE_SECONDS = 1.0


@dataclass(slots=True)
class _Attempt:
    """One background attempt to compile the model against the warehouse."""

    done: threading.Event = field(default_factory=threading.Event)
    runtime: Runtime | None = None
    error: SemanticError | None = None
    finished_at: float = 0.0


class State:
    """What the app keeps between requests: the warehouse and the (lazily) compiled runtime.

    The runtime needs the warehouse to compile (column types). Compiling runs in a background
    thread, never behind a lock a request waits on: while ClickHouse is down the app answers
    503 with ``Retry-After`` at once, and it compiles as soon as ClickHouse is back (the
    readiness probe or the next request starts an attempt).
    """

    def __init__(self, model: Model, warehouse: Warehouse, runtime: Runtime | None,
                 load: Callable[[], Model] | None = None, limits: Limits | None = None,
                 cache_bytes: int = DEFAULT_MAX_BYTES,
                 max_staleness: float = DEFAULT_MAX_STALENESS) -> None:
        self.model = model
        #: what one request may ask for (``SEMANTIC_MAX_*`` settings)
        self.limits = limits or load_limits()
        self.warehouse = warehouse
        self._runtime = runtime
        self._lock = threading.Lock()
        self._applying = threading.Lock()
        self._load = load
        #: whether access control is on (the API description says so)
        self.secured = False
        self._attempt: _Attempt | None = None
        self._logged: str | None = None
        self._said_down = False
        #: writers outside this service exist only on a ClickHouse server
        self.watcher = None if warehouse.embedded or max_staleness <= 0 else PartsWatcher(
            warehouse, self._watched_databases, max_staleness, self._outside_change)
        if not warehouse.embedded and max_staleness <= 0:
            cache_bytes = 0  # no bound on staleness: never cache
        self.cache = ResultCache(cache_bytes, self._data_stamp)
        #: places the queries of answers: on the event loop or on worker threads
        self.dispatcher = Dispatcher(warehouse)

    def _data_stamp(self) -> Hashable:
        """What the cached answers depend on besides the query: writes through this
        warehouse, the runtime (model and ready rollups) and writes seen from outside."""
        runtime = self._runtime
        return (self.warehouse.writes, id(runtime), runtime.generation if runtime else 0,
                self.watcher.stamp if self.watcher else 0)

    def _outside_change(self) -> None:
        """A write from outside this service: rollups storing values read through joins are
        checked against their tables now, not at the next periodic refresh."""
        runtime = self._runtime
        if runtime is not None and any(r.stores_from for r in runtime.compiled.rollups):
            runtime.refresh()

    def _watched_databases(self) -> list[str]:
        model = self.model
        return [model.rollup_database, *(s.database for s in model.sources)]

    def start_compiling(self) -> _Attempt:
        """The attempt in flight, else a new one (unless the last failed under a second ago:
        then that one, with its error)."""
        with self._lock:
            attempt = self._attempt
            if attempt is not None and (not attempt.done.is_set() or attempt.runtime is not None
                                        or time.monotonic() - attempt.finished_at
                                        < RETRY_COMPILE_SECONDS):
                return attempt
            attempt = self._attempt = _Attempt()
            model = self.model
        threading.Thread(target=self._compile, args=(attempt, model), name="compile-model",
                         daemon=True).start()
        return attempt

    def _compile(self, attempt: _Attempt, model: Model) -> None:
        try:
            runtime = Runtime.start(model, self.warehouse)
        except SemanticError as exc:
            attempt.error = exc
            # the warehouse logs each later change of its state; an outage met before the
            # model was ever compiled is said here, once
            if isinstance(exc, WarehouseUnavailable):
                if not self._said_down:
                    self._said_down = True
                    logger.warning("starting without the warehouse (answering 503): %s",
                                   exc.message)
            elif self._logged != exc.message:
                self._logged = exc.message
                logger.warning("cannot compile the model against the warehouse yet: %s",
                               exc.message.splitlines()[0])
        except Exception as exc:  # noqa: BLE001 - reported to every waiting request
            logger.exception("compiling the model failed")
            attempt.error = SemanticError(f"compiling the model failed: {type(exc).__name__}")
        else:
            attempt.runtime = runtime
            with self._lock:
                if self._runtime is None and model is self.model:
                    self._runtime = runtime
                    self._logged = None
                    logger.info("compiled the model against %s", self.warehouse.location)
        finally:
            attempt.finished_at = time.monotonic()
            attempt.done.set()

    def _last_error(self) -> SemanticError | None:
        attempt = self._attempt
        return attempt.error if attempt is not None else None

    def runtime(self) -> Runtime:
        """The compiled runtime. Without one, an attempt is made (or joined); a request waits
        for it only while ClickHouse is believed up, bounded by its timeouts; otherwise it
        gets the last failure at once (503 with ``Retry-After``)."""
        runtime = self._runtime
        if runtime is not None:
            return runtime
        attempt = self.start_compiling()
        limits = self.warehouse.limits
        deadline = time.monotonic() + limits.connect_timeout + limits.read_timeout
        circuit = self.warehouse.circuit
        # wait for the attempt, but not once the warehouse is known to be down (the probe
        # may find out first)
        while circuit.failure is None and not attempt.done.wait(0.05) and \
                time.monotonic() < deadline:
            pass
        if attempt.runtime is not None:
            return attempt.runtime
        error = attempt.error
        failure = self.warehouse.circuit.failure
        if error is None and isinstance(failure, WarehouseUnavailable):
            error = failure
        if isinstance(error, WarehouseUnavailable):
            raise error.again(self.warehouse.circuit.retry_after()) from None
        if error is not None:
            raise error
        raise WarehouseUnavailable(f"still connecting to ClickHouse at "
                                   f"{self.warehouse.location}; retry shortly", retry_after=1)

    def readiness(self) -> tuple[bool, str]:
        """Whether requests can be answered now, and why not; no I/O (the probe thread keeps
        the warehouse's circuit up to date)."""
        failure = self.warehouse.circuit.failure
        if failure is not None:
            return False, failure.message
        if self._runtime is None:
            error = self._last_error()
            return False, (error.message.splitlines()[0] if error is not None
                           else "the model is not compiled against the warehouse yet")
        return True, "ok"

    def apply(self, keep_unused: bool,
              report: Callable[[str], None] | None = None) -> tuple[list[str], str]:
        """``semantic apply`` inside the server: build the new rollups while the current ones
        keep serving, switch to the new model, then drop what it no longer uses. Returns the
        log and its summary line."""

        if self._load is None:
            raise SemanticError("this server was started without a model file to apply")
        with self._applying:
            log: list[str] = []

            def note(line: str) -> None:
                log.append(line)
                if report is not None:
                    report(line)

            model = self._load()
            check_offline(model)
            compiled = compile_against(model, self.warehouse)
            steps = apply_model(compiled, self.warehouse, note, keep_unused=True)
            changed = model != self.model or any(s.statements for s in steps)
            self.reload(model)
            if changed:
                note("switched to the new model")
            if not keep_unused:
                steps += apply_model(compiled, self.warehouse, note, keep_unused=False,
                                     drops_only=True)
            return log, apply_summary(steps)

    def reload(self, model: Model | None = None) -> Runtime:
        """Load the model file again (or take ``model``), compile it and switch to it; requests
        in flight finish on the old runtime. A model with errors changes nothing
        (``ModelError``)."""
        if model is None:
            if self._load is None:
                raise SemanticError("this server was started without a model file to reload")
            model = self._load()
            check_offline(model)
        runtime = Runtime.start(model, self.warehouse)
        with self._lock:
            self.model, self._runtime = model, runtime
        logger.info("reloaded the model: %d rollup(s), %d ready, %d endpoint(s)",
                    len(runtime.compiled.rollups),
                    sum(r.qualified_table in runtime.ready for r in runtime.compiled.rollups),
                    len(model.endpoints))
        return runtime

    @property
    def started(self) -> Runtime | None:
        return self._runtime
