"""The MCP server over Streamable HTTP at ``/mcp`` (the tools are ``server.mcp.tools``).

The SDK's session manager runs stateless (every POST carries its own JSON-RPC exchange, no
session to keep) and answers in JSON. The access middleware covers ``/mcp`` like any route
(scope ``read``), so the caller it binds is the caller of every tool call: its row-level
security restricts the queries. As the MCP specification asks of HTTP servers (against DNS
rebinding), a request from a web origin not listed in ``[cors] origins`` is refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from litestar import Litestar
from litestar.exceptions import ServiceUnavailableException
from litestar.handlers import ASGIRouteHandler, asgi
from litestar.types import Message, Receive, Scope, Send
from mcp.server.context import ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from semantic.errors import SemanticError
from server.auth.principal import bind_principal, current_principal, unbind_principal
from server.http.responses import error_body
from server.http.serialize import encode
from server.mcp.backends import StateBackend
from server.mcp.tools import build_server
from server.runtime.state import State

PATH = "/mcp"
#: where the caller of the HTTP request is kept for the tool calls it carries
CALLER = "semantic.caller"
#: room for the JSON-RPC envelope around a query as large as /v1/query accepts
ENVELOPE_BYTES = 4096


@contextmanager
def _as_caller(ctx: ServerRequestContext[Any, Any]) -> Iterator[object]:
    """Bind the HTTP request's caller while a tool runs (its row-level security applies). A
    call whose request cannot be told is refused rather than answered unrestricted."""
    scope = getattr(ctx.request, "scope", None)
    if not isinstance(scope, dict) or CALLER not in scope:
        raise SemanticError("the tool call arrived without its HTTP request")
    token = bind_principal(scope[CALLER])
    try:
        yield token
    finally:
        unbind_principal(token)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


async def _refuse(send: Send, status: int, code: str, message: str) -> None:
    body = encode(error_body(code, message))
    start: Message = {"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]}
    await send(start)
    await send({"type": "http.response.body", "body": body, "more_body": False})


class McpSurface:
    """The ``/mcp`` route and the lifespan of the SDK's session manager behind it."""

    def __init__(self, state: State, origins: Sequence[str] = ()) -> None:
        self.origins = frozenset(origins)
        self.server = build_server(StateBackend(state), state.limits.query,
                                   call_context=_as_caller)
        self.body_bytes = state.limits.body_bytes + ENVELOPE_BYTES
        self.manager: StreamableHTTPSessionManager | None = None

    @asynccontextmanager
    async def running(self, app: Litestar) -> AsyncIterator[None]:
        """The session manager and its task group, for the app's lifespan (a manager runs
        once: each start of the app gets a new one)."""
        manager = StreamableHTTPSessionManager(self.server, json_response=True, stateless=True,
                                               max_request_body_size=self.body_bytes)
        async with manager.run():
            self.manager = manager
            try:
                yield
            finally:
                self.manager = None

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        origin = _header(scope, b"origin")
        if origin is not None and origin not in self.origins:
            await _refuse(send, 403, "foreign_origin", f"requests from the web origin "
                          f"{origin[:200]!r} may not use {PATH}; allow it in [cors] origins")
            return
        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self.body_bytes:
            # the SDK refuses a longer body too (also one sent without a length), in plain text
            await _refuse(send, 413, "body_too_large", f"the body is larger than {PATH} "
                          "accepts (SEMANTIC_MAX_QUERY_BODY_BYTES, plus the JSON-RPC envelope)")
            return
        manager = self.manager
        if manager is None:  # the app is not started (or stopping)
            raise ServiceUnavailableException()
        scope[CALLER] = current_principal()  # type: ignore[literal-required]
        await manager.handle_request(scope, receive, send)  # type: ignore[arg-type]

    def route_handlers(self, state: State) -> list[ASGIRouteHandler]:
        @asgi(PATH, copy_scope=False)
        async def mcp(scope: Scope, receive: Receive, send: Send) -> None:
            await self.handle(scope, receive, send)

        return [mcp]
