"""The ``semantic`` command line: the arguments of every command in ``arguments``, and one
module per group of commands, loaded when one of its commands runs."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from semantic.errors import ModelError, SemanticError
from server.cli.arguments import COMMAND_MODULES, add_commands
from server.cli.output import print_issues
from server.observability.logs import LOG_FORMATS, configure_logging
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="semantic", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model file (default: $SEMANTIC_MODEL or metrics.yaml)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log the SQL run")
    add_commands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    return parser


def command(name: str) -> Command:
    """The function that runs command ``name``, from its module (loaded now: the server, the
    MCP SDK and the warehouse client are imported only by the commands that use them)."""
    module = importlib.import_module(f"server.cli.{COMMAND_MODULES[name]}")
    run: Command = module.COMMANDS[name]
    return run


def main(argv: Sequence[str] | None = None) -> int:
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
        return command(args.command)(args, settings)
    except ModelError as exc:
        print_issues(exc)
        return 1
    except SemanticError as exc:
        field = getattr(exc, "field", None)
        print(f"error: {exc.message}" + (f" (field: {field})" if field else ""), file=sys.stderr)
        return 2
