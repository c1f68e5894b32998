"""``semantic keys create``: issue an API key and print the settings entry that accepts it."""

from __future__ import annotations

import argparse
import sys

from server.auth.issue import create_key
from server.auth.settings import config_path
from server.cli.output import say
from server.settings import Settings


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def cmd_keys(args: argparse.Namespace, settings: Settings) -> int:

    key, entry = create_key(_split(args.scope), args.filter, _split(args.members), args.name)
    say(f"API key (shown once; send it as 'Authorization: Bearer <key>' or in "
        f"SEMANTIC_API_KEY):\n\n    {key}\n")
    say(f"Add this to {config_path(settings.model_path)} and restart the server:\n")
    sys.stdout.write(entry)
    return 0


COMMANDS = {"keys": cmd_keys}
