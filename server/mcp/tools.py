"""The MCP tools, shared by both transports: what each takes and answers, and the MCP server
that lists and calls them over a ``Backend``.

Every tool answers with structured content (the HTTP route's JSON, so ``run_query`` equals
``/v1/query``) and the same answer as readable text. A failed call is a tool error (``isError``)
whose text is ``error: MESSAGE (field: FIELD)`` and whose structured content is the HTTP API's
error body, with the same message and field.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server

from engine.query.limits import QueryLimits
from engine.query.request import QueryError
from semantic.errors import SemanticError
from semantic.model import default_source
from semantic.suggest import did_you_mean, shown
from server.http.responses import INTERNAL, OWN_MESSAGES, SERVER_MESSAGES, error_body
from server.mcp import schemas
from server.mcp.backends import Backend, RemoteError
from server.mcp.text import answer_text, explain_text, members_text, sources_text, values_text

logger = logging.getLogger(__name__)

Answer = tuple[dict[str, Any], str]
Handler = Callable[[Backend, dict[str, Any]], Awaitable[Answer]]

INSTRUCTIONS = """\
A semantic layer over ClickHouse: named measures, metrics and dimensions of a few sources,
answered exactly from the cheapest pre-aggregated rollup. Start with list_sources and
list_members, then run_query with member names from them; explain_query shows which tables
would answer and why; dimension_values lists the values a dimension takes (for filters).
A source may join other sources: their dimensions are the source's too, named through the
join (airline.name, plane.maker.country), in queries, filters and dimension_values alike."""


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    handler: Handler


def _checked(arguments: dict[str, Any], kinds: dict[str, type]) -> dict[str, Any]:
    """The arguments, each of its kind (``None`` when left out), unknown ones refused."""
    for key in arguments:
        if key not in kinds:
            raise QueryError(shown(key), f"unknown argument '{shown(key)}'"
                             f"{did_you_mean(key, kinds)}; known: {', '.join(kinds) or 'none'}")
    for key, kind in kinds.items():
        value = arguments.get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            wanted = "an integer" if kind is int else "a string"
            raise QueryError(key, f"'{key}' must be {wanted}")
    return {key: arguments.get(key) for key in kinds}


def _source(meta: dict[str, Any], name: str | None) -> dict[str, Any]:
    """The source of the meta answer named ``name`` (default: the only one with measures), as
    the query API resolves it."""
    sources: dict[str, dict[str, Any]] = {s["name"]: s for s in meta["sources"]}
    if name is None:
        default = default_source([(n, bool(s.get("measures") or s.get("metrics")))
                                  for n, s in sources.items()])
        if default is not None:
            return sources[default]
        raise QueryError("source", f"name a source: one of {', '.join(sources)}")
    if name not in sources:
        raise QueryError("source", f"unknown source '{shown(name)}'"
                         f"{did_you_mean(name, sources)}; known: {', '.join(sources)}")
    return sources[name]


async def list_sources(backend: Backend, arguments: dict[str, Any]) -> Answer:
    _checked(arguments, {})
    meta = await backend.meta()
    sources = [{"name": s["name"], "description": s.get("description"), "table": s["table"],
                "time": s.get("time"), "timezone": s.get("timezone"),
                **{kind: [m["name"] for m in s[kind]] for kind in schemas.MEMBER_KINDS},
                "joins": s.get("joins", [])}
               for s in meta["sources"]]
    return {"sources": sources}, sources_text(sources)


async def list_members(backend: Backend, arguments: dict[str, Any]) -> Answer:
    args = _checked(arguments, {"source": str, "kind": str})
    kind = args["kind"]
    if kind is not None and kind not in schemas.MEMBER_KINDS:
        raise QueryError("kind", f"unknown kind '{shown(kind)}'"
                         f"{did_you_mean(kind, schemas.MEMBER_KINDS)}; use one of "
                         f"{', '.join(schemas.MEMBER_KINDS)}")
    source = _source(await backend.meta(), args["source"])
    fields = {
        "dimensions": ("name", "type", "description", "path", "source"),
        "measures": ("name", "agg", "exact", "exactness", "description"),
        "metrics": ("name", "sql", "measures", "exact", "exactness", "description"),
    }
    members: dict[str, Any] = {"source": source["name"], "time": source.get("time")}
    if kind in (None, "dimensions"):  # the joins the joined dimensions go through
        members["joins"] = source.get("joins", [])
    for each in schemas.MEMBER_KINDS:
        if kind in (None, each):
            members[each] = [{key: m.get(key) for key in fields[each]} for m in source[each]]
    return members, members_text(members)


async def run_query(backend: Backend, arguments: dict[str, Any]) -> Answer:
    answer = await backend.query(arguments)
    meta = answer["meta"]
    served_from = (f"rollup {meta['rollup']} ({meta['table']})" if meta["rollup"] else
                   f"the raw table {meta['table']}")
    structured = {**answer, "served_from": served_from}
    return structured, answer_text(structured)


async def explain_query(backend: Backend, arguments: dict[str, Any]) -> Answer:
    explained = await backend.explain(arguments)
    return explained, explain_text(explained)


async def dimension_values(backend: Backend, arguments: dict[str, Any]) -> Answer:
    args = _checked(arguments, {"dimension": str, "source": str, "contains": str, "limit": int})
    if args["dimension"] is None:
        raise QueryError("dimension", "name the dimension whose values to list")
    answer = await backend.values(args["source"], args["dimension"], args["contains"],
                                  args["limit"])
    return answer, values_text(answer)


def tool_specs(limits: QueryLimits) -> tuple[ToolSpec, ...]:
    query_input = schemas.query_input(limits)
    return (
        ToolSpec("list_sources", "The sources (tables) of the model: description, time column, "
                 "time zone, the names of their dimensions, measures and metrics, and their "
                 "joins to other sources (whose dimensions they reach as <join>.<dimension>, "
                 "e.g. airline.name).",
                 schemas.NO_ARGUMENTS, schemas.SOURCES_OUTPUT, list_sources),
        ToolSpec("list_members", "The dimensions (with their ClickHouse type), measures (with "
                 "their aggregation) and metrics (computed from measures) of a source, each "
                 "with its description and whether its answers are exact. Dimensions reached "
                 "through a join are grouped by it and named <join>.<dimension> "
                 "(airline.name; plane.maker.country through two joins).",
                 schemas.MEMBERS_INPUT, schemas.MEMBERS_OUTPUT, list_members),
        ToolSpec("run_query", "Compute measures and metrics by dimensions, at a time grain, "
                 "filtered, over a time range (the body of POST /v1/query). Answers the rows "
                 "and which rollup or table served them; dimensions and filters may name "
                 "joined dimensions (airline.name). Example: {\"measures\": "
                 "[\"total_events\"], \"dimensions\": [\"region\"], \"grain\": \"day\", "
                 "\"time_range\": \"last 7 days\"}.",
                 query_input, schemas.ANSWER_OUTPUT, run_query),
        ToolSpec("explain_query", "How run_query would answer the same arguments, without "
                 "running it: the tables and time pieces read, every rollup's verdict (why it "
                 "can or cannot serve), the SQL and its parameters.",
                 query_input, schemas.EXPLAIN_OUTPUT, explain_query),
        ToolSpec("dimension_values", "The distinct values of a dimension, sorted (for "
                 "filters), a joined one too (airline.name): optionally only those containing "
                 "a text.",
                 schemas.VALUES_INPUT, schemas.VALUES_OUTPUT, dimension_values),
    )


def failure(exc: Exception) -> dict[str, Any]:
    """The HTTP API's error body for an exception: client errors say what was wrong, server
    errors only what kind of failure it was (details go to the log)."""
    if isinstance(exc, RemoteError):  # the server already chose what to say
        return error_body(exc.code, exc.message, exc.field)
    if isinstance(exc, SemanticError) and exc.status < 500:
        field = exc.to_dict().get("field")
        return error_body(exc.code, exc.message, field if isinstance(field, str) else None)
    if isinstance(exc, SemanticError):
        if exc.code != "warehouse_unavailable":
            logger.warning("an MCP tool call failed (%s): %s", exc.code, exc.message)
        message = exc.message if exc.code in OWN_MESSAGES else \
            SERVER_MESSAGES.get(exc.code, INTERNAL)
        return error_body(exc.code, message)
    logger.error("an MCP tool call failed", exc_info=exc)
    return error_body("internal_error", INTERNAL)


def error_result(body: dict[str, Any]) -> types.CallToolResult:
    error = body["error"]
    where = f" (field: {error['field']})" if error.get("field") else ""
    return types.CallToolResult(
        content=[types.TextContent(text=f"error: {error['message']}{where}")],
        structured_content=body, is_error=True)


def _version() -> str:
    try:
        return metadata.version("semantic-clickhouse")
    except metadata.PackageNotFoundError:
        return "0"


#: what a tool call runs inside (the HTTP mount binds the caller there)
CallContext = Callable[[ServerRequestContext[Any, Any]], AbstractContextManager[object]]


def build_server(backend: Backend, limits: QueryLimits,
                 call_context: CallContext | None = None) -> Server[Any]:
    """The MCP server of the tools over ``backend``; ``call_context`` wraps every call."""
    specs = {spec.name: spec for spec in tool_specs(limits)}
    read_only = types.ToolAnnotations(read_only_hint=True, open_world_hint=False)
    listed = types.ListToolsResult(tools=[
        types.Tool(name=s.name, description=s.description, input_schema=s.input_schema,
                   output_schema=s.output_schema, annotations=read_only)
        for s in specs.values()])

    async def on_list_tools(ctx: ServerRequestContext[Any, Any],
                            params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return listed

    async def on_call_tool(ctx: ServerRequestContext[Any, Any],
                           params: types.CallToolRequestParams) -> types.CallToolResult:
        spec = specs.get(params.name)
        if spec is None:
            return error_result(error_body(
                "invalid_query", f"unknown tool '{shown(params.name)}'"
                f"{did_you_mean(params.name, specs)}; tools: {', '.join(specs)}", "name"))
        try:
            with (call_context or (lambda _: nullcontext()))(ctx):
                structured, text = await spec.handler(backend, dict(params.arguments or {}))
        except Exception as exc:  # every failure is the caller's answer, never a crash
            return error_result(failure(exc))
        return types.CallToolResult(content=[types.TextContent(text=text)],
                                    structured_content=structured)

    return Server("semantic", version=_version(), instructions=INSTRUCTIONS,
                  on_list_tools=on_list_tools, on_call_tool=on_call_tool)


__all__ = ["build_server", "failure", "tool_specs"]
