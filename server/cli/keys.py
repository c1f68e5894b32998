"""``semantic keys create``: issue an API key and print the settings entry that accepts it."""

from __future__ import annotations

import argparse
import sys

from server.cli.common import say
from server.settings import Settings


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def cmd_keys(args: argparse.Namespace, settings: Settings) -> int:
    from server.auth.issue import create_key
    from server.auth.settings import config_path

    key, entry = create_key(_split(args.scope), args.filter, _split(args.members), args.name)
    say(f"API key (shown once; send it as 'Authorization: Bearer <key>' or in "
        f"SEMANTIC_API_KEY):\n\n    {key}\n")
    say(f"Add this to {config_path(settings.model_path)} and restart the server:\n")
    sys.stdout.write(entry)
    return 0


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = commands.add_parser("keys", help="issue API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = key_commands.add_parser("create", help="print a new API key (once) and the "
                                     "[[auth.keys]] entry to add to semantic.toml")
    create.add_argument("--scope", required=True, help="comma-separated scopes: read "
                        "(queries, meta, endpoints, explain), ingest (rows), admin (/v1/admin)")
    create.add_argument("--filter", action="append", default=[], metavar="CLAIM=V1[,V2]",
                        help="a row-level security claim the key carries (the model's "
                        "security: maps claims to dimensions); repeatable")
    create.add_argument("--members", help="comma-separated measures, metrics and dimensions "
                        "the key may read (default: all)")
    create.add_argument("--name", default="", help="a label kept with the entry")


COMMANDS = {"keys": cmd_keys}
