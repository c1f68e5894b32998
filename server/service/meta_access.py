"""What ``/v1/meta`` shows a caller whose credential may read only some members.

A key or token with ``members`` sees only those measures, metrics and dimensions (and the
time column), the rollups' lists cut to them, and only the endpoints whose fields it may read,
so the schema never names what a query by the same caller would be refused.
"""

from __future__ import annotations

from typing import Any

from engine.query.security import Access


def _allowed(names: list[str], members: frozenset[str]) -> list[str]:
    return [name for name in names if name in members]


def _source_for(source: dict[str, Any], members: frozenset[str]) -> dict[str, Any]:
    time = source["time"]["name"] if source.get("time") else None
    visible = members | {time} if time else members
    shown = dict(source)
    for key in ("dimensions", "measures", "metrics"):
        shown[key] = [m for m in source[key] if m["name"] in visible]
    shown["rollups"] = [dict(r, dimensions=_allowed(r["dimensions"], visible),
                             measures=_allowed(r["measures"], visible))
                        for r in source["rollups"]]
    return shown


def meta_for(meta: dict[str, Any], access: Access | None) -> dict[str, Any]:
    """``meta`` (the ``/v1/meta`` document) as the caller with ``access`` may see it."""
    if access is None or access.members is None:
        return meta
    members = access.members
    sources = [_source_for(s, members) for s in meta["sources"]]
    times = {s["name"]: s["time"]["name"] for s in meta["sources"] if s.get("time")}
    endpoints = [e for e in meta["endpoints"]
                 if all(m in members or m == times.get(e["source"])
                        for m in e["fields"].values())]
    return dict(meta, sources=sources, endpoints=endpoints)
