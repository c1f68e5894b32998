"""The arguments of every ``semantic`` command, and the module that runs each.

Kept apart from the commands themselves so that ``semantic --help`` and a command's parsing
import nothing heavy: ``server.cli.main`` loads the module of the command asked for (the
server, the MCP SDK or the warehouse client only when that command needs them).
"""

from __future__ import annotations

import argparse

from semantic.model import GRAINS
from server.settings import DEFAULT_HOST, DEFAULT_PORT

#: file suffix -> (content type, whether batches are split by lines)
LOAD_FORMATS = {
    ".csv": ("text/csv", True),
    ".jsonl": ("application/x-ndjson", True),
    ".ndjson": ("application/x-ndjson", True),
    ".json": ("application/json", False),
    ".parquet": ("application/vnd.apache.parquet", False),
}

#: command -> the module of ``server.cli`` that runs it (its ``COMMANDS`` maps the name)
COMMAND_MODULES: dict[str, str] = {
    "validate": "model", "plan": "model", "apply": "model", "verify": "model",
    "repair": "model", "demo": "data", "load": "data", "serve": "serving", "dev": "serving",
    "query": "queries", "explain": "queries", "init": "scaffold", "keys": "keys",
    "mcp": "mcp",
}


def _data_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = commands.add_parser("demo", help="create analytics.events and fill it with the "
                               "reference data (skipped if it already has rows)")
    demo.add_argument("--rows", type=int, default=5_000_000, help="rows to insert "
                      "(default 5,000,000)")
    demo.add_argument("--seed", type=int, default=1, help="seed; the same seed gives the same "
                      "rows (default 1)")
    demo.add_argument("--table", help="target table (default: the reference table, "
                      "analytics.events)")
    demo.add_argument("--append", action="store_true", help="insert even if the table has rows")
    add_server_argument(demo)

    load = commands.add_parser("load", help="insert a CSV, JSON lines, JSON or Parquet file "
                               "into a source, all or nothing (a file of several batches is "
                               "staged, then inserted in one statement)")
    load.add_argument("source", help="source name from metrics.yaml")
    load.add_argument("file", help="file to load: .csv (with a header), .jsonl/.ndjson, .json "
                      "(an array of objects) or .parquet")
    load.add_argument("--format", choices=[s.lstrip(".") for s in LOAD_FORMATS],
                      help="file format (default: from the file name)")
    load.add_argument("--create", action="store_true", help="first create the source's table "
                      "from the file's schema as ClickHouse infers it (ordered and partitioned "
                      "by month by the time column), showing the types")
    load.add_argument("--replace", action="store_true", help="make the file the table's whole "
                      "contents, swapped in at once when every row is staged (a dimension "
                      "table: answers through its joins change at the swap; refused for a "
                      "source with rollups of its own and for repeated primary keys)")
    load.add_argument("--batch-rows", type=int, help="rows per request for CSV, JSON lines "
                      "and Parquet (default $SEMANTIC_MAX_BATCH_ROWS, 100,000); batches are "
                      "also cut at $SEMANTIC_MAX_BODY_BYTES (64 MiB)")
    add_server_argument(load)


def _keys_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = commands.add_parser("keys", help="issue API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = key_commands.add_parser("create", help="print a new API key (once) and the "
                                     "[[auth.keys]] entry to add to semantic.toml")
    create.add_argument("--scope", required=True, help="comma-separated scopes: read "
                        "(queries, meta, endpoints, explain), ingest (rows), admin (/v1/admin), "
                        "metrics (/metrics)")
    create.add_argument("--filter", action="append", default=[], metavar="CLAIM=V1[,V2]",
                        help="a row-level security claim the key carries (the model's "
                        "security: maps claims to dimensions); repeatable")
    create.add_argument("--members", help="comma-separated measures, metrics and dimensions "
                        "the key may read (default: all)")
    create.add_argument("--name", default="", help="a label kept with the entry")


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


