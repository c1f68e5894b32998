"""The query use cases every transport calls: read a request, answer it, explain it, and
describe the model as the caller may see it.

The HTTP routes, the MCP tools and the command line all go through here, so a request is read
once (``engine.query.fields``), secured and normalized once (``Runtime.plan``), and answered
by the same path (``server.service.answers``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from sqlglot import exp

from engine.dialect.system import explain_estimate
from engine.model.compiled import CompiledDimension, CompiledMeasure, CompiledSource
from engine.query.fields import parse_query
from engine.query.request import Query, QueryError
from engine.serving.plan import Plan
from semantic.errors import ModelError, SemanticError
from semantic.joins import split_member
from server.auth.principal import current_access
from server.http.serialize import encode, json_rows, json_value
from server.runtime.compiled import Answer, Runtime
from server.runtime.state import State
from server.service.meta_access import meta_for
from server.service.model_outline import endpoints_meta, joins_meta, model_outline, time_meta
from server.warehouse.availability import WarehouseUnavailable


def decode_request(body: bytes) -> object:
    """A request body's JSON; errors name the body, in our own words."""
    if not body.strip():
        raise QueryError("body", "send a JSON object, e.g. {\"measures\": [\"total_events\"]}")
    try:
        return msgspec.json.decode(body)
    except msgspec.ValidationError:  # msgspec's only check on untyped JSON: number range
        raise QueryError("body", "the body holds a number too large for a 64-bit float") from None
    except msgspec.DecodeError as exc:
        raise QueryError("body", f"the body is not valid JSON (UTF-8): {exc}") from None
    except RecursionError:
        raise QueryError("body", "the body is nested too deeply") from None


def read_query(state: State, runtime: Runtime, body: bytes) -> Query:
    """The query of a request body, read once: its source resolved, within the server's
    limits."""
    return parse_query(decode_request(body), state.limits.query, runtime.source_name)


def explain_query(runtime: Runtime, query: Query) -> dict[str, Any]:
    """``/v1/explain``: the plan of ``query`` and what it is expected to read (not under
    row-level security: ClickHouse's estimate is over every tenant's rows)."""
    plan = runtime.plan(query)
    explained = explain_plan(plan)
    explained["estimate"] = (estimate_plan(runtime, plan) if not plan.query.security else
                             dict.fromkeys(("read_bytes", "rows", "tables")))
    return explained


#: what a secured caller's explain leaves out: figures computed over whole tables
HIDDEN_FIGURES = ("rows", "bytes", "read_bytes", "estimated_ms")


def _candidates(plan: Plan) -> list[dict[str, object]]:
    """Every rollup's verdict; under row-level security without the rollups' sizes and the
    planner's estimates (they are over every tenant's rows)."""
    candidates = [c.to_dict() for c in plan.candidates]
    if plan.query.security:
        return [dict(c, **dict.fromkeys(HIDDEN_FIGURES)) for c in candidates]
    return candidates


def _range(plan: Plan) -> dict[str, Any] | None:
    if plan.query.interval is None:
        return None
    start, end = plan.query.interval
    return {"from": start.isoformat() if start else None, "to": end.isoformat() if end else None}


def _statistics(answer: Answer) -> dict[str, Any] | None:
    """What ClickHouse read for the answer; under row-level security, rows and bytes read are
    null (they count other tenants' rows scanned on the way)."""
    if answer.stats is None:
        return None
    statistics = answer.stats.to_dict()
    if answer.plan.query.security:
        statistics.update(rows_read=None, bytes_read=None)
    return statistics


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
        "statistics": _statistics(answer),
    }


def answer_body(answer: Answer) -> dict[str, Any]:
    """The ``/v1/query`` answer: rows and meta."""
    return {"data": json_rows(answer.plan.columns, answer.values), "meta": _meta(answer)}


def render_answer(answer: Answer) -> bytes:
    """The ``/v1/query`` body of an answer, encoded."""
    return encode(answer_body(answer))


