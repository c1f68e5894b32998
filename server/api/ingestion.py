"""Ingestion: ``POST /v1/sources/{source}/rows`` (one batch, or one batch of a staged load)
and ``/v1/sources/{source}/loads/{load}`` (commit or cancel a staged load)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, delete, post
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.handlers import HTTPRouteHandler
from litestar.params import RawBody

from semantic.errors import FieldError
from server.http.responses import error_response, json_response
from server.observability.metrics import INGESTED_ROWS
from server.runtime.state import State
from server.service.ingestion import cancel_load, commit_load, ingest


class BodyTooLarge(FieldError):
    code = "body_too_large"
    status = 413


def _truthy(request: Request[Any, Any, Any], name: str) -> bool:
    return request.query_params.get(name, "false").lower() in ("1", "true")


def route_handlers(state: State) -> list[HTTPRouteHandler]:
    limits = state.warehouse.limits

    def too_large(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
        return error_response(request, BodyTooLarge(
            "body", f"the body is larger than {limits.max_body_bytes:,} bytes "
            f"(SEMANTIC_MAX_BODY_BYTES); send at most {limits.max_batch_rows:,} rows "
            "(SEMANTIC_MAX_BATCH_ROWS) within that size per request, or stage a bigger load "
            "over several requests (?load=ID, then POST .../loads/ID/commit)"))

    @post("/v1/sources/{source_name:str}/rows", sync_to_thread=True, status_code=200,
          request_max_body_size=limits.max_body_bytes,
          exception_handlers={RequestEntityTooLarge: too_large})
    def rows(request: Request[Any, Any, Any], body: RawBody) -> Response[bytes]:
        dry_run = _truthy(request, "dry_run")
        load = request.query_params.get("load")
        offset = request.query_params.get("line_offset", "0")
        if not offset.isdigit() or len(offset) > 12:
            raise FieldError("line_offset", "line_offset is a whole number of lines, >= 0")
        inserted = ingest(state.runtime(), request.path_params["source_name"], body,
                          request.headers.get("content-type", ""), dry_run, load, int(offset))
        if not dry_run and not load:
            INGESTED_ROWS.labels(inserted.source).inc(inserted.rows)
        payload: dict[str, Any] = {
            "source": inserted.source, "table": inserted.table,
            "inserted": 0 if dry_run or load else inserted.rows, "checked": inserted.rows,
            "elapsed_ms": round(inserted.elapsed_ms, 3)}
        if load:
            payload["staged"] = 0 if dry_run else inserted.rows
            payload["load"] = load
        return json_response(payload)

    @post("/v1/sources/{source_name:str}/loads/{load:str}/commit", sync_to_thread=True,
          status_code=200)
    def commit(request: Request[Any, Any, Any]) -> Response[bytes]:
        load = request.path_params["load"]
        inserted = commit_load(state.runtime(), request.path_params["source_name"], load,
                               _truthy(request, "replace"))
        INGESTED_ROWS.labels(inserted.source).inc(inserted.rows)
        return json_response({"source": inserted.source, "table": inserted.table,
                              "inserted": inserted.rows, "load": load,
                              "elapsed_ms": round(inserted.elapsed_ms, 3)})

    @delete("/v1/sources/{source_name:str}/loads/{load:str}", sync_to_thread=True,
            status_code=200)
    def cancel(request: Request[Any, Any, Any]) -> Response[bytes]:
        load = request.path_params["load"]
        cancel_load(state.runtime(), request.path_params["source_name"], load)
        return json_response({"load": load, "cancelled": True})

    return [rows, commit, cancel]
