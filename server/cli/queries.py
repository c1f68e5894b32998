"""``semantic query`` and ``semantic explain``: the options become a ``/v1/query`` body, run
here or sent to the running server, and the answer is printed the same way."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from engine.query.fields import parse_query
from semantic import load_model
from semantic.errors import SemanticError
from semantic.model import Model
from server.cli.arguments import FILTER_HELP
from server.cli.common import open_warehouse, running_server
from server.cli.output import say
from server.runtime.compiled import Runtime
from server.service.queries import decode_request, explain_plan, render_answer
from server.settings import Settings

#: CLI filter syntax, longest symbols first: MEMBER<op>VALUE[,VALUE...]
_FILTER_SYMBOLS = (("!=", "ne"), (">=", "gte"), ("<=", "lte"), ("~=", "contains"),
                   ("^=", "starts_with"), ("=", "eq"), (">", "gt"), ("<", "lt"))


def _number(text: str) -> object:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def parse_filter(text: str, aggregate: Callable[[str], bool]) -> dict[str, object]:
    """A ``-f`` option as a ``/v1/query`` filter."""
    words = text.split()
    if len(words) in (3, 4) and words[1].lower() == "is" and \
            " ".join(words[2:]).lower() in ("null", "not null"):
        return {"member": words[0], "op": "is_null" if len(words) == 3 else "is_not_null"}
    for symbol, op in _FILTER_SYMBOLS:
        if symbol in text:
            member, _, value = text.partition(symbol)
            member = member.strip()
            values: list[object] = list(value.split(",")) if op in ("eq", "ne") else [value]
            if op == "eq" and len(values) > 1:
                op = "in"
            elif op == "ne" and len(values) > 1:
                op = "not_in"
            if aggregate(member):
                values = [_number(str(v)) for v in values]
            return {"member": member, "op": op, "values": values}
    raise SemanticError(f"--filter {text!r}: write {FILTER_HELP}")


def _split(given: str | list[str] | None) -> list[str]:
    """Names given comma-separated, in one option or several (``-m a,b -m c``)."""
    texts = [given] if isinstance(given, str) else given or []
    return [part.strip() for text in texts for part in text.split(",") if part.strip()]


def _aggregate(model: Model, source_name: str | None) -> Callable[[str], bool]:
    sources = [s for s in model.sources if source_name in (None, s.name)]
    return lambda name: any(s.is_aggregate(name) for s in sources)


def query_body(args: argparse.Namespace, model: Model) -> dict[str, Any]:
    """The query the arguments describe, as a ``/v1/query`` body (``--body`` verbatim)."""
    if args.body is not None:
        text = sys.stdin.read() if args.body == "-" else args.body
        try:
            given = json.loads(text)
        except ValueError as exc:
            raise SemanticError(f"--body is not valid JSON: {exc}") from None
        if not isinstance(given, dict):
            raise SemanticError("--body must be a JSON object, as POST /v1/query takes it")
        return given
    body: dict[str, Any] = {
        "measures": _split(args.measures),
        "dimensions": _split(args.dimensions),
        "filters": [parse_filter(f, _aggregate(model, args.source)) for f in args.filter],
        "order": _split(args.order),
        "offset": args.offset,
        "force_raw": args.raw,
    }
    if args.range is not None:
        body["time_range"] = args.range
    elif args.start is not None or args.end is not None:
        body["time_range"] = {k: v for k, v in (("from", args.start), ("to", args.end))
                              if v is not None}
    for key in ("grain", "timezone", "limit", "source"):
        if getattr(args, key) is not None:
            body[key] = getattr(args, key)
    return body


def _local(body: dict[str, Any], settings: Settings, model: Model,
           explain: bool) -> dict[str, Any]:
    """What ``/v1/query`` (or ``/v1/explain``) would answer, computed in this process."""

    warehouse = open_warehouse(settings)
    try:
        runtime = Runtime.start(model, warehouse)
        plan = runtime.plan(parse_query(decode_request(json.dumps(body).encode()),
                                        source_name=runtime.source_name))
        if explain:
            return explain_plan(plan)
        # encoded and read back, as a running server's answer is: the same JSON values
        answer: dict[str, Any] = json.loads(render_answer(runtime.run(plan)))
        return answer
    finally:
        warehouse.close()


def _ask(args: argparse.Namespace, settings: Settings, explain: bool) -> dict[str, Any]:
    model = load_model(settings.model_path)
    body = query_body(args, model)
    client = running_server(args, settings)
    if client is None:
        return _local(body, settings, model, explain)
    return client.post_json("/v1/explain" if explain else "/v1/query", body)


def print_table(columns: Sequence[str], rows: list[dict[str, Any]]) -> None:
    """Rows as aligned text; a missing value (a joined dimension without a match) is ``null``,
    as the JSON answer has it."""
    cells = [["null" if row[c] is None else str(row[c]) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    say("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for r in cells:
        say("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))


def cmd_query(args: argparse.Namespace, settings: Settings) -> int:
    answer = _ask(args, settings, explain=False)
    meta = answer["meta"]
    if args.json:
        say(json.dumps({"data": answer["data"], "meta": {"table": meta["table"],
                                                         "tables": meta["tables"]}}, indent=2))
        return 0
    print_table(meta["columns"], answer["data"])
    more = " (truncated; raise --limit)" if meta["truncated"] else ""
    say(f"-- {len(answer['data'])} row(s) from {' + '.join(meta['tables'])} in "
        f"{meta['elapsed_ms']:.1f} ms{more}")
    if args.sql:
        say(f"-- {_ask(args, settings, explain=True)['sql']}")
    return 0


def cmd_explain(args: argparse.Namespace, settings: Settings) -> int:
    explained = _ask(args, settings, explain=True)
    if args.json:
        say(json.dumps(explained, indent=2))
        return 0
    say(f"answer from: {' + '.join(explained['tables'])}")
    if explained["time_range"] is not None:
        span = explained["time_range"]
        say(f"time range:  [{span['from'] or '-inf'}, {span['to'] or '+inf'}) in "
            f"{explained['timezone']}")
    if len(explained["pieces"]) > 1:
        say("pieces:")
        for piece in explained["pieces"]:
            say(f"  {piece['table']}  [{piece['from'] or '-inf'}, {piece['to'] or '+inf'})")
    say("candidates:")
    rows = [{"rollup": c["rollup"], "verdict": ("chosen" if c["chosen"] else "usable")
             if c["reason"] is None else c["reason"],
             "read_bytes": c["read_bytes"] if c["read_bytes"] is not None else "",
             "detail": c["detail"]} for c in explained["candidates"]]
    if rows:
        print_table(["rollup", "verdict", "read_bytes", "detail"], rows)
    else:
        say("  (the source has no rollups)")
    say("sql:")
    say(f"  {explained['sql']}")
    if explained["parameters"]:
        say(f"parameters: {json.dumps(explained['parameters'])}")
    return 0


COMMANDS = {"query": cmd_query, "explain": cmd_explain}
