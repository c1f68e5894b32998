"""Liveness (``/healthz``) and readiness (``/readyz``).

Both run on the event loop, touch no warehouse and no worker thread, and read only what the
warehouse-watch thread keeps up to date: they answer in microseconds whatever ClickHouse or
busy request threads are doing.
"""

from __future__ import annotations

from litestar import Response, get
from litestar.handlers import HTTPRouteHandler

from server.http.responses import json_response
from server.runtime.state import State


def route_handlers(state: State) -> list[HTTPRouteHandler]:
    @get("/healthz")
    async def healthz() -> Response[bytes]:
        """The process is alive and serving HTTP (200 even while ClickHouse is down)."""
        return json_response({"status": "ok"})

    @get("/readyz")
    async def readyz() -> Response[bytes]:
        """200 when queries can be answered: the model is compiled against a warehouse that
        answers; else 503 with the reason and ``Retry-After``."""
        warehouse = state.warehouse
        ready, reason = state.readiness()
        if not ready:
            return json_response({"status": "unavailable", "warehouse": warehouse.location,
                                  "reason": reason}, status=503,
                                 headers={"Retry-After": str(warehouse.circuit.retry_after())})
        runtime = state.started
        assert runtime is not None
        rollups = runtime.compiled.rollups
        return json_response({"status": "ready", "warehouse": warehouse.location,
                              "rollups_ready": sum(r.qualified_table in runtime.ready
                                                   for r in rollups),
                              "rollups": len(rollups)})

    return [healthz, readyz]
