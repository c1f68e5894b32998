"""``[auth]``, ``[cors]`` and ``[http]`` of the settings file, and their environment variables.

The settings file is ``$SEMANTIC_CONFIG``, else ``semantic.toml`` next to the model. It is read
once at start; keys and JWKS are parsed then, so no request reads a file.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from engine.query.security import Access
from semantic.errors import SemanticError
from server.auth.keys import HASH_SCHEME, StoredKey
from server.auth.principal import SCOPES
from server.auth.tokens import ASYMMETRIC, SYMMETRIC, JwtSettings
from server.settings import access_environment

CONFIG_FILE = "semantic.toml"
TOP_KEYS = ("auth", "cors", "http")
AUTH_KEYS = ("keys", "jwt")
KEY_KEYS = ("id", "hash", "scopes", "claims", "members", "name")
JWT_KEYS = ("secret", "jwks_file", "jwks_url", "audience", "issuer", "algorithms", "leeway")
CORS_KEYS = ("origins",)
HTTP_KEYS = ("hosts",)


class SettingsError(SemanticError):
    """The settings file is wrong; the message names the file and the key."""

    code = "invalid_settings"


@dataclass(frozen=True, slots=True)
class AccessSettings:
    """Who may call (keys, JWT verification) and which web origins may call from a browser."""

    keys: tuple[StoredKey, ...] = ()
    jwt: JwtSettings = field(default_factory=JwtSettings)
    cors_origins: tuple[str, ...] = ()
    file: Path | None = None
    #: host names answered besides the loopback ones while access control is off (``*``: any)
    hosts: tuple[str, ...] = ()

    @property
    def enabled(self) -> bool:
        """Access control is on as soon as a key or a JWT verification key is configured."""
        return bool(self.keys) or self.jwt.configured


def config_path(model_path: Path) -> Path:
    """``$SEMANTIC_CONFIG``, else ``semantic.toml`` beside the model file."""
    configured = access_environment().get("SEMANTIC_CONFIG")
    return Path(configured) if configured else model_path.parent / CONFIG_FILE


def _table(value: Any, where: str, allowed: tuple[str, ...], file: Path) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise SettingsError(f"{file}: [{where}] must be a table")
    for key in value:
        if key not in allowed:
            raise SettingsError(f"{file}: unknown key '{key}' in [{where}]; allowed: "
                                f"{', '.join(allowed)}")
    return value


def _strings(value: Any, where: str, file: Path) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SettingsError(f"{file}: {where} must be a list of strings")
    return tuple(value)


def _key(entry: Any, index: int, file: Path) -> StoredKey:
    where = f"auth.keys[{index}]"
    entry = _table(entry, where, KEY_KEYS, file)
    for required in ("id", "hash", "scopes"):
        if required not in entry:
            raise SettingsError(f"{file}: {where} needs '{required}' (`semantic keys create` "
                                "prints a whole entry)")
    key_hash = entry["hash"]
    if not isinstance(key_hash, str) or not key_hash.startswith(f"{HASH_SCHEME}:"):
        raise SettingsError(f"{file}: {where}.hash must read '{HASH_SCHEME}:<hex>'")
    scopes = _strings(entry["scopes"], f"{where}.scopes", file)
    for scope in scopes:
        if scope not in SCOPES:
            raise SettingsError(f"{file}: {where}.scopes: unknown scope '{scope}'; use "
                                f"{', '.join(SCOPES)}")
    claims = entry.get("claims", {})
    if not isinstance(claims, dict):
        raise SettingsError(f"{file}: {where}.claims must be a table, e.g. {{ tenant = 42 }}")
    members = entry.get("members")
    return StoredKey(str(entry["id"]), key_hash, frozenset(scopes), Access.of(
        claims, _strings(members, f"{where}.members", file) if members is not None else None),
        str(entry.get("name", "")))


def _jwt(value: Any, file: Path) -> JwtSettings:
    table = _table(value, "auth.jwt", JWT_KEYS, file)
    algorithms = _strings(table.get("algorithms", []), "auth.jwt.algorithms", file)
    for algorithm in algorithms:
        if algorithm not in SYMMETRIC + ASYMMETRIC:
            raise SettingsError(f"{file}: auth.jwt.algorithms: '{algorithm}' is not supported; "
                                f"use {', '.join(SYMMETRIC + ASYMMETRIC)}")
    jwks_file = table.get("jwks_file")
    for name in ("secret", "jwks_url", "audience", "issuer", "jwks_file"):
        if name in table and not isinstance(table[name], str):
            raise SettingsError(f"{file}: auth.jwt.{name} must be a string")
    leeway = table.get("leeway", 30)
    if isinstance(leeway, bool) or not isinstance(leeway, int | float) or leeway < 0:
        raise SettingsError(f"{file}: auth.jwt.leeway must be a number of seconds")
    return JwtSettings(table.get("secret"),
                       (file.parent / jwks_file) if jwks_file else None,
                       table.get("jwks_url"), table.get("audience"), table.get("issuer"),
                       algorithms, float(leeway))


def load_access_settings(path: Path) -> AccessSettings:
    """Read the settings file (missing: nothing configured), then the environment:
    ``SEMANTIC_JWT_SECRET``, ``SEMANTIC_JWKS_URL``, ``SEMANTIC_CORS_ORIGINS`` and
    ``SEMANTIC_ALLOWED_HOSTS`` (both comma-separated) set or replace the file's values."""
    environ = access_environment()
    document: dict[str, Any] = {}
    if path.exists():
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise SettingsError(f"cannot read {path}: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{path}: {exc}") from None
    elif environ.get("SEMANTIC_CONFIG"):
        raise SettingsError(f"SEMANTIC_CONFIG names {path}, which does not exist")
    _table(document, "top level", TOP_KEYS, path)
    auth = _table(document.get("auth", {}), "auth", AUTH_KEYS, path)
    raw_keys = auth.get("keys", [])
    if not isinstance(raw_keys, list):
        raise SettingsError(f"{path}: auth.keys must be an array of tables ([[auth.keys]])")
    keys = tuple(_key(entry, i, path) for i, entry in enumerate(raw_keys))
    if len({k.id for k in keys}) != len(keys):
        raise SettingsError(f"{path}: two [[auth.keys]] entries have the same id")
    jwt_settings = _jwt(auth.get("jwt", {}), path)
    if environ.get("SEMANTIC_JWT_SECRET"):
        jwt_settings = replace(jwt_settings, secret=environ["SEMANTIC_JWT_SECRET"])
    if environ.get("SEMANTIC_JWKS_URL"):
        jwt_settings = replace(jwt_settings, jwks_url=environ["SEMANTIC_JWKS_URL"])
    cors = _table(document.get("cors", {}), "cors", CORS_KEYS, path)
    origins = _strings(cors.get("origins", []), "cors.origins", path)
    if environ.get("SEMANTIC_CORS_ORIGINS"):
        origins = tuple(o.strip() for o in environ["SEMANTIC_CORS_ORIGINS"].split(",")
                        if o.strip())
    http = _table(document.get("http", {}), "http", HTTP_KEYS, path)
    hosts = _strings(http.get("hosts", []), "http.hosts", path)
    if environ.get("SEMANTIC_ALLOWED_HOSTS"):
        hosts = tuple(h.strip() for h in environ["SEMANTIC_ALLOWED_HOSTS"].split(",")
                      if h.strip())
    return AccessSettings(keys, jwt_settings, origins, path if path.exists() else None, hosts)
