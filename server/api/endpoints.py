"""Endpoints generated from the model's ``endpoints:``: one handler looks each up by path,
and a fast path answers their plain JSON GETs before the router (``endpoint_fast_path``)."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from litestar import Request, Response, get
from litestar.enums import ScopeType
from litestar.handlers import HTTPRouteHandler
from litestar.response import Stream
from litestar.types import ASGIApp, HTTPScope, Receive, Scope, Send

from engine.query.limits import check_query_limits
from engine.query.request import Query, QueryError
from semantic.errors import SemanticError
from semantic.model import Endpoint, Model
from semantic.suggest import shown
from server.auth.middleware import AccessMiddleware, refuse
from server.auth.principal import bind_principal, unbind_principal
from server.http.formats import JSON_FORMAT, accepted_format, requested_format
from server.http.request_ids import HEADER_KEY as REQUEST_ID_KEY
from server.http.request_ids import bind_request_id, unbind_request_id
from server.http.responses import JSON, TABLE_HEADER, error_response
from server.http.serialize import encode, json_object, json_rows
from server.observability.requests import Observed
from server.runtime.cache import Cached
from server.runtime.compiled import Answer, Runtime
from server.runtime.state import State
from server.service.answers import CACHE_HEADER, HIT, MISS, current_runtime, serve_answer
from server.service.endpoints import (
    UnknownEndpoint,
    endpoint_fields,
    endpoint_query,
    parameter_field,
)
from server.service.formatted import serve_formatted


def _renderer(endpoint: Endpoint, fields: list[tuple[str, str]]) -> Callable[[Answer], bytes]:
    """Encodes an answer as the endpoint's body: its ``fields`` (JSON name, member) under
    their JSON names, a list or (``returns: object``) the first row."""
    names = tuple(name for name, _ in fields)
    members = tuple(member for _, member in fields)
    #: where each field's member is among a plan's columns, by the plan's columns
    positions: dict[tuple[str, ...], tuple[int, ...]] = {}
    one = endpoint.returns == "object"

    def render(answer: Answer) -> bytes:
        found = positions.get(answer.plan.columns)
        if found is None:
            index = {name: i for i, name in enumerate(answer.plan.columns)}
            found = positions[answer.plan.columns] = tuple(index[m] for m in members)
        columns = tuple(answer.values[i] for i in found)
        return encode(json_object(names, columns) if one else json_rows(names, columns))

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


class _Endpoints:
    """The endpoints of the current model, looked up by path, so a reloaded model's endpoints
    are served without a restart.

    What a request's path and query string make of the endpoint's query is kept per model (a
    dict lookup for a repeated request), and so is each endpoint's renderer."""

    def __init__(self, state: State) -> None:
        self.state = state
        self._parsed: dict[tuple[str, bytes], _Parsed] = {}
        self._renderers: dict[tuple[str, bool], Callable[[Answer], bytes]] = {}
        self._model: Model | None = None
        self._paths: frozenset[str] = frozenset()
        #: requests the fast path answered (answers and errors), for tests and monitoring
        self.fast = 0

    def _current(self, model: Model) -> None:
        if self._model is not model:  # a reloaded model: nothing kept is valid
            self._parsed.clear()
            self._renderers.clear()
            self._paths = frozenset(e.path for e in model.endpoints)
            self._model = model

    def serves(self, path: str) -> bool:
        """Whether ``path`` is an endpoint of the model being served."""
        self._current(self.state.model)
        return path in self._paths

    def parsed(self, model: Model, path: str, query_string: bytes,
               params: Callable[[], dict[str, list[str]]]) -> _Parsed:
        self._current(model)
        key = (path, query_string)
        found = self._parsed.get(key)
        if found is None:
            endpoint = next((e for e in model.endpoints if e.path == path), None)
            if endpoint is None:
                raise UnknownEndpoint("path", f"no endpoint at {shown(path)}; see /v1/meta "
                                      "for the endpoints")
            query, origins = endpoint_query(endpoint, model, params())
            compared = query.compare is not None
            render = self._renderers.get((path, compared))
            if render is None:
                render = self._renderers[(path, compared)] = _renderer(
                    endpoint, endpoint_fields(endpoint, model, compared))
            found = _Parsed(endpoint.path, endpoint, query, origins, render)
            if len(self._parsed) >= PARSED_QUERIES:
                self._parsed.clear()
            self._parsed[key] = found
        return found

    async def answer(self, found: _Parsed) -> tuple[Cached, bool]:
        """The JSON answer of a parsed endpoint request; a query error names the parameter."""
        try:
            check_query_limits(found.query, self.state.limits.query)
            # the path tells apart the bodies of endpoints asking the same query (a reloaded
            # model is a new runtime, which drops every cached answer)
            return await serve_answer(self.state, found.path, found.query, found.render,
                                      route=found.path)
        except QueryError as exc:
            raise QueryError(parameter_field(exc.field, found.origins), exc.message) from None


def _headers(cached: Cached, hit: bool) -> dict[str, str]:
    return {TABLE_HEADER: cached.table, CACHE_HEADER: HIT if hit else MISS, "Vary": "Accept"}


