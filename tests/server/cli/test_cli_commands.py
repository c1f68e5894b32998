"""Every command the parser knows is run by the module ``COMMAND_MODULES`` names for it; query
options read as documented."""

from __future__ import annotations

import importlib

from semantic import load_model
from server.cli import build_parser, command
from server.cli.arguments import COMMAND_MODULES
from server.cli.queries import query_body
from tests.processes import ROOT


def test_cli_commands_every_parsed_command_resolves() -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    names = set(subparsers.choices)  # type: ignore[arg-type]
    assert names == set(COMMAND_MODULES)
    for name in sorted(names):
        module = importlib.import_module(f"server.cli.{COMMAND_MODULES[name]}")
        assert command(name) is module.COMMANDS[name]


def test_query_options_repeat_and_take_lists() -> None:
    """``-m a,b -m c`` asks for a, b and c (a repeated option used to keep only its last)."""
    model = load_model(ROOT / "metrics.yaml")
    for name in ("query", "explain"):
        args = build_parser().parse_args([name, "-m", "total_events,unique_users", "-m",
                                          "total_revenue", "-d", "region", "--order",
                                          "total_events"])
        body = query_body(args, model)
        assert body["measures"] == ["total_events", "unique_users", "total_revenue"], name
        assert body["dimensions"] == ["region"] and body["order"] == ["total_events"], body
