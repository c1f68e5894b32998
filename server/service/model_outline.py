"""``/v1/meta`` when the model could not be compiled against the warehouse (ClickHouse down
since start-up, or a table missing): the model as validated from the YAML alone.

It has every name, expression and description, but no ClickHouse types, exactness or rollup
sizes (those need the warehouse); ``compiled: false`` and ``reason`` say so.
"""

from __future__ import annotations

from typing import Any

from semantic.model import Model, Source


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


def _source_outline(source: Source) -> dict[str, Any]:
    return {
        "name": source.name,
        "description": source.description,
        "table": source.table,
        "time": {"name": source.time_column, "type": None} if source.time_column else None,
        "dimensions": [{"name": d.name, "type": None, "sql": d.sql or d.column or d.name,
                        "description": d.description} for d in source.dimensions],
        "timezone": source.timezone,
        "measures": [{"name": m.name, "agg": m.agg, "sql": m.sql or m.column, "filter": m.filter,
                      "level": m.level, "method": m.method, "exact": None, "exactness": None,
                      "description": m.description} for m in source.measures],
        "metrics": [{"name": m.name, "sql": m.sql, "measures": None, "exact": None,
                     "exactness": None, "description": m.description} for m in source.metrics],
        "rollups": [{"name": r.name, "table": None, "grain": r.grain,
                     "dimensions": [d.name for d in r.dimensions],
                     "measures": [m.name for m in r.measures], "ready": False, "rows": None,
                     "bytes": None} for r in source.rollups],
    }


def model_outline(model: Model, reason: str) -> dict[str, Any]:
    """The validated model in ``/v1/meta``'s shape, marked ``compiled: false``."""
    return {"compiled": False, "reason": reason,
            "sources": [_source_outline(s) for s in model.sources],
            "endpoints": endpoints_meta(model)}
