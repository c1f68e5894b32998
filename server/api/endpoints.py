"""Endpoints generated from the model's ``endpoints:``: one handler looks each up by path."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from litestar import Request, Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.response import Stream

from engine.query.limits import check_query_limits
from engine.query.request import Query, QueryError
from semantic.model import Endpoint, Model
from semantic.suggest import shown
from server.http.formats import JSON_FORMAT, requested_format
from server.http.responses import JSON, TABLE_HEADER
from server.http.serialize import encode, json_rows
from server.runtime.compiled import Answer
from server.runtime.state import State
from server.service.answers import CACHE_HEADER, HIT, MISS, current_runtime, serve_answer
from server.service.endpoints import (
    UnknownEndpoint,
    endpoint_query,
    parameter_field,
)
from server.service.formatted import serve_formatted


def _renderer(endpoint: Endpoint) -> Callable[[Answer], bytes]:
    """Encodes an answer as the endpoint's body: its fields under their JSON names, a list or
    (``returns: object``) the first row."""
    names = tuple(f.name for f in endpoint.fields)
    members = tuple(f.member.name for f in endpoint.fields)

    def render(answer: Answer) -> bytes:
        index = {name: i for i, name in enumerate(answer.plan.columns)}
        rows = json_rows(names, tuple(answer.values[index[m]] for m in members))
        if endpoint.returns == "object":
            return encode(rows[0] if rows else dict.fromkeys(names))
        return encode(rows)

    return render


#: parsed endpoint queries kept per model (query strings are the caller's: bounded)
PARSED_QUERIES = 1024


@dataclass(frozen=True, slots=True)
class _Parsed:
    """What a path and query string make of an endpoint: its query, the parameter behind
    each filter and the renderer of its body."""

    path: str
    endpoint: Endpoint
    query: Query
    origins: list[str | None]
    render: Callable[[Answer], bytes]


def _endpoint_handler(state: State) -> HTTPRouteHandler:
    """One handler for every endpoint of the current model, looked up by path, so a reloaded
    model's endpoints are served without a restart.

    What a request's path and query string make of the endpoint's query is kept per model (a
    dict lookup for a repeated request), and so is each endpoint's renderer."""
    parsed: dict[tuple[str, bytes], _Parsed] = {}
    renderers: dict[str, Callable[[Answer], bytes]] = {}
    seen: list[Model | None] = [None]

    def endpoint_for(model: Model, path: str, query_string: bytes,
                     params: Callable[[], dict[str, list[str]]]) -> _Parsed:
        if seen[0] is not model:  # a reloaded model: nothing kept is valid
            parsed.clear()
            renderers.clear()
            seen[0] = model
        key = (path, query_string)
        found = parsed.get(key)
        if found is None:
            endpoint = next((e for e in model.endpoints if e.path == path), None)
            if endpoint is None:
                raise UnknownEndpoint("path", f"no endpoint at {shown(path)}; see /v1/meta "
                                      "for the endpoints")
            query, origins = endpoint_query(endpoint, model, params())
            render = renderers.get(path)
            if render is None:
                render = renderers[path] = _renderer(endpoint)
            found = _Parsed(endpoint.path, endpoint, query, origins, render)
            if len(parsed) >= PARSED_QUERIES:
                parsed.clear()
            parsed[key] = found
        return found

    async def handle(request: Request[Any, Any, Any]) -> Response[bytes] | Stream:
        path = "/" + request.path_params["path"].lstrip("/")
        if all(e.path != path for e in state.model.endpoints):
            raise UnknownEndpoint("path", f"no endpoint at {shown(path)}; see /v1/meta for "
                                  "the endpoints")
        runtime = await current_runtime(state)
        found = endpoint_for(
            runtime.model, path, request.scope.get("query_string", b""),
            lambda: {k: request.query_params.getall(k) for k in request.query_params})
        answer_format = requested_format(request.headers.get("accept"),
                                         *request.query_params.getall("format", [])[-1:])
        try:
            check_query_limits(found.query, state.limits.query)
            if answer_format is not JSON_FORMAT:
                endpoint = found.endpoint
                return await serve_formatted(
                    state, endpoint, found.query, answer_format, download=endpoint.path,
                    fields=[(f.name, f.member.name) for f in endpoint.fields],
                    route=endpoint.path)
            # the path tells apart the bodies of endpoints asking the same query (a reloaded
            # model is a new runtime, which drops every cached answer)
            cached, hit = await serve_answer(state, found.path, found.query,
                                             found.render, route=found.path)
        except QueryError as exc:
            raise QueryError(parameter_field(exc.field, found.origins), exc.message) from None
        return Response(content=cached.body, media_type=JSON, headers={
            TABLE_HEADER: cached.table, CACHE_HEADER: HIT if hit else MISS, "Vary": "Accept"})

    return get("/{path:path}", name="endpoints")(handle)


def route_handlers(state: State) -> list[HTTPRouteHandler]:
    return [_endpoint_handler(state)]
