"""The general query API: ``/v1/query``, ``/v1/explain`` and ``/v1/meta``."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.handlers import HTTPRouteHandler
from litestar.params import RawBody
from litestar.response import Stream

from engine.dialect.system import explain_estimate
from engine.model.compiler import CompiledMeasure
from engine.serving.plan import Plan
from semantic.errors import ModelError, SemanticError
from semantic.model import Source
from server.auth.principal import current_access
from server.http.formats import JSON_FORMAT, named_format, requested_format
from server.http.responses import JSON, TABLE_HEADER, json_response
from server.http.serialize import encode, json_rows, json_value
from server.runtime.compiled import Answer, Runtime
from server.runtime.state import State
from server.service.answers import CACHE_HEADER, current_runtime, serve_answer
from server.service.formatted import serve_formatted
from server.service.meta_access import meta_for
from server.service.model_outline import endpoints_meta, model_outline
from server.service.schemas import decode_query, to_query
from server.warehouse.availability import WarehouseUnavailable


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
        "rows": answer.count,
        "truncated": answer.truncated,
        "limit": plan.query.limit,
        "elapsed_ms": round(answer.elapsed_ms, 3),
        "columns": list(plan.columns),
        "statistics": answer.stats.to_dict() if answer.stats else None,
    }


def answer_body(answer: Answer) -> dict[str, Any]:
    """The ``/v1/query`` answer: rows and meta."""
    return {"data": json_rows(answer.plan.columns, answer.values), "meta": _meta(answer)}


def render_answer(answer: Answer) -> bytes:
    """The ``/v1/query`` body of an answer, encoded."""
    return encode(answer_body(answer))


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


def estimate_plan(runtime: Runtime, plan: Plan) -> dict[str, Any]:
    """What the plan is expected to read, before running it: the planner's estimate of the
    bytes (the chosen rollup's ``read_bytes``) and ClickHouse's ``EXPLAIN ESTIMATE`` of the
    parts, rows and marks read per table (None if ClickHouse cannot estimate)."""
    chosen = next((c for c in plan.candidates if c.chosen), None)
    tables: list[dict[str, Any]] | None = None
    try:
        result = runtime.warehouse.query(explain_estimate(plan.statement), plan.parameters)
        tables = [{"table": f"{db}.{table}", "parts": int(parts), "rows": int(rows),
                   "marks": int(marks)} for db, table, parts, rows, marks in result.rows]
    except SemanticError:
        pass
    return {"read_bytes": chosen.cost if chosen else None,
            "rows": sum(t["rows"] for t in tables) if tables is not None else None,
            "tables": tables}


def model_meta(state: State) -> dict[str, Any]:
    """The compiled model as the caller may see it (only the members its credential may
    read); without one (ClickHouse unreachable since start-up), the model as validated,
    marked ``compiled: false``."""
    return meta_for(_whole_meta(state), current_access())


def _whole_meta(state: State) -> dict[str, Any]:
    try:
        runtime = state.runtime()
    except (WarehouseUnavailable, ModelError) as exc:
        return model_outline(state.model, exc.message.splitlines()[0])
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
            "description": source.description,
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
    return {"compiled": True, "sources": sources, "endpoints": endpoints_meta(runtime.model)}


def route_handlers(state: State) -> list[HTTPRouteHandler]:
    @get("/v1/meta", sync_to_thread=True)
    def meta() -> Response[bytes]:
        return json_response(model_meta(state))

    body_bytes = state.limits.body_bytes

    @post("/v1/query", status_code=200, request_max_body_size=body_bytes)
    async def query(request: Request[Any, Any, Any], body: RawBody) -> Response[bytes] | Stream:
        asked = decode_query(body)
        answer_format = requested_format(request.headers.get("accept"),
                                         request.query_params.get("format"), asked.format)
        runtime = await current_runtime(state)
        source = runtime.source_name(asked.source)
        engine_query = to_query(asked, source, state.limits.query)
        if answer_format is not JSON_FORMAT:
            return await serve_formatted(state, "query", engine_query, asked.force_raw,
                                         answer_format, download=source)
        cached, hit = await serve_answer(state, "query", engine_query, asked.force_raw,
                                         render_answer)
        return Response(content=cached.body, media_type=JSON, headers={
            TABLE_HEADER: cached.table, CACHE_HEADER: "hit" if hit else "miss",
            "Vary": "Accept"})

    @post("/v1/explain", sync_to_thread=True, status_code=200, request_max_body_size=body_bytes)
    def explain(body: RawBody) -> Response[bytes]:
        request = decode_query(body)
        if request.format is not None:  # the plan is the same in every format
            named_format(request.format)
        runtime = state.runtime()
        source = runtime.source_name(request.source)
        plan = runtime.plan(to_query(request, source, state.limits.query),
                            force_raw=request.force_raw)
        explained = explain_plan(plan)
        explained["estimate"] = estimate_plan(runtime, plan)
        return json_response(explained, headers={TABLE_HEADER: plan.table})

    return [meta, query, explain]
