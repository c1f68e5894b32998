"""The Litestar application: generated endpoints, ``/v1/query``, ``/v1/meta``, ``/healthz``."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Request, Response, get, post
from litestar.exceptions import HTTPException
from litestar.handlers import HTTPRouteHandler
from litestar.params import RawBody

from engine.compiler import CompiledMeasure
from engine.planner import Plan
from engine.query import Filter, Order, Query, QueryError, TimeRange
from semantic.errors import ModelError, SemanticError
from semantic.model import Endpoint, Model, Source
from semantic.suggest import did_you_mean
from server.ingest import ingest
from server.runtime import Answer, Runtime, compile_against
from server.schemas import decode_query, to_query
from server.serialize import encode, json_value
from server.warehouse import Warehouse, WarehouseUnavailable

logger = logging.getLogger(__name__)

TABLE_HEADER = "X-Semantic-Table"
JSON = "application/json"
STATS_REFRESH_SECONDS = 30.0


class State:
    """What the app keeps between requests: the warehouse and the (lazily) compiled runtime.

    The runtime needs the warehouse to compile (column types); while ClickHouse is down the
    app stays up and answers 503, compiling on the first request that finds it back.
    """

    def __init__(self, model: Model, warehouse: Warehouse, runtime: Runtime | None,
                 load: Callable[[], Model] | None = None) -> None:
        self.model = model
        self.warehouse = warehouse
        self._runtime = runtime
        self._lock = threading.Lock()
        self._applying = threading.Lock()
        self._load = load

    def runtime(self) -> Runtime:
        if self._runtime is None:
            with self._lock:
                if self._runtime is None:
                    self._runtime = Runtime.start(self.model, self.warehouse)
        return self._runtime

    def apply(self, keep_unused: bool) -> list[str]:
        """``semantic apply`` inside the server: build the new rollups while the current ones
        keep serving, switch to the new model, then drop what it no longer uses."""
        from server.operations import apply_model

        if self._load is None:
            raise SemanticError("this server was started without a model file to apply")
        with self._applying:
            log: list[str] = []
            compiled = compile_against(self._load(), self.warehouse)
            apply_model(compiled, self.warehouse, log.append, keep_unused=True)
            self.reload()
            log.append("switched to the new model")
            if not keep_unused:
                apply_model(compiled, self.warehouse, log.append, keep_unused=False)
            return log

    def reload(self) -> Runtime:
        """Load the model file again, compile it and switch to it; requests in flight finish
        on the old runtime. A model with errors changes nothing (``ModelError``)."""
        if self._load is None:
            raise SemanticError("this server was started without a model file to reload")
        model = self._load()
        runtime = Runtime.start(model, self.warehouse)
        with self._lock:
            self.model, self._runtime = model, runtime
        logger.info("reloaded the model: %d rollup(s), %d ready, %d endpoint(s)",
                    len(runtime.compiled.rollups),
                    sum(r.qualified_table in runtime.ready for r in runtime.compiled.rollups),
                    len(model.endpoints))
        return runtime

    @property
    def started(self) -> Runtime | None:
        return self._runtime


def _json(payload: Any, status: int = 200,
          headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(content=encode(payload), status_code=status, media_type=JSON,
                    headers=headers or {})


def _rows(answer: Answer) -> list[dict[str, Any]]:
    return [{k: json_value(v) for k, v in row.items()} for row in answer.rows]


def _range(plan: Plan) -> dict[str, Any] | None:
    if plan.query.interval is None:
        return None
    start, end = plan.query.interval
    return {"from": start.isoformat() if start else None, "to": end.isoformat() if end else None}


def _meta(answer: Answer) -> dict[str, Any]:
    plan = answer.plan
    return {
        "table": plan.table,
        "tables": list(plan.tables),
        "rollup": plan.rollup.name if plan.rollup else None,
        "source": plan.query.source,
        "time_range": _range(plan),
        "timezone": plan.query.timezone,
        "rows": len(answer.rows),
        "truncated": answer.truncated,
        "limit": plan.query.limit,
        "elapsed_ms": round(answer.elapsed_ms, 3),
        "columns": list(plan.columns),
    }


#: query parameters every generated endpoint takes besides dimension filters
ENDPOINT_PARAMETERS = ("from", "to", "range", "timezone", "limit", "offset")


def _integer(name: str, values: list[str]) -> int:
    try:
        return int(values[-1])
    except ValueError:
        raise QueryError(name, f"{name} must be an integer") from None


def _endpoint_query(endpoint: Endpoint, model: Model, params: dict[str, list[str]]) -> Query:
    """The saved query of an endpoint with the caller's parameters: ``?region=eu`` (repeat for
    several values) filters a dimension; ``from``/``to`` or ``range`` (``last 7 days``) and
    ``timezone`` set the time range; ``limit``/``offset`` page."""
    source = model.source(endpoint.source.name)
    assert source is not None
    measures = tuple(f.member.name for f in endpoint.fields if source.is_aggregate(f.member.name))
    dimensions = tuple(f.member.name for f in endpoint.fields
                       if not source.is_aggregate(f.member.name))
    by_field = {f.name: f.member.name for f in endpoint.fields}
    filters = [Filter(f.dimension.name, f.op, f.values) for f in endpoint.filters]
    limit, offset = endpoint.limit, 0
    start = end = relative = timezone = None
    for key, values in params.items():
        if key == "limit":
            limit = _integer("limit", values)
            if endpoint.limit is not None and not 1 <= limit <= endpoint.limit:
                raise QueryError("limit", f"limit must be from 1 to {endpoint.limit} on "
                                 f"{endpoint.path}")
        elif key == "offset":
            offset = _integer("offset", values)
        elif key in ("from", "to", "range", "timezone"):
            value = values[-1]
            if key == "from":
                start = value
            elif key == "to":
                end = value
            elif key == "range":
                relative = value
            else:
                timezone = value
        elif source.dimension(key) is not None:
            filters.append(Filter(key, "in" if len(values) > 1 else "eq", tuple(values)))
        else:
            known = [d.name for d in source.dimensions] + list(ENDPOINT_PARAMETERS)
            raise QueryError(key, f"unknown query parameter '{key}'{did_you_mean(key, known)}; "
                             f"use a dimension filter or one of {', '.join(known)}")
    if relative is not None and (start is not None or end is not None):
        raise QueryError("range", "give 'range' or 'from'/'to', not both")
    time_range = None
    if relative is not None:
        time_range = TimeRange(relative=relative)
    elif start is not None or end is not None:
        time_range = TimeRange(start, end)
    return Query(
        source=source.name,
        measures=measures,
        dimensions=dimensions,
        grain=endpoint.grain,
        filters=tuple(filters),
        order=tuple(Order(by_field[o.name.name], o.descending) for o in endpoint.order),
        limit=limit,
        offset=offset,
        time_range=time_range,
        timezone=timezone,
    )


def _endpoint_handler(state: State) -> HTTPRouteHandler:
    """One handler for every endpoint of the current model, looked up by path, so a reloaded
    model's endpoints are served without a restart."""
    def handle(request: Request[Any, Any, Any]) -> Response[bytes]:
        path = "/" + request.path_params["path"].lstrip("/")
        if all(e.path != path for e in state.model.endpoints):
            raise HTTPException(status_code=404, detail=f"no endpoint at {path}")
        runtime = state.runtime()
        endpoint = next((e for e in runtime.model.endpoints if e.path == path), None)
        if endpoint is None:  # removed by a reload meanwhile
            raise HTTPException(status_code=404, detail=f"no endpoint at {path}")
        params = {k: request.query_params.getall(k) for k in request.query_params}
        query = _endpoint_query(endpoint, runtime.model, params)
        answer = runtime.run(runtime.plan(query))
        rows = [
            {f.name: json_value(row[f.member.name]) for f in endpoint.fields}
            for row in answer.rows
        ]
        body: Any = rows
        if endpoint.returns == "object":
            body = rows[0] if rows else {f.name: None for f in endpoint.fields}
        return _json(body, headers={TABLE_HEADER: answer.plan.table})

    return get("/{path:path}", name="endpoints", sync_to_thread=True)(handle)


