"""API keys: issued once, stored hashed, looked up by id and compared in constant time.

A key reads ``sk_<id>_<secret>``: the id (12 hex digits) finds the stored entry in a dict, so a
lookup costs one hash whatever the number of keys. The secret is 256 random bits, so a fast
hash (SHA-256) is enough: there is nothing to brute-force that a slow hash would protect.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from engine.query.security import Access

PREFIX = "sk"
HASH_SCHEME = "sha256"


@dataclass(frozen=True, slots=True)
class StoredKey:
    """One ``[[auth.keys]]`` entry: the id, the hash of the whole key, what it may do."""

    id: str
    hash: str
    scopes: frozenset[str]
    access: Access
    name: str = ""


def hash_key(key: str) -> str:
    """``sha256:<hex>`` of the whole key.

    >>> hash_key("sk_0123456789ab_secret")[:15]
    'sha256:b7732eb8'
    """
    return f"{HASH_SCHEME}:{hashlib.sha256(key.encode()).hexdigest()}"


def new_key() -> tuple[str, str, str]:
    """A fresh key: (key, id, hash). The key itself is shown once and never stored."""
    key_id = secrets.token_hex(6)
    key = f"{PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    return key, key_id, hash_key(key)


def key_id(token: str) -> str | None:
    """The id part of something shaped like a key, else None (a JWT, garbage)."""
    prefix, _, rest = token.partition("_")
    found, _, secret = rest.partition("_")
    if prefix != PREFIX or len(found) != 12 or not secret:
        return None
    return found


class KeyStore:
    """The configured keys by id; parsed once at start, nothing read per request."""

    def __init__(self, keys: Iterable[StoredKey]) -> None:
        self._keys: Mapping[str, StoredKey] = {k.id: k for k in keys}

    def __len__(self) -> int:
        return len(self._keys)

    def check(self, token: str) -> StoredKey | None:
        """The stored key this token is, or None. Constant time in the secret."""
        found = key_id(token)
        stored = self._keys.get(found) if found is not None else None
        if stored is None:
            return None
        if hmac.compare_digest(hash_key(token).encode(), stored.hash.encode()):
            return stored
        return None
