"""The Litestar application, assembled from the surfaces in ``server.api``."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Response
from litestar.config.cors import CORSConfig

from semantic.errors import SemanticError
from semantic.model import Model
from server.api import (
    admin,
    cube,
    docs,
    endpoints,
    health,
    ingestion,
    metrics,
    query,
    values,
)
from server.api.mcp import McpSurface
from server.auth.middleware import access_middleware
from server.auth.settings import AccessSettings
from server.explore import routes as explore
from server.http.body_deadline import body_deadline_middleware
from server.http.request_ids import request_id_middleware
from server.http.responses import TABLE_HEADER, error_response
from server.observability.requests import observe_requests
from server.runtime.cache import DEFAULT_MAX_BYTES, DEFAULT_MAX_STALENESS
from server.runtime.compiled import Runtime
from server.runtime.state import State
from server.settings import Limits, SqlSettings
from server.sql.listener import Listener
from server.warehouse.statements import Warehouse

logger = logging.getLogger(__name__)

STATS_REFRESH_SECONDS = 30.0
PROBE_SECONDS = 1.0


def create_app(model: Model, warehouse: Warehouse, refresh_seconds: float = STATS_REFRESH_SECONDS,
               close_warehouse: bool = False, runtime: Runtime | None = None,
               load: Callable[[], Model] | None = None,
               access: AccessSettings | None = None,
               limits: Limits | None = None,
               probe_seconds: float = PROBE_SECONDS,
               cache_bytes: int = DEFAULT_MAX_BYTES,
               max_staleness: float = DEFAULT_MAX_STALENESS,
               sql_socket: socket.socket | None = None,
               sql: SqlSettings | None = None) -> Litestar:
    """Build the app for a validated model. The warehouse is shared, never opened here;
    ``runtime`` is the model already compiled against it, if the caller has one; ``load``
    reads the model file again for ``POST /v1/admin/reload``; ``access`` configures keys,
    JWTs and CORS (default: access control off, no cross-origin callers); ``limits`` bound
    what one request may ask (default: the ``SEMANTIC_MAX_*`` settings); ``cache_bytes``
    bounds the result cache (0: off); ``max_staleness`` is how often writes that bypass the
    service are looked for on a ClickHouse server (0: no caching there); ``sql_socket``, bound
    by the caller, is where the SQL interface (``server.sql``) listens, set by ``sql``."""
    access = access or AccessSettings()
    state = State(model, warehouse, runtime, load, limits, cache_bytes, max_staleness)
    state.secured = access.enabled

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        stop = threading.Event()

        def watch_loop() -> None:
            """Probe the warehouse (readiness, circuit breaker), compile the model once it
            answers, and refresh rollup sizes every ``refresh_seconds``."""
            refreshed = time.monotonic()
            while not stop.wait(probe_seconds):
                if not warehouse.probe():
                    continue
                runtime = state.started
                if runtime is None:
                    state.start_compiling()
                elif time.monotonic() - refreshed >= refresh_seconds:
                    refreshed = time.monotonic()
                    try:
                        runtime.refresh()
                    except SemanticError as exc:
                        logger.warning("refreshing rollup sizes failed: %s", exc.message)

        thread = threading.Thread(target=watch_loop, name="warehouse-watch", daemon=True)
        thread.start()
        if state.watcher is not None:
            threading.Thread(target=state.watcher.run, args=(stop,), name="outside-writes",
                             daemon=True).start()
        if state.started is None:
            # Compiled in the background; startup waits for it only as long as ClickHouse
            # may take to accept a connection (the embedded engine cannot hang: all of it),
            # so a silent server never holds up listening.
            attempt = state.start_compiling()
            wait = None if warehouse.embedded else warehouse.limits.connect_timeout
            await asyncio.to_thread(attempt.done.wait, wait)
        listener = None
        if sql_socket is not None:
            listener = Listener(state, access, sql or SqlSettings())
            await listener.start(sql_socket)
        try:
            yield
        finally:
            stop.set()
            if listener is not None:
                await listener.close()
            state.dispatcher.close()  # its idle worker threads end
            if close_warehouse:
                warehouse.close()

    handlers: list[Any] = []
    mcp = McpSurface(state, access.cors_origins)
    # the generated endpoints' catch-all path goes last
    for surface in (health, docs, metrics, query, values, ingestion, admin, explore, cube, mcp,
                    endpoints):
        handlers += surface.route_handlers(state)
    exception_handlers: dict[Any, Callable[..., Response[bytes]]] = {Exception: error_response}
    cors = CORSConfig(allow_origins=list(access.cors_origins),
                      allow_methods=["GET", "POST", "OPTIONS"],
                      allow_headers=["Authorization", "Content-Type", "X-Request-Id"],
                      expose_headers=["X-Request-Id", TABLE_HEADER],
                      ) if access.cors_origins else None
    # one access check (its key store and JWKS cache) for the routes and the endpoint path
    guard = access_middleware(access)
    app = Litestar(route_handlers=handlers, lifespan=[lifespan, mcp.running],
                   exception_handlers=exception_handlers, openapi_config=None,
                   middleware=[body_deadline_middleware(warehouse.limits.body_timeout),
                               guard], cors_config=cors,
                   logging_config=None)  # configured once, by server.observability.logs
    # Around the whole app, so requests no route matches get an id and a log line too; the
    # request log sits inside the id so its line carries the id. The generated endpoints'
    # plain JSON GETs are answered ahead of all of it, with the same access control, id and
    # log line.
    app.asgi_handler = endpoints.endpoint_fast_path(
        state, request_id_middleware(observe_requests(app.asgi_handler)),
        guard(app.asgi_handler))
    app.state.semantic = state
    return app


__all__ = ["TABLE_HEADER", "create_app"]