def _model_sql(expression: exp.Expression | None) -> str | None:
    """An expression as the model writes it: a joined column (``plane.seats``), which the
    compiled expression reads as the join exposes it (one quoted name), unquoted."""
    if expression is None:
        return None

    def unquote(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and not node.table and "." in node.name:
            return exp.column(exp.to_identifier(node.name, quoted=False))
        return node

    return expression.transform(unquote).sql(dialect="clickhouse")


def _measure_meta(source: CompiledSource, compiled: CompiledMeasure) -> dict[str, Any]:
    measure = source.source.measure(compiled.name)
    assert measure is not None
    joins = sorted({".".join(path) for key in compiled.components
                    for path, _ in source.components[key].needs})
    return {
        "name": compiled.name, "agg": measure.agg, "sql": _model_sql(compiled.argument),
        "filter": _model_sql(compiled.condition),
        "level": measure.level, "method": measure.method,
        "exact": compiled.exact, "exactness": compiled.note,
        "joins": joins, "description": compiled.description,
    }


def _dimension_meta(sources: Mapping[str, CompiledSource], compiled: CompiledSource,
                    dimension: CompiledDimension) -> dict[str, Any]:
    """A dimension; a joined one (``airline.name``) shows the SQL and description it has in
    the source it is declared in, and the joins it is reached through."""
    declared_in = compiled.paths[dimension.path].target.name if dimension.path \
        else compiled.name
    _, name = split_member(dimension.name)
    own = sources[declared_in].dimensions[name]
    declared = sources[declared_in].source.dimension(name)
    assert declared is not None
    return {"name": dimension.name, "type": dimension.type,
            "sql": own.expression.sql(dialect="clickhouse"),
            "description": declared.description, "path": list(dimension.path),
            "source": declared_in}


def explain_plan(plan: Plan) -> dict[str, Any]:
    """Why a query is answered the way it is: tables, SQL and every candidate's verdict."""
    return {
        "table": plan.table,
        "tables": list(plan.tables),
        "rollup": plan.rollup.name if plan.rollup else None,
        "sql": plan.sql,
        "parameters": {k: json_value(v) for k, v in plan.parameters.items()},
        "pieces": [p.to_dict(plan.raw_table) for p in plan.pieces],
        "reads": [{**read, "pieces": [p.to_dict(plan.raw_table) for p in pieces]}
                  for read, pieces in plan.reads],
        "windows": [dict(window) for window in plan.windows],
        "candidates": _candidates(plan),
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
    secured = frozenset(s.name for s in state.model.sources if s.security)
    return meta_for(_whole_meta(state), current_access(), secured)


def _whole_meta(state: State) -> dict[str, Any]:
    try:
        runtime = state.runtime()
    except (WarehouseUnavailable, ModelError) as exc:
        return model_outline(state.model, exc.message.splitlines()[0])
    sources = []
    for compiled in runtime.compiled.sources.values():
        source = compiled.source
        rollups = []
        declared = {r.name: r for r in source.rollups}
        for rollup in compiled.rollups:
            stats = runtime.ready.get(rollup.qualified_table)
            rollups.append({
                "name": rollup.name, "table": rollup.qualified_table, "grain": rollup.grain,
                "dimensions": [d.name for d in declared[rollup.name].dimensions],
                "join_keys": [column for column, _, _ in rollup.keys],
                "measures": list(rollup.measures), "ready": stats is not None,
                "rows": stats.rows if stats else None, "bytes": stats.bytes if stats else None,
            })
        sources.append({
            "name": source.name,
            "description": source.description,
            "table": source.table,
            "time": ({"name": compiled.time.name, "type": compiled.time.type}
                     if compiled.time else None),
            **joins_meta(source),
            "dimensions": [_dimension_meta(runtime.compiled.sources, compiled, d)
                           for d in compiled.dimensions.values()],
            "timezone": compiled.timezone,
            "week_start": source.week_start,
            "fiscal_year_start": source.fiscal_year_start,
            "measures": [_measure_meta(compiled, m) for m in compiled.measures.values()],
            "metrics": [
                {"name": m.name, "sql": m.expression.sql(dialect="clickhouse"),
                 "measures": list(m.leaves), "exact": m.exact, "exactness": m.note,
                 "time": time_meta(m.time), "description": m.description}
                for m in compiled.metrics.values()
            ],
            "rollups": rollups,
        })
    return {"compiled": True, "sources": sources, "endpoints": endpoints_meta(runtime.model)}


