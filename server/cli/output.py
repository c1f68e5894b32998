"""What commands print: lines on stdout, warnings and located model errors on stderr."""

from __future__ import annotations

import sys

from semantic.errors import ModelError


def say(line: str) -> None:
    print(line, flush=True)


def warn(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def print_issues(exc: ModelError) -> None:
    """Located model errors, one per line, then their count (stderr)."""
    for issue in exc.issues:
        warn(issue.render())
    warn(f"{len(exc.issues)} error(s)")
