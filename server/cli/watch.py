"""The loop of ``semantic dev``: poll the model file; on every save validate it, print the plan,
apply it, switch, and say what now serves each endpoint."""

from __future__ import annotations

import threading
import time

from semantic import load_model
from semantic.errors import ModelError, SemanticError
from server.cli.common import print_issues, say, warn
from server.operations.validation import check_offline
from server.runtime.compile import compile_against
from server.runtime.state import State
from server.settings import Settings


class ModelWatcher:
    def __init__(self, state: State, settings: Settings, url: str, stop: threading.Event,
                 poll: float = 0.5) -> None:
        self.state = state
        self.path = settings.model_path
        self.url = url
        self.stop = stop
        self.poll = poll
        self.seen = self._stamp()

    def _stamp(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def run(self) -> None:
        while not self.stop.wait(self.poll):
            stamp = self._stamp()
            if stamp is None or stamp == self.seen:
                continue
            self.seen = stamp
            try:
                self.changed()
            except ModelError as exc:
                print_issues(exc)
                warn("still serving the last good model")
            except SemanticError as exc:
                warn(f"error: {exc.message}; still serving the last good model")

    def changed(self) -> None:
        """Validate, plan, apply and switch; raise ``ModelError`` on a broken model."""
        from server.cli.serving import routing
        from server.operations.apply import migration_steps

        say(f"{self.path} changed: validating")
        model = load_model(self.path)
        check_offline(model)
        warehouse = self.state.warehouse
        compiled = compile_against(model, warehouse)
        say("plan:")
        for step in migration_steps(compiled, warehouse, keep_unused=False):
            say(f"  {step.action:8} {step.table}: {step.detail}")
        started = time.perf_counter()
        self.state.apply(keep_unused=False, report=lambda line: say(f"  {line}"))
        runtime = self.state.runtime()
        ready = sum(r.qualified_table in runtime.ready for r in runtime.compiled.rollups)
        say(f"applied in {time.perf_counter() - started:.1f} s: {ready}/"
            f"{len(runtime.compiled.rollups)} rollups ready, {len(model.endpoints)} "
            f"endpoint(s) at {self.url}")
        for line in routing(runtime):
            say(line)