def _measure_meta(source: Source, compiled: CompiledMeasure) -> dict[str, Any]:
    measure = source.measure(compiled.name)
    assert measure is not None
    return {
        "name": compiled.name, "agg": measure.agg,
        "sql": (compiled.argument.sql(dialect="clickhouse")
                if compiled.argument is not None else None),
        "filter": (compiled.condition.sql(dialect="clickhouse")
                   if compiled.condition is not None else None),
        "level": measure.level, "method": measure.method,
        "exact": compiled.exact, "exactness": compiled.note,
        "description": compiled.description,
    }


def explain_plan(plan: Plan) -> dict[str, Any]:
    """Why a query is answered the way it is: tables, SQL and every candidate's verdict."""
    return {
        "table": plan.table,
        "tables": list(plan.tables),
        "rollup": plan.rollup.name if plan.rollup else None,
        "sql": plan.sql,
        "parameters": {k: json_value(v) for k, v in plan.parameters.items()},
        "pieces": [p.to_dict(plan.raw_table) for p in plan.pieces],
        "candidates": [c.to_dict() for c in plan.candidates],
        "time_range": _range(plan),
        "timezone": plan.query.timezone,
    }


def _model_meta(state: State) -> dict[str, Any]:
    runtime = state.runtime()
    sources = []
    for compiled in runtime.compiled.sources.values():
        source = compiled.source
        rollups = []
        for rollup in compiled.rollups:
            stats = runtime.ready.get(rollup.qualified_table)
            rollups.append({
                "name": rollup.name, "table": rollup.qualified_table, "grain": rollup.grain,
                "dimensions": [d.name for _, d in rollup.dimensions],
                "measures": list(rollup.measures), "ready": stats is not None,
                "rows": stats.rows if stats else None, "bytes": stats.bytes if stats else None,
            })
        sources.append({
            "name": source.name,
            "table": source.table,
            "time": ({"name": compiled.time.name, "type": compiled.time.type}
                     if compiled.time else None),
            "dimensions": [
                {"name": d.name, "type": d.type, "sql": d.expression.sql(dialect="clickhouse"),
                 "description": source.dimension(d.name).description  # type: ignore[union-attr]
                 } for d in compiled.dimensions.values()
            ],
            "timezone": compiled.timezone,
            "measures": [_measure_meta(source, m) for m in compiled.measures.values()],
            "metrics": [
                {"name": m.name, "sql": m.expression.sql(dialect="clickhouse"),
                 "measures": list(m.leaves), "exact": m.exact, "exactness": m.note,
                 "description": m.description} for m in compiled.metrics.values()
            ],
            "rollups": rollups,
        })
    endpoints = [
        {"path": e.path, "source": e.source.name, "returns": e.returns, "grain": e.grain,
         "fields": {f.name: f.member.name for f in e.fields},
         "order": [f"{o.name.name} desc" if o.descending else o.name.name for o in e.order],
         "description": e.description}
        for e in runtime.model.endpoints
    ]
    return {"sources": sources, "endpoints": endpoints}


