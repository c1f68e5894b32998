"""What the app keeps between requests: the model, the warehouse and the compiled runtime."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from semantic.errors import SemanticError
from semantic.model import Model
from server.limits import Limits, load_limits
from server.runtime import Runtime, compile_against
from server.validation import check_offline
from server.warehouse import Warehouse

logger = logging.getLogger(__name__)


class State:
    """What the app keeps between requests: the warehouse and the (lazily) compiled runtime.

    The runtime needs the warehouse to compile (column types); while ClickHouse is down the
    app stays up and answers 503, compiling on the first request that finds it back.
    """

    def __init__(self, model: Model, warehouse: Warehouse, runtime: Runtime | None,
                 load: Callable[[], Model] | None = None, limits: Limits | None = None) -> None:
        self.model = model
        #: what one request may ask for (``SEMANTIC_MAX_*`` settings)
        self.limits = limits or load_limits()
        self.warehouse = warehouse
        self._runtime = runtime
        self._lock = threading.Lock()
        self._applying = threading.Lock()
        self._load = load

    def runtime(self) -> Runtime:
        if self._runtime is None:
            with self._lock:
                if self._runtime is None:
                    self._runtime = Runtime.start(self.model, self.warehouse)
        return self._runtime

    def apply(self, keep_unused: bool,
              report: Callable[[str], None] | None = None) -> tuple[list[str], str]:
        """``semantic apply`` inside the server: build the new rollups while the current ones
        keep serving, switch to the new model, then drop what it no longer uses. Returns the
        log and its summary line."""
        from server.operations import apply_model, apply_summary

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
