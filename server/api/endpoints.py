"""Endpoints generated from the model's ``endpoints:``: one handler looks each up by path."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from litestar import Request, Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.response import Stream

from engine.query.limits import check_query_limits
from engine.query.request import Filter, Order, Query, QueryError, TimeRange
from semantic.errors import FieldError
from semantic.model import Endpoint, Model
from semantic.suggest import did_you_mean, shown
from server.http.formats import JSON_FORMAT, requested_format
from server.http.responses import JSON, TABLE_HEADER
from server.http.serialize import encode, json_rows
from server.runtime.compiled import Answer
from server.runtime.state import State
from server.service.answers import CACHE_HEADER, HIT, MISS, current_runtime, serve_answer
from server.service.formatted import serve_formatted

#: query parameters every generated endpoint takes besides dimension filters
ENDPOINT_PARAMETERS = ("from", "to", "range", "timezone", "limit", "offset", "format")


class UnknownEndpoint(FieldError):
    """No endpoint of the current model has this path."""

    code = "not_found"
    status = 404


def _integer(name: str, values: list[str]) -> int:
    try:
        return int(values[-1])
    except ValueError:  # also for more digits than Python reads (about 4,300)
        raise QueryError(name, f"{name} must be an integer, not '{shown(values[-1])}'") from None


def _parameter_field(field: str, params: list[str | None]) -> str:
    """The query parameter behind a field of the engine's query (``filters[2].value`` ->
    ``region``, ``time_range.from`` -> ``from``), so errors name what the caller sent."""
    if field.startswith("filters["):
        index = field[len("filters["):].split("]", 1)[0]
        if index.isdigit() and int(index) < len(params) and params[int(index)] is not None:
            return str(params[int(index)])
        return field
    return {"time_range.from": "from", "time_range.to": "to",
            "time_range": "range"}.get(field, field)


def endpoint_query(endpoint: Endpoint, model: Model,
                    params: dict[str, list[str]]) -> tuple[Query, list[str | None]]:
    """The saved query of an endpoint with the caller's parameters: ``?region=eu`` (repeat for
    several values) filters a dimension; ``from``/``to`` or ``range`` (``last 7 days``) and
    ``timezone`` set the time range; ``limit``/``offset`` page. Also returns, per filter, the
    parameter it came from (None for the endpoint's own filters)."""
    source = model.source(endpoint.source.name)
    assert source is not None
    measures = tuple(f.member.name for f in endpoint.fields if source.is_aggregate(f.member.name))
    dimensions = tuple(f.member.name for f in endpoint.fields
                       if not source.is_aggregate(f.member.name))
    by_field = {f.name: f.member.name for f in endpoint.fields}
    filters = [Filter(f.dimension.name, f.op, f.values) for f in endpoint.filters]
    origins: list[str | None] = [None] * len(filters)
    limit, offset = endpoint.limit, 0
    start = end = relative = timezone = None
    for key, values in params.items():
        if key == "format":  # the answer's format, not part of the query
            continue
        if key == "limit":
            limit = _integer("limit", values)  # replaces the endpoint's own (query bounds)
        elif key == "offset":
            offset = _integer("offset", values)
        elif key in ("from", "to", "range", "timezone"):
            value = values[-1]
            if key == "from":
                start = value
            elif key == "to":
                end = value
            elif key == "range":
                relative = value
            else:
                timezone = value
        elif source.dimension(key) is not None:
            filters.append(Filter(key, "in" if len(values) > 1 else "eq", tuple(values)))
            origins.append(key)
        else:
            known = [d.name for d in source.dimensions] + list(ENDPOINT_PARAMETERS)
            raise QueryError(shown(key), f"unknown query parameter '{shown(key)}'"
                             f"{did_you_mean(key, known)}; use a dimension filter or one of "
                             f"{', '.join(known)}")
    if relative is not None and (start is not None or end is not None):
        raise QueryError("range", "give 'range' or 'from'/'to', not both")
    time_range = None
    if relative is not None:
        time_range = TimeRange(relative=relative)
    elif start is not None or end is not None:
        time_range = TimeRange(start, end)
    return Query(
        source=source.name,
        measures=measures,
        dimensions=dimensions,
        grain=endpoint.grain,
        filters=tuple(filters),
        order=tuple(Order(by_field[o.name.name], o.descending) for o in endpoint.order),
        limit=limit,
        offset=offset,
        time_range=time_range,
        timezone=timezone,
    ), origins


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
                    state, endpoint, found.query, False, answer_format, download=endpoint.path,
                    fields=[(f.name, f.member.name) for f in endpoint.fields],
                    route=endpoint.path)
            # the path tells apart the bodies of endpoints asking the same query (a reloaded
            # model is a new runtime, which drops every cached answer)
            cached, hit = await serve_answer(state, found.path, found.query, False,
                                             found.render, route=found.path)
        except QueryError as exc:
            raise QueryError(_parameter_field(exc.field, found.origins), exc.message) from None
        return Response(content=cached.body, media_type=JSON, headers={
            TABLE_HEADER: cached.table, CACHE_HEADER: HIT if hit else MISS, "Vary": "Accept"})

    return get("/{path:path}", name="endpoints")(handle)


def route_handlers(state: State) -> list[HTTPRouteHandler]:
    return [_endpoint_handler(state)]
