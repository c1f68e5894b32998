"""Ingestion: ``POST /v1/sources/{source}/rows``."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post
from litestar.handlers import HTTPRouteHandler
from litestar.params import RawBody

from server.api.responses import json_response
from server.ingest import ingest
from server.observability.metrics import INGESTED_ROWS
from server.state import State


def route_handlers(state: State) -> list[HTTPRouteHandler]:
    @post("/v1/sources/{source_name:str}/rows", sync_to_thread=True, status_code=200)
    def rows(request: Request[Any, Any, Any], body: RawBody) -> Response[bytes]:
        dry_run = request.query_params.get("dry_run", "false").lower() in ("1", "true")
        inserted = ingest(state.runtime(), request.path_params["source_name"], body,
                          request.headers.get("content-type", ""), dry_run)
        if not dry_run:
            INGESTED_ROWS.labels(inserted.source).inc(inserted.rows)
        return json_response({"source": inserted.source, "table": inserted.table,
                              "inserted": 0 if dry_run else inserted.rows,
                              "checked": inserted.rows,
                              "elapsed_ms": round(inserted.elapsed_ms, 3)})

    return [rows]
