"""Who a credential is: an API key (looked up by id, its hash compared) or a JWT (its signature
and claims checked), shared by every transport that takes one (HTTP's ``Authorization``
header, the SQL interface's password)."""

from __future__ import annotations

import anyio.to_thread

from server.auth.keys import KeyStore, key_id
from server.auth.principal import Principal
from server.auth.settings import AccessSettings
from server.auth.tokens import TokenRejected, TokenVerifier


class Credentials:
    """Parsed once from the settings; per credential: a dict lookup and a hash (a key), or
    one signature check (a JWT)."""

    def __init__(self, settings: AccessSettings) -> None:
        self.keys = KeyStore(settings.keys)
        self.tokens = TokenVerifier(settings.jwt) if settings.jwt.configured else None

    async def principal(self, credential: str) -> Principal | str:
        """The caller a credential names, or why it is refused."""
        if key_id(credential) is not None:
            stored = self.keys.check(credential)
            if stored is None:
                return "unknown or revoked API key"
            return Principal(f"key:{stored.id}", stored.scopes, stored.access)
        if self.tokens is None:
            return "not a valid API key"
        try:
            if self.tokens.fetches:  # may fetch the JWKS: keep the event loop free
                return await anyio.to_thread.run_sync(self.tokens.verify, credential)
            return self.tokens.verify(credential)
        except TokenRejected as exc:
            return str(exc)
