"""The ``semantic`` command line: one module per group of commands."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from semantic.errors import ModelError, SemanticError
from server.cli import data, keys, mcp, model, queries, scaffold, serving
from server.cli.common import print_issues
from server.settings import Settings, load_settings

DESCRIPTION = """\
A declarative semantic layer for ClickHouse: metrics.yaml -> rollups -> routed JSON API.

The model file is --model, else $SEMANTIC_MODEL, else ./metrics.yaml. ClickHouse is
$CLICKHOUSE_URL (e.g. http://user:password@host:8123), else the embedded chDB engine in
$SEMANTIC_DATA_DIR (default ./.data/chdb), which one process can open at a time: while
`semantic serve` (or `semantic dev`) holds it, the other commands go through that server by
themselves (or through --server URL), sending $SEMANTIC_API_KEY as a bearer token if set.

Exit status: 0 ok, 1 model errors (printed as file:line:col) or drift (verify), 2 usage and
request errors.
"""

Command = Callable[[argparse.Namespace, Settings], int]

COMMANDS: dict[str, Command] = {**model.COMMANDS, **data.COMMANDS, **serving.COMMANDS,
                                **queries.COMMANDS, **keys.COMMANDS, **mcp.COMMANDS,
                                "init": scaffold.cmd_init}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="semantic", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model file (default: $SEMANTIC_MODEL or metrics.yaml)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log the SQL run")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    model.add_commands(commands)
    data.add_commands(commands)
    serving.add_commands(commands)
    queries.add_commands(commands)
    scaffold.add_commands(commands)
    keys.add_commands(commands)
    mcp.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from server.observability.logs import LOG_FORMATS, configure_logging

    args = build_parser().parse_args(argv)
    settings = load_settings(args.model)
    if settings.log_format not in LOG_FORMATS:
        print(f"error: SEMANTIC_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not "
              f"'{settings.log_format}'", file=sys.stderr)
        return 2
    level = str(getattr(args, "log_level", "info")).upper()
    configure_logging(settings.log_format, logging.DEBUG if args.verbose else level)
    if not args.verbose:
        logging.getLogger("server.warehouse.statements").setLevel(logging.INFO)
    try:
        return COMMANDS[args.command](args, settings)
    except ModelError as exc:
        print_issues(exc)
        return 1
    except SemanticError as exc:
        field = getattr(exc, "field", None)
        print(f"error: {exc.message}" + (f" (field: {field})" if field else ""), file=sys.stderr)
        return 2


_is_loopback = serving.is_loopback

__all__ = ["_is_loopback", "build_parser", "main"]
