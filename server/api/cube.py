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
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import msgspec
from anyio import to_thread
from litestar import HttpMethod, Request, Response, Router, get, route
from litestar.exceptions import HTTPException
from litestar.handlers import HTTPRouteHandler

from engine.query.request import QueryError
from engine.serving.plan import Plan
from semantic.errors import SemanticError
from server.auth.principal import current_access
from server.cube.members import Cubes
from server.cube.meta import cube_meta
from server.cube.queries import REGULAR, pivot_query, translate_queries
from server.cube.results import DATA_SOURCE, query_order, result_object, result_rows, used_rollups
from server.cube.translate import Translated
from server.http.request_ids import current_request_id
from server.http.responses import INTERNAL, JSON, OWN_MESSAGES, SERVER_MESSAGES, TABLE_HEADER
from server.http.serialize import encode, json_value
from server.runtime.cache import Cached
from server.runtime.compiled import Answer, Runtime
from server.runtime.state import State
from server.service.answers import CACHE_HEADER, current_runtime, serve_answer
from server.service.queries import explain_plan

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


class _CubesCache:
    """Cube's view of the compiled model, rebuilt when the model is."""

    def __init__(self) -> None:
        self._for: object = None
        self._cubes: Cubes | None = None

    def of(self, runtime: Runtime) -> Cubes:
        if self._for is not runtime.compiled or self._cubes is None:
            self._cubes, self._for = Cubes(runtime.compiled.sources), runtime.compiled
        return self._cubes


def _parse(value: object) -> object:
    """The ``query`` parameter: JSON text (GET) or already a JSON value (POST)."""
    if value is None or value == "undefined":
        raise QueryError("query", "Query param is required")
    if isinstance(value, str):
        try:
            return msgspec.json.decode(value)
        except (msgspec.DecodeError, RecursionError) as exc:
            raise QueryError("query", f"Unable to decode query param as JSON, error: "
                             f"{exc}") from None
    return value


