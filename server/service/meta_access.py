"""What ``/v1/meta`` shows a caller whose credential may read only some members or rows.

A key or token with ``members`` sees only those measures, metrics and dimensions (and the
time column; a joined dimension by its dotted name), the rollups' lists cut to them, only the
joins its dimensions and measures go through, and only the endpoints whose fields it may read,
so the schema never names what a query by the same caller would be refused. A credential
reading a source under row-level security (or carrying claims) sees no figure computed over
the whole table: the rollups' ``rows`` and ``bytes`` are null (a tenant could count the other
tenants from them).
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
    followed = {d["path"][0] for d in shown["dimensions"] if d.get("path")} | \
        {path.split(".")[0] for m in shown["measures"] for path in m.get("joins") or ()}
    shown["joins"] = [j for j in source.get("joins", []) if j["name"] in followed]
    return shown


def _without_sizes(source: dict[str, Any]) -> dict[str, Any]:
    return dict(source, rollups=[dict(r, rows=None, bytes=None) for r in source["rollups"]])


def meta_for(meta: dict[str, Any], access: Access | None,
             secured: frozenset[str] = frozenset()) -> dict[str, Any]:
    """``meta`` (the ``/v1/meta`` document) as the caller with ``access`` may see it;
    ``secured`` names the sources under row-level security."""
    if access is None:
        return meta
    meta = dict(meta, sources=[
        _without_sizes(s) if s["name"] in secured or access.claims else s
        for s in meta["sources"]])
    if access.members is None:
        return meta
    members = access.members
    sources = [_source_for(s, members) for s in meta["sources"]]
    times = {s["name"]: s["time"]["name"] for s in meta["sources"] if s.get("time")}
    endpoints = [e for e in meta["endpoints"]
                 if all(m in members or m == times.get(e["source"])
                        for m in e["fields"].values())]
    return dict(meta, sources=sources, endpoints=endpoints)
