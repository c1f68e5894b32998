"""Cube's REST API (``/cubejs-api/v1``): ``load``, ``meta``, ``sql`` and ``dry-run``, so an
application written for Cube works against this server by changing its ``apiUrl``.

Queries are translated by ``server.cube`` and answered through the same path as
``/v1/query`` (plan cache, result cache, rollup routing, row-level security of the caller), with
the ``X-Semantic-Table`` header. Each result carries ``usedPreAggregations`` (the rollup
tables read) and ``routing`` (our explanation of the choice), which Cube shows only in dev
mode. Errors have Cube's shape, ``{"error": "..."}``, with its status codes.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import HttpMethod, Request, Response, Router, get, route
from litestar.exceptions import HTTPException
from litestar.handlers import HTTPRouteHandler

from engine.query.request import QueryError
from semantic.errors import SemanticError
from server.cube.answers import CubeAnswers, CubeBody
from server.http.request_ids import current_request_id
from server.http.responses import INTERNAL, JSON, OWN_MESSAGES, SERVER_MESSAGES, TABLE_HEADER
from server.http.serialize import encode
from server.runtime.state import State
from server.service.answers import CACHE_HEADER

logger = logging.getLogger(__name__)

PREFIX = "/cubejs-api/v1"


def cube_error(status: int, message: str, **extra: object) -> Response[bytes]:
    """An error as Cube's gateway answers it (plus our request id)."""
    return Response(content=encode({"error": message, **extra,
                                    "requestId": current_request_id()}),
                    status_code=status, media_type=JSON)


def _handle(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    where = f"{request.method} {request.url.path[:200]}"
    if isinstance(exc, SemanticError) and exc.status < 500:
        field = getattr(exc, "field", None)
        return cube_error(exc.status, exc.message, type="UserError", field=field)
    if isinstance(exc, SemanticError):
        if exc.code != "warehouse_unavailable":
            logger.warning("request %s: %s failed (%s): %s", current_request_id(), where,
                           exc.code, exc.message)
        retry = getattr(exc, "retry_after", None)
        # as /v1/query: only the kind of failure, or the limit that was hit (details logged)
        message = exc.message if exc.code in OWN_MESSAGES else \
            SERVER_MESSAGES.get(exc.code, INTERNAL)
        response = cube_error(exc.status, message)
        if retry:
            response.headers["Retry-After"] = str(retry)
        return response
    if isinstance(exc, HTTPException) and exc.status_code < 500:
        response = cube_error(exc.status_code, str(exc.detail))
        response.headers.update(dict(exc.headers or {}))
        return response
    logger.error("request %s: %s failed", current_request_id(), where, exc_info=exc)
    return cube_error(500, INTERNAL)


def _post_body(body: bytes) -> dict[str, Any]:
    try:
        value = msgspec.json.decode(body) if body.strip() else None
    except (msgspec.DecodeError, RecursionError) as exc:
        raise QueryError("body", f"the body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise QueryError("body", "the body is a JSON object: {\"query\": {...}}")
    return value



def _response(answer: CubeBody) -> Response[bytes]:
    headers = {}
    if answer.table is not None:
        headers[TABLE_HEADER] = answer.table
    if answer.hit is not None:
        headers[CACHE_HEADER] = "hit" if answer.hit else "miss"
    return Response(content=answer.body, media_type=JSON, headers=headers)


def route_handlers(state: State) -> list[Router]:
    cube = CubeAnswers(state)

    #: GET (the query in the URL) and POST (in the body) are one handler per path, so an
    #: OPTIONS request's Allow lists both
    def both(path: str) -> HTTPRouteHandler:
        return route(path, http_method=[HttpMethod.GET, HttpMethod.POST], status_code=200,
                     request_max_body_size=state.limits.body_bytes)

    async def arguments(request: Request[Any, Any, Any]) -> dict[str, Any]:
        """The request's ``query`` and ``queryType``, from the URL (GET) or the body (POST)."""
        if request.method == HttpMethod.GET:
            return dict(request.query_params)
        return _post_body(await request.body())

    @both("/load")
    async def load(request: Request[Any, Any, Any]) -> Response[bytes]:
        value = await arguments(request)
        return _response(await cube.load(value.get("query"), value.get("queryType")))

    @get("/meta")
    async def meta() -> Response[bytes]:
        return _response(await cube.meta())

    @both("/sql")
    async def sql(request: Request[Any, Any, Any]) -> Response[bytes]:
        return _response(await cube.sql((await arguments(request)).get("query")))

    @both("/dry-run")
    async def dry_run(request: Request[Any, Any, Any]) -> Response[bytes]:
        return _response(await cube.dry_run((await arguments(request)).get("query")))

    return [Router(path=PREFIX, route_handlers=[load, meta, sql, dry_run],
                   exception_handlers={Exception: _handle})]
