"""Request limits, read once from the environment: the one place their values are set.

Each ``SEMANTIC_MAX_*`` variable overrides a default of ``engine.query.limits.QueryLimits`` (or the
query API's body size); the README's "Limits" table lists them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from engine.query.limits import QueryLimits
from engine.query.request import MAX_LIMIT, MAX_OFFSET
from semantic.errors import SemanticError

#: bytes of a ``/v1/query`` or ``/v1/explain`` body
DEFAULT_BODY_BYTES = 1024 * 1024

#: environment variable -> QueryLimits field
QUERY_SETTINGS: dict[str, str] = {
    "SEMANTIC_MAX_MEMBERS": "members",
    "SEMANTIC_MAX_FILTERS": "filters",
    "SEMANTIC_MAX_FILTER_DEPTH": "filter_depth",
    "SEMANTIC_MAX_ORDER": "order",
    "SEMANTIC_MAX_LIST_VALUES": "list_values",
    "SEMANTIC_MAX_ROWS": "rows",
    "SEMANTIC_MAX_OFFSET": "offset",
}
BODY_SETTING = "SEMANTIC_MAX_QUERY_BODY_BYTES"
#: the engine's own ceilings, which no setting can raise
CEILINGS = {"rows": MAX_LIMIT, "offset": MAX_OFFSET}


class SettingError(SemanticError):
    """A limit setting is not a positive integer (or is above the engine's ceiling)."""

    code = "invalid_setting"


@dataclass(frozen=True, slots=True)
class Limits:
    query: QueryLimits = field(default_factory=QueryLimits)
    body_bytes: int = DEFAULT_BODY_BYTES


def _positive(name: str, text: str, ceiling: int | None) -> int:
    try:
        value = int(text.strip().replace("_", ""))
    except ValueError:
        value = 0
    if value < 1 or (ceiling is not None and value > ceiling):
        top = f" up to {ceiling}" if ceiling is not None else ""
        raise SettingError(f"{name} must be a positive integer{top}, not {text!r}")
    return value


def load_limits(environ: Mapping[str, str] | None = None) -> Limits:
    """The limits from ``SEMANTIC_MAX_*`` variables, defaults for those unset.

    >>> load_limits({"SEMANTIC_MAX_FILTERS": "50"}).query.filters
    50
    """
    env = os.environ if environ is None else environ
    defaults = QueryLimits()
    values = {f.name: getattr(defaults, f.name) for f in fields(QueryLimits)}
    for name, key in QUERY_SETTINGS.items():
        if env.get(name):
            values[key] = _positive(name, env[name], CEILINGS.get(key))
    body = DEFAULT_BODY_BYTES
    if env.get(BODY_SETTING):
        body = _positive(BODY_SETTING, env[BODY_SETTING], None)
    return Limits(QueryLimits(**values), body)