def _mcp_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = commands.add_parser("mcp", help=HELP, description=DESCRIPTION,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    add_server_argument(command)


def _model_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    validate = commands.add_parser("validate", help="check the model; print located errors, "
                                   "exit 1 on any (columns and expressions are checked against "
                                   "the warehouse, through the running server if it holds it)")
    plan = commands.add_parser("plan", help="print what `apply` would do, with every DDL "
                               "statement")
    apply = commands.add_parser("apply", help="create missing rollups and backfill them, then "
                                "drop rollup tables the model no longer uses (idempotent)")
    for command in (plan, apply):
        command.add_argument("--keep-unused", action="store_true", help="keep (and keep "
                             "feeding) rollup tables the model no longer uses")
    verify = commands.add_parser("verify", help="compare every rollup with the raw table, "
                                 "group by group; exit 1 on drift (e.g. after ALTER "
                                 "UPDATE/DELETE on the source)")
    repair = commands.add_parser("repair", help="rebuild drifted rollups from the source and "
                                 "swap them in (REPLACE PARTITION), ingestion paused")
    repair.add_argument("--all", action="store_true", help="rebuild every rollup, drifted or "
                        "not")
    for command in (validate, plan, apply, verify, repair):
        add_server_argument(command)


FILTER_HELP = ("MEMBER=V1[,V2], MEMBER!=V1[,V2], MEMBER>V (>=, <, <=), MEMBER~=TEXT (contains), "
               "MEMBER^=TEXT (starts with), 'MEMBER is null', 'MEMBER is not null'; a measure "
               "filters groups (HAVING); repeatable, all must hold (use --body for or-groups)")


def _add_query_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("--source", help="source name (default: the only one with measures)")
    command.add_argument("-m", "--measures", action="append", default=[],
                         help="comma-separated measures and metrics (repeatable)")
    command.add_argument("-d", "--dimensions", action="append", default=[],
                         help="comma-separated dimensions (repeatable; the time column needs "
                         "--grain)")
    command.add_argument("-g", "--grain", choices=GRAINS, help="time grain")
    command.add_argument("-f", "--filter", action="append", default=[], help=FILTER_HELP)
    command.add_argument("--from", dest="start", help="range start, inclusive: 2026-01-01, "
                         "2026-01-01T06:00, 2026-01-01T06:00:00Z or with an offset")
    command.add_argument("--to", dest="end", help="range end, exclusive (same forms)")
    command.add_argument("--range", help="relative range: today, yesterday, 'this month', "
                         "'last 7 days', 'last week', ...")
    command.add_argument("--timezone", help="IANA time zone for buckets and dates (default: the "
                         "source's)")
    command.add_argument("-o", "--order", help="comma-separated members, '-' prefix for "
                         "descending")
    command.add_argument("-l", "--limit", type=int, help="row limit (default 10000, "
                         "max 100000)")
    command.add_argument("--offset", type=int, default=0, help="rows to skip")
    command.add_argument("--raw", action="store_true", help="skip rollups; read the raw table")
    command.add_argument("--body", help="the whole query as JSON, as POST /v1/query takes it "
                         "('-' reads stdin); replaces the options above")
    command.add_argument("--json", action="store_true", help="print JSON")
    add_server_argument(command)


def _queries_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    query = commands.add_parser("query", help="run a query; print rows and the tables used")
    _add_query_arguments(query)
    query.add_argument("--sql", action="store_true", help="also print the SQL")
    explain = commands.add_parser("explain", help="show how a query would be answered: tables, "
                                  "SQL, and why each rollup can or cannot serve it")
    _add_query_arguments(explain)


def _scaffold_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    init = commands.add_parser("init", help="write a metrics.yaml for a file or a table: time "
                               "column, dimensions, measures, a daily rollup, an endpoint, and "
                               "joins to tables of its database holding its columns' values "
                               "as keys")
    init.add_argument("source", help="name of the source in the model")
    init.add_argument("--file", help="a .csv/.jsonl/.json/.parquet file to describe (then "
                      "`semantic load SOURCE FILE --create` creates the table and loads it)")
    init.add_argument("--format", choices=["csv", "jsonl", "ndjson", "json", "parquet"],
                      help="file format (default: from the file name)")
    init.add_argument("--from-table", metavar="DB.TABLE", help="an existing table to describe")
    init.add_argument("--table", help="with --file: the table the data will live in "
                      "(default analytics.SOURCE)")
    init.add_argument("--output", help="where to write the model (default: --model, "
                      "$SEMANTIC_MODEL or metrics.yaml)")
    init.add_argument("--force", action="store_true", help="replace an existing file")


def _add_serve_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("--host", default=DEFAULT_HOST, help=f"bind address (default "
                         f"{DEFAULT_HOST})")
    command.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default "
                         f"{DEFAULT_PORT}; 0 picks a free one)")
    command.add_argument("--sql-port", type=int, default=None, help="port of the SQL interface "
                         "(PostgreSQL wire protocol) on the same address (default "
                         "$SEMANTIC_SQL_PORT or 15432; 0 turns it off)")
    command.add_argument("--log-level", default="info", type=str.lower,
                         choices=("debug", "info", "warning", "error"),
                         help="lowest level logged (default info: one line per request; warning "
                         "hides them); SEMANTIC_LOG_FORMAT=json logs JSON lines")
    command.add_argument("--insecure", action="store_true", help="listen on a non-loopback "
                         "address without access control (refused otherwise)")


def _serving_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser("serve", help="run the HTTP API")
    _add_serve_arguments(serve)
    dev = commands.add_parser("dev", help="run the HTTP API and watch the model file: on every "
                              "save validate it, show the plan, apply it and switch (errors "
                              "are printed and the last good model keeps serving)")
    _add_serve_arguments(dev)
    dev.add_argument("--poll", type=float, default=0.5, help="seconds between checks of the "
                     "model file (default 0.5)")


SERVER_HELP = ("go through the `semantic serve` at this URL (default: the one recorded in the "
               "data directory while it holds the embedded engine, whatever its port)")


def add_server_argument(command: argparse.ArgumentParser) -> None:
    command.add_argument("--server", metavar="URL", help=SERVER_HELP)


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Every command, in the order ``--help`` lists them."""
    _model_commands(commands)
    _data_commands(commands)
    _serving_commands(commands)
    _queries_commands(commands)
    _scaffold_commands(commands)
    _keys_commands(commands)
    _mcp_commands(commands)
