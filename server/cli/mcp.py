"""``semantic mcp``: the MCP server over stdio, through the running server when there is one
(its HTTP API: access control, row-level security and the result cache apply), else over the
warehouse opened in this process."""

from __future__ import annotations

import argparse

import anyio

from semantic import load_model
from server.cli.common import open_warehouse, running_server
from server.mcp.backends import ClientBackend, StateBackend
from server.mcp.stdio import serve_stdio
from server.operations.validation import check_offline
from server.runtime.compiled import Runtime
from server.runtime.state import State
from server.settings import Settings, load_limits


def cmd_mcp(args: argparse.Namespace, settings: Settings) -> int:

    client = running_server(args, settings)
    if client is not None:
        client.scope = "read"
        anyio.run(serve_stdio, ClientBackend(client), load_limits().query)
        return 0

    model = load_model(settings.model_path)
    check_offline(model)
    warehouse = open_warehouse(settings)
    try:
        state = State(model, warehouse, Runtime.start(model, warehouse))
        anyio.run(serve_stdio, StateBackend(state), state.limits.query)
    finally:
        warehouse.close()
    return 0


COMMANDS = {"mcp": cmd_mcp}
