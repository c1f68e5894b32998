"""``semantic mcp``: the MCP server over stdio, through the running server when there is one
(its HTTP API: access control, row-level security and the result cache apply), else over the
warehouse opened in this process."""

from __future__ import annotations

import argparse

import anyio

from server.cli.common import add_server_argument, running_server
from server.settings import Settings

HELP = "serve the MCP tools (sources, members, query, explain, values) over stdio"
DESCRIPTION = """\
Serve the model to MCP clients (LLM agents) over stdin/stdout. Tools: list_sources,
list_members, run_query (a /v1/query body; the rows and the rollup that served them),
explain_query (as /v1/explain) and dimension_values.

While `semantic serve` holds the embedded engine (or with --server URL) every call goes
through that server's HTTP API with $SEMANTIC_API_KEY (scope read), so its access control and
row-level security apply. Otherwise this process opens the warehouse itself, unrestricted as
every local command is, and holds the embedded engine until the client stops it.
Logs go to stderr. Register it with a client as the command `semantic` with the arguments
`mcp` (plus `--model PATH` before `mcp` and SEMANTIC_DATA_DIR as needed)."""


def cmd_mcp(args: argparse.Namespace, settings: Settings) -> int:
    from server.limits import load_limits
    from server.mcp.backends import ClientBackend, StateBackend
    from server.mcp.stdio import serve_stdio

    client = running_server(args, settings)
    if client is not None:
        client.scope = "read"
        anyio.run(serve_stdio, ClientBackend(client), load_limits().query)
        return 0
    from semantic import load_model
    from server.cli.common import open_warehouse
    from server.operations.validation import check_offline
    from server.runtime.compiled import Runtime
    from server.runtime.state import State

    model = load_model(settings.model_path)
    check_offline(model)
    warehouse = open_warehouse(settings)
    try:
        state = State(model, warehouse, Runtime.start(model, warehouse))
        anyio.run(serve_stdio, StateBackend(state), state.limits.query)
    finally:
        warehouse.close()
    return 0


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = commands.add_parser("mcp", help=HELP, description=DESCRIPTION,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    add_server_argument(command)


COMMANDS = {"mcp": cmd_mcp}
