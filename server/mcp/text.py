"""The MCP tools' answers as readable text, laid out as the command line prints them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any


def _cell(value: object) -> str:
    return "null" if value is None else str(value)


def table_text(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> list[str]:
    """Columns padded to their widest cell, a header line first.

    >>> table_text(["region", "n"], [{"region": "eu", "n": 3}, {"region": "us-east", "n": 12}])
    ['region   n', 'eu       3', 'us-east  12']
    """
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = [[c.ljust(w) for c, w in zip(columns, widths, strict=True)]]
    lines += [[v.ljust(w) for v, w in zip(r, widths, strict=True)] for r in cells]
    return ["  ".join(line).rstrip() for line in lines]


def by_join(names: Sequence[str]) -> dict[str, list[str]]:
    """Dimension names grouped by the joins they are reached through ("" for the source's own).

    >>> by_join(["region", "airline.name", "plane.maker.country"])
    {'': ['region'], 'airline': ['airline.name'], 'plane.maker': ['plane.maker.country']}
    """
    groups: dict[str, list[str]] = {"": []}
    for name in names:
        groups.setdefault(name.rpartition(".")[0], []).append(name)
    return groups


def _joins_line(joins: list[dict[str, Any]]) -> str:
    return "  joins: " + ", ".join(
        f"{j['name']} -> {j['source']} ("
        + ", ".join(f"{own} = {key}" for own, key in j["keys"].items()) + ")" for j in joins)


def sources_text(sources: list[dict[str, Any]]) -> str:
    lines = []
    for source in sources:
        time = source.get("time")
        lines.append(f"{source['name']} (table {source['table']}"
                     + (f", time column {time['name']}" if time else "")
                     + (f", time zone {source['timezone']}" if source.get("timezone") else "")
                     + ")" + (f": {source['description']}" if source.get("description") else ""))
        own, *joined = by_join(source["dimensions"]).items()
        lines.append(f"  dimensions: {', '.join(own[1]) or '(none)'}")
        lines += [f"  dimensions through {path}: {', '.join(names)}" for path, names in joined]
        for kind in ("measures", "metrics"):
            lines.append(f"  {kind}: {', '.join(source[kind]) or '(none)'}")
        if source.get("joins"):
            lines.append(_joins_line(source["joins"]))
    return "\n".join(lines)


def _member_line(kind: str, member: dict[str, Any]) -> str:
    detail = {"dimensions": member.get("type"), "measures": member.get("agg"),
              "metrics": member.get("sql")}[kind]
    exact = member.get("exactness") if member.get("exact") is False else None
    return (f"  {member['name']}" + (f" ({detail})" if detail else "")
            + (f": {member['description']}" if member.get("description") else "")
            + (f" [not exact: {exact}]" if exact else ""))


def _dimension_lines(dimensions: list[dict[str, Any]]) -> list[str]:
    """The source's own dimensions, then those of each join path under a heading."""
    named = {d["name"]: d for d in dimensions}
    own, *joined = by_join(list(named)).items()
    lines = ["dimensions:"]
    lines += [_member_line("dimensions", named[n]) for n in own[1]] or ["  (none)"]
    for path, names in joined:
        target = named[names[0]].get("source")
        lines.append(f"dimensions through join{'s' if '.' in path else ''} {path}"
                     + (f" (source {target})" if target else "") + ":")
        lines += [_member_line("dimensions", named[n]) for n in names]
    return lines


def members_text(members: dict[str, Any]) -> str:
    lines = [f"source {members['source']}"]
    time = members.get("time")
    if time:
        lines.append(f"time column: {time['name']} ({time.get('type')}); query it with a grain")
    for kind in ("dimensions", "measures", "metrics"):
        if kind == "dimensions" and kind in members:
            lines += _dimension_lines(members[kind])
        elif kind in members:
            lines.append(f"{kind}:")
            lines += [_member_line(kind, m) for m in members[kind]] or ["  (none)"]
    if members.get("joins"):
        lines.append(_joins_line(members["joins"]).strip())
    return "\n".join(lines)


def answer_text(answer: dict[str, Any]) -> str:
    meta = answer["meta"]
    lines = table_text(meta["columns"], answer["data"])
    more = "; more rows exist: raise limit or use offset" if meta["truncated"] else ""
    lines.append(f"-- {meta['rows']} row(s) from {answer['served_from']}"
                 + (f", with {', '.join(meta['tables'][1:])}" if len(meta["tables"]) > 1
                    else "") + f" in {meta['elapsed_ms']} ms{more}")
    return "\n".join(lines)


def explain_text(explained: dict[str, Any]) -> str:
    lines = [f"answer from: {' + '.join(explained['tables'])}"]
    span = explained.get("time_range")
    if span is not None:
        lines.append(f"time range: [{span['from'] or '-inf'}, {span['to'] or '+inf'}) in "
                     f"{explained['timezone']}")
    if len(explained["pieces"]) > 1:
        lines.append("pieces:")
        lines += [f"  {p['table']}  [{p['from'] or '-inf'}, {p['to'] or '+inf'})"
                  for p in explained["pieces"]]
    lines.append("rollups:")
    for c in explained["candidates"]:
        verdict = ("chosen" if c["chosen"] else "usable") if c["reason"] is None else c["reason"]
        lines.append(f"  {c['rollup']}: {verdict}: {c['detail']}")
    if not explained["candidates"]:
        lines.append("  (the source has no rollups)")
    lines.append(f"sql: {explained['sql']}")
    if explained["parameters"]:
        lines.append(f"parameters: {json.dumps(explained['parameters'])}")
    return "\n".join(lines)


def values_text(answer: dict[str, Any]) -> str:
    lines = [f"{answer['dimension']} of {answer['source']} (from {answer['table']}):"]
    lines += [f"  {_cell(v)}" for v in answer["values"]] or ["  (no values)"]
    if answer["truncated"]:
        lines.append("  ... more values exist: raise limit or narrow with contains")
    return "\n".join(lines)
