"""Distinct values of a dimension, for pickers (the explore page's filters):
``GET /v1/sources/{source}/dimensions/{dimension}/values`` and the MCP tool.

Read-only and bounded: an ordinary query (one dimension, no measure) through the normal
planner, so a rollup holding the dimension answers it and the raw table is read only when
none does.
"""

from __future__ import annotations

from typing import Any

from engine.query.request import Filter, Order, Query, QueryError
from semantic.suggest import did_you_mean, shown
from server.http.serialize import json_value
from server.observability.requests import note_answer
from server.runtime.state import State

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
def dimension_values(state: State, source_name: str | None, dimension: str, limit: int,
                     contains: str | None = None) -> dict[str, Any]:
    """The distinct values of a dimension (sorted, at most ``limit``, those containing
    ``contains``) as the route answers them; the caller's row-level security applies."""
    runtime = state.runtime()
    source = runtime.compiled.sources[runtime.source_name(source_name)]
    if dimension not in source.dimensions:
        known = list(source.dimensions)
        raise QueryError("dimension", f"unknown dimension '{shown(dimension)}'"
                         f"{did_you_mean(dimension, known)}; known: {', '.join(known)}")
    if not 1 <= limit <= MAX_LIMIT:
        raise QueryError("limit", f"limit must be from 1 to {MAX_LIMIT}")
    filters = (Filter(dimension, "contains", (contains,)),) if contains else ()
    query = Query(source=source.name, measures=(), dimensions=(dimension,),
                  filters=filters, order=(Order(dimension, False),), limit=limit)
    plan = runtime.plan(query)
    answer = runtime.run(plan)
    note_answer(plan.tables, len(answer.rows))
    return {"source": source.name, "dimension": dimension,
            "values": [json_value(row[dimension]) for row in answer.rows],
            "truncated": answer.truncated, "table": plan.table}