def _endpoint_handler(state: State, endpoints: _Endpoints) -> HTTPRouteHandler:
    """One handler for every endpoint of the current model, looked up by path."""

    async def handle(request: Request[Any, Any, Any]) -> Response[bytes] | Stream:
        path = "/" + request.path_params["path"].lstrip("/")
        if all(e.path != path for e in state.model.endpoints):
            raise UnknownEndpoint("path", f"no endpoint at {shown(path)}; see /v1/meta for "
                                  "the endpoints")
        runtime = await current_runtime(state)
        found = endpoints.parsed(
            runtime.model, path, request.scope.get("query_string", b""),
            lambda: {k: request.query_params.getall(k) for k in request.query_params})
        answer_format = requested_format(request.headers.get("accept"),
                                         *request.query_params.getall("format", [])[-1:])
        if answer_format is not JSON_FORMAT:
            endpoint = found.endpoint
            try:
                check_query_limits(found.query, state.limits.query)
                return await serve_formatted(
                    state, endpoint, found.query, answer_format, download=endpoint.path,
                    fields=endpoint_fields(endpoint, runtime.model,
                                           found.query.compare is not None),
                    route=endpoint.path)
            except QueryError as exc:
                raise QueryError(parameter_field(exc.field, found.origins),
                                 exc.message) from None
        cached, hit = await endpoints.answer(found)
        return Response(content=cached.body, media_type=JSON, headers=_headers(cached, hit))

    return get("/{path:path}", name="endpoints")(handle)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


async def _send(send: Send, status: int, body: bytes, headers: dict[str, str],
                request_id: bytes) -> None:
    raw = [(b"content-type", JSON.encode()), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    raw.append((REQUEST_ID_KEY, request_id))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def endpoint_fast_path(state: State, app: ASGIApp, access: AccessMiddleware) -> ASGIApp:
    """The generated endpoints' hot path, as ASGI in front of ``app`` (the Litestar app
    behind the request id and the request log): a GET of an endpoint asking for JSON (no
    ``format`` parameter, no web ``Origin``) is answered here, by the same service calls and
    with the same body and headers as the route, after the same checks (``access``: host,
    credential, scope) and with the same request id, count, latency and log line as any
    request; everything else goes to ``app``.

    It skips what an answer from a warm plan does not need: routing, the handler's signature
    and response objects, and the layers of middleware (each wraps ``send`` and is code a
    request runs cold, right after ClickHouse has filled the caches); the body deadline
    too, as no body of a GET is read here. That is most of what the server adds to
    ClickHouse's own time when the answer is not cached."""
    endpoints = _endpoints_of(state)

    async def answer(scope: HTTPScope, receive: Receive, send: Send, runtime: Runtime,
                     query_string: bytes) -> None:
        endpoints.fast += 1
        request_id, token = bind_request_id(scope)
        observed = Observed(scope)
        try:
            outcome = await access.admit(scope)
            if isinstance(outcome, tuple):
                observed.responds(await refuse(send, outcome, scope["path"],
                                               [(REQUEST_ID_KEY, request_id)]))
                return
            bound = bind_principal(outcome)
            try:
                status, body, headers = await _answered(scope, receive, runtime,
                                                        query_string)
            finally:
                unbind_principal(bound)
            observed.responds(status)
            await _send(send, status, body, headers, request_id)
        except asyncio.CancelledError:
            await observed.cut(send)
        finally:
            observed.finish()
            unbind_request_id(token)

    async def _answered(scope: HTTPScope, receive: Receive, runtime: Runtime,
                        query_string: bytes) -> tuple[int, bytes, dict[str, str]]:
        def params() -> dict[str, list[str]]:  # read as the route reads them, when needed
            query = Request(scope, receive).query_params
            return {k: query.getall(k) for k in query}

        try:
            found = endpoints.parsed(runtime.model, scope["path"], query_string, params)
            cached, hit = await endpoints.answer(found)
        except Exception as exc:  # noqa: BLE001 - answered as every route answers it
            failed = error_response(Request(scope, receive), exc)
            return failed.status_code, failed.content, dict(failed.headers)  # type: ignore[return-value]
        return 200, cached.body, _headers(cached, hit)

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        runtime = state.started
        if (scope["type"] == ScopeType.HTTP and scope.get("method") == "GET"
                and runtime is not None and endpoints.serves(scope["path"])
                and _header(scope, b"origin") is None):
            query_string: bytes = scope.get("query_string", b"")
            if b"format" not in query_string and _asks_json(_header(scope, b"accept")):
                await answer(scope, receive, send, runtime, query_string)
                return
        await app(scope, receive, send)

    return dispatch


def _asks_json(accept: str | None) -> bool:
    """Whether an ``Accept`` header asks for JSON (a header that cannot be read goes to the
    route, which answers it as it answers any)."""
    try:
        return accepted_format(accept) is JSON_FORMAT
    except SemanticError:
        return False


#: the endpoints of each app's state, shared by its route and its fast path
ENDPOINTS: weakref.WeakKeyDictionary[State, _Endpoints] = weakref.WeakKeyDictionary()


def _endpoints_of(state: State) -> _Endpoints:
    found = ENDPOINTS.get(state)
    if found is None:
        found = ENDPOINTS[state] = _Endpoints(state)
    return found


def route_handlers(state: State) -> list[HTTPRouteHandler]:
    return [_endpoint_handler(state, _endpoints_of(state))]
