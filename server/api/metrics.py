"""Prometheus metrics: ``GET /metrics`` in the text exposition format."""

from __future__ import annotations

from litestar import Response, get
from litestar.handlers import HTTPRouteHandler
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from server.observability.collector import StateCollector
from server.observability.metrics import REGISTRY
from server.runtime.state import State


def route_handlers(state: State) -> list[HTTPRouteHandler]:
    # the state's gauges (readiness, sizes, data age) belong to this app, not the process
    current = CollectorRegistry(auto_describe=False)
    current.register(StateCollector(state))

    @get("/metrics", sync_to_thread=True)
    def metrics() -> Response[bytes]:
        body = generate_latest(REGISTRY) + generate_latest(current)
        return Response(content=body, media_type=CONTENT_TYPE_LATEST)

    return [metrics]
