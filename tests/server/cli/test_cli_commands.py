"""Every command the parser knows is run by the module ``COMMAND_MODULES`` names for it."""

from __future__ import annotations

import importlib

from server.cli import build_parser, command
from server.cli.arguments import COMMAND_MODULES


def test_cli_commands_every_parsed_command_resolves() -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    names = set(subparsers.choices)  # type: ignore[arg-type]
    assert names == set(COMMAND_MODULES)
    for name in sorted(names):
        module = importlib.import_module(f"server.cli.{COMMAND_MODULES[name]}")
        assert command(name) is module.COMMANDS[name]
