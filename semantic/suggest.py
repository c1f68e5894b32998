"""'Did you mean' hints for misspelt names."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

#: how much of a client's text an error message repeats
SHOWN_CHARS = 80


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """A value as an error message may repeat it: at most ``limit`` characters, and only
    characters that encode (a lone surrogate is written ``\\udXXX``).

    >>> shown("x" * 100)
    'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx... (100 chars)'
    >>> shown("a\\ud800")
    'a\\\\ud800'
    """
    text = value if isinstance(value, str) else repr(value)
    if len(text) > limit:
        text = f"{text[:limit - 20]}... ({len(text)} chars)"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """Return ``"; did you mean 'x'?"`` for the closest candidate, or ``""``.

    >>> did_you_mean("revenu", ["revenue", "region"])
    "; did you mean 'revenue'?"
    >>> did_you_mean("zzz", ["revenue"])
    ''
    """
    if len(name) > SHOWN_CHARS:  # no name of ours is that long; spare difflib the work
        return ""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean '{matches[0]}'?" if matches else ""
