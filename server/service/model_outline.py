"""``/v1/meta`` when the model could not be compiled against the warehouse (ClickHouse down
since start-up, or a table missing): the model as validated from the YAML alone.

It has every name, expression and description, but no ClickHouse types, exactness or rollup
sizes (those need the warehouse); ``compiled: false`` and ``reason`` say so. The parts that
need no warehouse (endpoints, joins) are described here for both.
"""

from __future__ import annotations

from typing import Any

from semantic.joins import joined_dimensions
from semantic.model import Model, Source, TimeFunction


def time_meta(function: TimeFunction | None) -> dict[str, Any] | None:
    """A time function as meta shows it (None for a metric of measures)."""
    if function is None:
        return None
    return {"function": function.kind, "measure": function.measure.name,
            "window": str(function.window) if function.window else None,
            "period": function.period, "by": str(function.by) if function.by else None,
            "detail": function.describe()}


def endpoints_meta(model: Model) -> list[dict[str, Any]]:
    return [
        {"path": e.path, "source": e.source.name, "returns": e.returns, "grain": e.grain,
         "fields": {f.name: f.member.name for f in e.fields},
         "order": [f"{o.name.name} desc" if o.descending else o.name.name for o in e.order],
         "filters": [{"member": f.dimension.name, "op": f.op, "values": list(f.values)}
                     for f in e.filters],
         "limit": e.limit,
         "description": e.description}
        for e in model.endpoints
    ]


def joins_meta(source: Source) -> dict[str, Any]:
    """The source's ``primary_key`` and its own ``joins`` (each join's target source, keys
    as ``{this source's column: the target's key column}`` and relationship)."""
    return {
        "primary_key": list(source.primary_key),
        "joins": [{"name": j.name, "source": j.source.name, "keys": dict(j.keys),
                   "relationship": j.relationship} for j in source.joins],
    }


def _source_outline(model: Model, source: Source) -> dict[str, Any]:
    dimensions: list[dict[str, Any]] = [
        {"name": d.name, "type": None, "sql": d.sql or d.column or d.name,
         "description": d.description, "path": [], "source": source.name}
        for d in source.dimensions]
    dimensions += [{"name": name, "type": None, "sql": d.sql or d.column or d.name,
                    "description": d.description, "path": list(path.names),
                    "source": path.target.name}
                   for name, (path, d) in joined_dimensions(model, source).items()]
    return {
        "name": source.name,
        "description": source.description,
        "table": source.table,
        "time": {"name": source.time_column, "type": None} if source.time_column else None,
        **joins_meta(source),
        "dimensions": dimensions,
        "timezone": source.timezone,
        "week_start": source.week_start,
        "fiscal_year_start": source.fiscal_year_start,
        "measures": [{"name": m.name, "agg": m.agg, "sql": m.sql or m.column, "filter": m.filter,
                      "level": m.level, "method": m.method, "exact": None, "exactness": None,
                      "joins": None, "description": m.description} for m in source.measures],
        "metrics": [{"name": m.name, "sql": m.sql, "measures": None, "exact": None,
                     "exactness": None, "time": time_meta(m.time), "description": m.description}
                    for m in source.metrics],
        "rollups": [{"name": r.name, "table": None, "grain": r.grain,
                     "dimensions": [d.name for d in r.dimensions],
                     "join_keys": None, "measures": [m.name for m in r.measures],
                     "ready": False, "rows": None,
                     "bytes": None} for r in source.rollups],
    }


def model_outline(model: Model, reason: str) -> dict[str, Any]:
    """The validated model in ``/v1/meta``'s shape, marked ``compiled: false``."""
    return {"compiled": False, "reason": reason,
            "sources": [_source_outline(model, s) for s in model.sources],
            "endpoints": endpoints_meta(model)}