def _error_response(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    if isinstance(exc, SemanticError):
        if exc.status >= 500:
            logger.warning("%s %s: %s", request.method, request.url.path, exc.message)
        return _json({"error": exc.to_dict()}, status=exc.status)
    if isinstance(exc, HTTPException):
        return _json({"error": {"code": "http_error", "message": exc.detail}},
                     status=exc.status_code)
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return _json({"error": {"code": "internal_error", "message": "internal server error"}},
                 status=500)


def create_app(model: Model, warehouse: Warehouse, refresh_seconds: float = STATS_REFRESH_SECONDS,
               close_warehouse: bool = False, runtime: Runtime | None = None,
               load: Callable[[], Model] | None = None) -> Litestar:
    """Build the app for a validated model. The warehouse is shared, never opened here;
    ``runtime`` is the model already compiled against it, if the caller has one; ``load``
    reads the model file again for ``POST /v1/admin/reload``."""
    state = State(model, warehouse, runtime, load)

    @get("/healthz", sync_to_thread=True)
    def healthz() -> Response[bytes]:
        try:
            warehouse.ping()
            runtime = state.runtime()
        except WarehouseUnavailable as exc:
            return _json({"status": "unavailable", "warehouse": warehouse.location,
                          "error": exc.message}, status=503)
        ready = sum(r.qualified_table in runtime.ready for r in runtime.compiled.rollups)
        return _json({"status": "ok", "warehouse": warehouse.location,
                      "rollups_ready": ready, "rollups": len(runtime.compiled.rollups)})

    @get("/v1/meta", sync_to_thread=True)
    def meta() -> Response[bytes]:
        return _json(_model_meta(state))

    @post("/v1/query", sync_to_thread=True, status_code=200)
    def query(body: RawBody) -> Response[bytes]:
        request = decode_query(body)
        runtime = state.runtime()
        source = runtime.source_name(request.source)
        plan = runtime.plan(to_query(request, source), force_raw=request.force_raw)
        answer = runtime.run(plan)
        return _json({"data": _rows(answer), "meta": _meta(answer)},
                     headers={TABLE_HEADER: plan.table})

    @post("/v1/explain", sync_to_thread=True, status_code=200)
    def explain(body: RawBody) -> Response[bytes]:
        request = decode_query(body)
        runtime = state.runtime()
        source = runtime.source_name(request.source)
        plan = runtime.plan(to_query(request, source), force_raw=request.force_raw)
        return _json(explain_plan(plan), headers={TABLE_HEADER: plan.table})

    @post("/v1/admin/reload", sync_to_thread=True, status_code=200)
    def reload() -> Response[bytes]:
        try:
            runtime = state.reload()
        except ModelError as exc:  # the file is wrong, not the server: keep serving the old
            return _json({"error": exc.to_dict()}, status=422)
        return _json({"status": "reloaded", "rollups": len(runtime.compiled.rollups),
                      "rollups_ready": sum(r.qualified_table in runtime.ready
                                           for r in runtime.compiled.rollups),
                      "endpoints": [e.path for e in runtime.model.endpoints]})

    @post("/v1/admin/apply", sync_to_thread=True, status_code=200)
    def apply(request: Request[Any, Any, Any]) -> Response[bytes]:
        keep_unused = request.query_params.get("keep_unused", "false").lower() in ("1", "true")
        try:
            log = state.apply(keep_unused)
        except ModelError as exc:
            return _json({"error": exc.to_dict()}, status=422)
        return _json({"status": "applied", "log": log})

    @post("/v1/sources/{source_name:str}/rows", sync_to_thread=True, status_code=200)
    def rows(request: Request[Any, Any, Any], body: RawBody) -> Response[bytes]:
        dry_run = request.query_params.get("dry_run", "false").lower() in ("1", "true")
        inserted = ingest(state.runtime(), request.path_params["source_name"], body,
                          request.headers.get("content-type", ""), dry_run)
        return _json({"source": inserted.source, "table": inserted.table,
                      "inserted": 0 if dry_run else inserted.rows, "checked": inserted.rows,
                      "elapsed_ms": round(inserted.elapsed_ms, 3)})

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        stop = threading.Event()

        def refresh_loop() -> None:
            while not stop.wait(refresh_seconds):
                runtime = state.started
                if runtime is None:
                    continue
                try:
                    runtime.refresh()
                except SemanticError as exc:
                    logger.warning("refreshing rollup sizes failed: %s", exc.message)

        thread = threading.Thread(target=refresh_loop, name="rollup-stats", daemon=True)
        thread.start()
        try:
            state.runtime()
        except WarehouseUnavailable as exc:
            logger.warning("starting without the warehouse (answering 503): %s", exc.message)
        try:
            yield
        finally:
            stop.set()
            if close_warehouse:
                warehouse.close()

    handlers: list[Any] = [healthz, meta, query, explain, rows, reload, apply]
    handlers.append(_endpoint_handler(state))
    exception_handlers: dict[Any, Callable[..., Response[bytes]]] = {Exception: _error_response}
    app = Litestar(route_handlers=handlers, lifespan=[lifespan],
                   exception_handlers=exception_handlers, openapi_config=None)
    app.state.semantic = state
    return app


__all__ = ["TABLE_HEADER", "create_app"]
