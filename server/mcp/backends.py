"""Where the MCP tools get their answers.

``StateBackend`` answers inside a process that holds the warehouse (the server's ``/mcp``
mount, or ``semantic mcp`` when no server runs) through the same functions as the HTTP routes:
the same decoding, limits, planner, result cache and row-level security of the caller bound
to the request. ``ClientBackend`` sends the same requests to a running server's HTTP API, which
applies all of that itself. Either way, a tool's answer is the route's JSON answer.
"""

from __future__ import annotations

import json
import math
import urllib.parse
from collections.abc import Iterable
from typing import Any, Protocol

import msgspec
from anyio import to_thread

from engine.query.fields import parse_query
from engine.query.request import Query, QueryError
from semantic.errors import FieldError, SemanticError
from semantic.model import default_source
from server.client import Client
from server.runtime.compiled import Runtime
from server.runtime.state import State
from server.service.answers import current_runtime, serve_answer
from server.service.queries import explain_query, model_meta, render_answer
from server.service.values import DEFAULT_LIMIT, dimension_values


class RemoteError(SemanticError):
    """An error answered by the server a ``ClientBackend`` goes through: its message was
    already made fit to show (a 5xx says only what kind of failure it was)."""

    def __init__(self, code: str, message: str, field: str | None) -> None:
        super().__init__(message)
        self.code = code
        self.field = field


class Backend(Protocol):
    """The four answers the tools are built on, each the JSON its HTTP route returns."""

    async def meta(self) -> dict[str, Any]:
        """``GET /v1/meta``."""
        ...

    async def query(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /v1/query`` with this body."""
        ...

    async def explain(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /v1/explain`` with this body."""
        ...

    async def values(self, source: str | None, dimension: str, contains: str | None,
                     limit: int | None) -> dict[str, Any]:
        """``GET /v1/sources/{source}/dimensions/{dimension}/values``."""
        ...


class StateBackend:
    """Answers from the app's state, in this process."""

    def __init__(self, state: State) -> None:
        self.state = state

    def _query(self, body: dict[str, Any], runtime: Runtime) -> Query:
        """The body read as ``/v1/query`` reads it, within the same size limit."""
        encoded = msgspec.json.encode(body)
        limit = self.state.limits.body_bytes
        if len(encoded) > limit:
            raise QueryError("body", f"the query is larger than {limit} bytes; set "
                             "SEMANTIC_MAX_QUERY_BODY_BYTES to allow more")
        return parse_query(body, self.state.limits.query, runtime.source_name)

    async def meta(self) -> dict[str, Any]:
        return await to_thread.run_sync(model_meta, self.state)

    async def query(self, body: dict[str, Any]) -> dict[str, Any]:
        runtime = await current_runtime(self.state)
        cached, _ = await serve_answer(self.state, "query", self._query(body, runtime),
                                       render_answer)
        answer: dict[str, Any] = json.loads(cached.body)
        return answer

    def _explain(self, body: dict[str, Any]) -> dict[str, Any]:
        runtime = self.state.runtime()
        return explain_query(runtime, self._query(body, runtime))

    async def explain(self, body: dict[str, Any]) -> dict[str, Any]:
        return await to_thread.run_sync(self._explain, body)

    async def values(self, source: str | None, dimension: str, contains: str | None,
                     limit: int | None) -> dict[str, Any]:
        return await to_thread.run_sync(dimension_values, self.state, source, dimension,
                                        DEFAULT_LIMIT if limit is None else limit, contains)


def _non_finite(value: object, path: str) -> str | None:
    """Where in ``value`` a NaN or infinite number sits (JSON has none), as a field path."""
    if isinstance(value, float) and not math.isfinite(value):
        return path
    if isinstance(value, dict):
        items: Iterable[tuple[str, object]] = ((f"{path}.{k}" if path else str(k), v)
                                               for k, v in value.items())
    elif isinstance(value, list):
        items = ((f"{path}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    return next((found for key, item in items if (found := _non_finite(item, key))), None)


def _json_body(payload: object) -> bytes:
    """The arguments as the JSON the server reads; a NaN or infinite number (which JSON
    cannot carry) is refused here, naming its field, as the server refuses a non-integer."""
    field = _non_finite(payload, "")
    if field is not None:
        raise QueryError(field, f"'{field}' must be a finite number, not NaN or infinite")
    return json.dumps(payload).encode()


class ClientBackend:
    """Answers from a running server's HTTP API (its credential: ``$SEMANTIC_API_KEY``)."""

    def __init__(self, client: Client) -> None:
        self.client = client

    async def _call(self, method: str, path: str, payload: object = None,
                    params: dict[str, object] | None = None) -> dict[str, Any]:
        body = _json_body(payload) if payload is not None else None

        def call() -> dict[str, Any]:
            return self.client.call(method, path, body, params=params)

        try:
            return await to_thread.run_sync(call)
        except SemanticError as exc:
            field = exc.field if isinstance(exc, FieldError) else None
            raise RemoteError(exc.code, exc.message, field) from None

    async def meta(self) -> dict[str, Any]:
        return await self._call("GET", "/v1/meta")

    async def query(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._call("POST", "/v1/query", body)

    async def explain(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._call("POST", "/v1/explain", body)

    async def values(self, source: str | None, dimension: str, contains: str | None,
                     limit: int | None) -> dict[str, Any]:
        if source is None:  # the route names its source; the query API has a default
            sources = (await self.meta())["sources"]
            source = default_source([(s["name"], bool(s.get("measures") or s.get("metrics")))
                                     for s in sources])
            if source is None:
                raise QueryError("source", "name a source: one of "
                                 f"{', '.join(s['name'] for s in sources)}")
        path = (f"/v1/sources/{urllib.parse.quote(source, safe='')}/dimensions/"
                f"{urllib.parse.quote(dimension, safe='')}/values")
        return await self._call("GET", path, params={"contains": contains, "limit": limit})