def _post_body(body: bytes) -> dict[str, Any]:
    try:
        value = msgspec.json.decode(body) if body.strip() else None
    except (msgspec.DecodeError, RecursionError) as exc:
        raise QueryError("body", f"the body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise QueryError("body", "the body is a JSON object: {\"query\": {...}}")
    return value


def _used(plan: Plan) -> dict[str, Any] | None:
    rollups = {p.rollup.qualified_table: p.rollup.name for p in plan.pieces
               if p.rollup is not None}
    return used_rollups(plan.tables, rollups, plan.query.source)


def _now_text() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def route_handlers(state: State) -> list[Router]:
    cubes_cache = _CubesCache()
    limits = state.limits.query

    async def translated_for(raw: object) -> tuple[Runtime, str, list[Translated]]:
        runtime = await current_runtime(state)
        query_type, translated = translate_queries(
            _parse(raw), cubes_cache.of(runtime), datetime.now(UTC), limits)
        return runtime, query_type, translated

    async def total_rows(translated: Translated) -> int:
        """Rows of the whole answer (Cube's ``total``), through the same serving path."""
        query = replace(translated.query, limit=limits.rows, offset=0, order=())

        def render(answer: Answer) -> bytes:
            return encode([answer.count, answer.truncated])

        cached, _ = await serve_answer(state, "cube-total", query, render)
        count, truncated = msgspec.json.decode(cached.body)
        if truncated:
            raise QueryError("total", f"'total' counts at most {limits.rows} rows "
                             "(SEMANTIC_MAX_ROWS); this answer has more")
        return int(count)

    async def answer(translated: Translated, query_type: str) -> tuple[Cached, bool]:
        """One query's result object, encoded (cached like every answer)."""
        total = await total_rows(translated) if translated.total else None
        shape = ("cube", query_type, encode(translated.normalized), translated.compare,
                 translated.blend, total)

        def render(answer: Answer) -> bytes:
            plan = answer.plan
            data = result_rows(translated, plan.columns, answer.values)
            return encode(result_object(translated, query_type, data, _now_text(),
                                        _used(plan), explain_plan(plan), total))

        return await serve_answer(state, shape, translated.query, render, route="cube")

    async def load(raw: object, multi: object) -> Response[bytes]:
        _, query_type, translated = await translated_for(raw)
        if query_type != REGULAR and multi != "multi":
            raise QueryError("queryType", f"'{query_type}' query type is not supported by the "
                             "client. Please update the client.")
        answers = [await answer(t, query_type) for t in translated]
        first, _ = answers[0]
        body = first.body
        if multi == "multi":
            body = (b'{"queryType":' + encode(query_type) + b',"results":[' +
                    b",".join(cached.body for cached, _ in answers) + b'],"pivotQuery":' +
                    encode(pivot_query(query_type, translated)) + b',"slowQuery":false}')
        hit = all(hit for _, hit in answers)
        return Response(content=body, media_type=JSON, headers={
            TABLE_HEADER: first.table, CACHE_HEADER: "hit" if hit else "miss"})

    async def planned(raw: object) -> tuple[str, list[tuple[Translated, Plan]]]:
        runtime, query_type, translated = await translated_for(raw)
        plans = [(t, await to_thread.run_sync(runtime.plan, t.query)) for t in translated]
        return query_type, plans

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
    async def load_route(request: Request[Any, Any, Any]) -> Response[bytes]:
        value = await arguments(request)
        return await load(value.get("query"), value.get("queryType"))

    @get("/meta")
    async def meta() -> Response[bytes]:
        runtime = await current_runtime(state)
        described = cube_meta(cubes_cache.of(runtime))
        access = current_access()
        if access is not None and access.members is not None:
            allowed = access.members
            for cube in described["cubes"]:
                for kind in ("measures", "dimensions"):
                    cube[kind] = [m for m in cube[kind] if m["name"].split(".", 1)[1] in allowed
                                  or m["type"] == "time"]
        return Response(content=encode(described), media_type=JSON)

    async def sql(raw: object) -> Response[bytes]:
        query_type, plans = await planned(raw)
        bodies = []
        for translated, plan in plans:
            used = _used(plan)
            bodies.append({"sql": {
                "sql": [plan.sql, [json_value(v) for v in plan.parameters.values()]],
                "parameters": {k: json_value(v) for k, v in plan.parameters.items()},
                "order": query_order(translated.columns, plan.query.order),
                "aliasNameToMember": {c: translated.columns[c].key for c in plan.columns},
                "preAggregations": list((used or {}).values()), "external": False,
                "dataSource": DATA_SOURCE, "routing": explain_plan(plan)},
                "dataSource": DATA_SOURCE})
        return Response(content=encode(bodies[0] if query_type == REGULAR else bodies),
                        media_type=JSON, headers={TABLE_HEADER: plans[0][1].table})

    async def dry_run(raw: object) -> Response[bytes]:
        query_type, plans = await planned(raw)
        translated = [t for t, _ in plans]
        body = {"queryType": query_type,
                "normalizedQueries": [{**t.normalized, "queryType": query_type}
                                      for t in translated],
                "queryOrder": [query_order(t.columns, p.query.order) for t, p in plans],
                "transformedQueries": [explain_plan(p) for _, p in plans],
                "pivotQuery": pivot_query(query_type, translated)}
        return Response(content=encode(body), media_type=JSON,
                        headers={TABLE_HEADER: plans[0][1].table})

    @both("/sql")
    async def sql_route(request: Request[Any, Any, Any]) -> Response[bytes]:
        return await sql((await arguments(request)).get("query"))

    @both("/dry-run")
    async def dry_run_route(request: Request[Any, Any, Any]) -> Response[bytes]:
        return await dry_run((await arguments(request)).get("query"))

    return [Router(path=PREFIX, route_handlers=[load_route, meta, sql_route, dry_run_route],
                   exception_handlers={Exception: _handle})]
