"""Liveness: ``/healthz``."""

from __future__ import annotations

from litestar import Response, get
from litestar.handlers import HTTPRouteHandler

from server.api.responses import json_response
from server.state import State
from server.warehouse import WarehouseUnavailable


def route_handlers(state: State) -> list[HTTPRouteHandler]:
    @get("/healthz", sync_to_thread=True)
    def healthz() -> Response[bytes]:
        warehouse = state.warehouse
        try:
            warehouse.ping()
            runtime = state.runtime()
        except WarehouseUnavailable as exc:
            return json_response({"status": "unavailable", "warehouse": warehouse.location,
                                  "error": exc.message}, status=503)
        ready = sum(r.qualified_table in runtime.ready for r in runtime.compiled.rollups)
        return json_response({"status": "ok", "warehouse": warehouse.location,
                              "rollups_ready": ready, "rollups": len(runtime.compiled.rollups)})

    return [healthz]
