"""``semantic keys create``: a new API key, shown once, and the settings entry to store."""

from __future__ import annotations

import json
from collections.abc import Sequence

from semantic.errors import SemanticError
from server.auth.keys import new_key
from server.auth.principal import SCOPES


def _toml_value(value: object) -> str:
    """A TOML literal for a string, a number or a list of them (JSON strings are valid TOML
    basic strings)."""
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))


def _claim_value(text: str) -> object:
    """``42`` is a number, anything else text."""
    try:
        return int(text)
    except ValueError:
        return text


def parse_claims(filters: Sequence[str]) -> dict[str, object]:
    """``--filter CLAIM=V1[,V2...]`` options as claims (a value, or a list for several).

    >>> parse_claims(["tenant=42", "regions=eu-central,us-east"])
    {'tenant': 42, 'regions': ['eu-central', 'us-east']}
    """
    claims: dict[str, object] = {}
    for text in filters:
        name, sep, values = text.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier() or not values.strip():
            raise SemanticError(f"--filter {text!r}: write CLAIM=VALUE or CLAIM=V1,V2 (the claim "
                                "named in the model's security: mapping)")
        if name in claims:
            raise SemanticError(f"--filter: claim '{name}' is given twice; list its values "
                                "once, comma-separated")
        parsed = [_claim_value(v.strip()) for v in values.split(",") if v.strip()]
        claims[name] = parsed[0] if len(parsed) == 1 else parsed
    return claims


def create_key(scopes: Sequence[str], filters: Sequence[str], members: Sequence[str],
               name: str) -> tuple[str, str]:
    """A new key and the ``[[auth.keys]]`` entry (TOML) that accepts it."""
    if not scopes:
        raise SemanticError(f"--scope: give at least one of {', '.join(SCOPES)}")
    for scope in scopes:
        if scope not in SCOPES:
            raise SemanticError(f"--scope: unknown scope '{scope}'; use {', '.join(SCOPES)}")
    claims = parse_claims(filters)
    key, key_id, key_hash = new_key()
    lines = ["[[auth.keys]]", f"id = {_toml_value(key_id)}"]
    if name:
        lines.append(f"name = {_toml_value(name)}")
    lines += [f"hash = {_toml_value(key_hash)}",
              f"scopes = {_toml_value(sorted(set(scopes)))}"]
    if claims:
        lines.append("claims = { " + ", ".join(f"{k} = {_toml_value(v)}"
                                               for k, v in claims.items()) + " }")
    if members:
        lines.append(f"members = {_toml_value(list(members))}")
    return key, "\n".join(lines) + "\n"
