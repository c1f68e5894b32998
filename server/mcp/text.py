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


def sources_text(sources: list[dict[str, Any]]) -> str:
    lines = []
    for source in sources:
        time = source.get("time")
        lines.append(f"{source['name']} (table {source['table']}"
                     + (f", time column {time['name']}" if time else "")
                     + (f", time zone {source['timezone']}" if source.get("timezone") else "")
                     + ")" + (f": {source['description']}" if source.get("description") else ""))
        for kind in ("dimensions", "measures", "metrics"):
            lines.append(f"  {kind}: {', '.join(source[kind]) or '(none)'}")
    return "\n".join(lines)


def _member_line(kind: str, member: dict[str, Any]) -> str:
    detail = {"dimensions": member.get("type"), "measures": member.get("agg"),
              "metrics": member.get("sql")}[kind]
    exact = member.get("exactness") if member.get("exact") is False else None
    return (f"  {member['name']}" + (f" ({detail})" if detail else "")
            + (f": {member['description']}" if member.get("description") else "")
            + (f" [not exact: {exact}]" if exact else ""))


def members_text(members: dict[str, Any]) -> str:
    lines = [f"source {members['source']}"]
    time = members.get("time")
    if time:
        lines.append(f"time column: {time['name']} ({time.get('type')}); query it with a grain")
    for kind in ("dimensions", "measures", "metrics"):
        if kind in members:
            lines.append(f"{kind}:")
            lines += [_member_line(kind, m) for m in members[kind]] or ["  (none)"]
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
