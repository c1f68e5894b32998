"""``semantic mcp``: the MCP tools over stdio, for clients that start the server themselves
(desktop apps, editors). Nothing but the protocol is written to stdout; logs go to stderr."""

from __future__ import annotations

from mcp.server.stdio import stdio_server

from engine.query.limits import QueryLimits
from server.mcp.backends import Backend
from server.mcp.tools import build_server


async def serve_stdio(backend: Backend, limits: QueryLimits) -> None:
    """Answer MCP requests on stdin/stdout until the client closes stdin."""
    server = build_server(backend, limits)
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())
