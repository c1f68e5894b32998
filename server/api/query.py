"""The general query API: ``/v1/query``, ``/v1/explain`` and ``/v1/meta``."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.handlers import HTTPRouteHandler
from litestar.params import RawBody
from litestar.response import Stream

from server.http.formats import JSON_FORMAT, named_format, requested_format
from server.http.responses import JSON, TABLE_HEADER, json_response
from server.runtime.state import State
from server.service.answers import CACHE_HEADER, current_runtime, serve_answer
from server.service.formatted import serve_formatted
from server.service.queries import explain_query, model_meta, read_query, render_answer


def route_handlers(state: State) -> list[HTTPRouteHandler]:
    @get("/v1/meta", sync_to_thread=True)
    def meta() -> Response[bytes]:
        return json_response(model_meta(state))

    body_bytes = state.limits.body_bytes

    @post("/v1/query", status_code=200, request_max_body_size=body_bytes)
    async def query(request: Request[Any, Any, Any], body: RawBody) -> Response[bytes] | Stream:
        runtime = await current_runtime(state)
        asked = read_query(state, runtime, body)
        answer_format = requested_format(request.headers.get("accept"),
                                         request.query_params.get("format"), asked.format)
        if answer_format is not JSON_FORMAT:
            return await serve_formatted(state, "query", asked, answer_format,
                                         download=asked.source)
        cached, hit = await serve_answer(state, "query", asked, render_answer)
        return Response(content=cached.body, media_type=JSON, headers={
            TABLE_HEADER: cached.table, CACHE_HEADER: "hit" if hit else "miss",
            "Vary": "Accept"})

    @post("/v1/explain", sync_to_thread=True, status_code=200, request_max_body_size=body_bytes)
    def explain(body: RawBody) -> Response[bytes]:
        runtime = state.runtime()
        asked = read_query(state, runtime, body)
        if asked.format is not None:  # the plan is the same in every format
            named_format(asked.format)
        explained = explain_query(runtime, asked)
        return json_response(explained, headers={TABLE_HEADER: explained["table"]})

    return [meta, query, explain]
