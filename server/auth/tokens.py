"""Signed JWTs (PyJWT): HS256 with a shared secret, RS256/ES256 against a JWKS file or URL.

A token must carry ``exp``. Its scopes are ``scope`` (space-separated, as OAuth writes them) or
``scopes`` (a list); ``members`` (a list) limits what it may read; every other claim is
available to the model's ``security:`` mappings (e.g. ``"tenant": 42``).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt

from engine.query.security import Access
from semantic.errors import SemanticError
from server.auth.principal import Principal

logger = logging.getLogger(__name__)

#: claims that say who and what a token is, never row-level security values
REGISTERED_CLAIMS = frozenset({"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "scope",
                               "scopes", "members"})
SYMMETRIC = ("HS256",)
#: verified tokens kept (a dict cleared when full: cheap, and bounded)
VERIFIED_CACHE_SIZE = 4096
ASYMMETRIC = ("RS256", "ES256")


class TokenRejected(Exception):
    """The token is not valid; the message says why (sent back to the caller)."""


@dataclass(frozen=True, slots=True)
class JwtSettings:
    """``[auth.jwt]``: a shared secret (HS256) and/or a JWKS file or URL (RS256/ES256)."""

    secret: str | None = None
    jwks_file: Path | None = None
    jwks_url: str | None = None
    audience: str | None = None
    issuer: str | None = None
    algorithms: tuple[str, ...] = field(default=())
    #: seconds of clock skew tolerated on exp/nbf
    leeway: float = 30.0

    @property
    def configured(self) -> bool:
        return bool(self.secret or self.jwks_file or self.jwks_url)


class TokenVerifier:
    """Checks tokens against the configured keys; the JWKS file is read once, the JWKS URL's
    keys are cached (refetched when a token names an unknown key id, at most every 30 s)."""

    def __init__(self, settings: JwtSettings) -> None:
        self.settings = settings
        self._jwks: jwt.PyJWKSet | None = None
        self._client: jwt.PyJWKClient | None = None
        if settings.jwks_file is not None:
            try:
                self._jwks = jwt.PyJWKSet.from_dict(json.loads(settings.jwks_file.read_text()))
            except (OSError, ValueError, jwt.PyJWTError) as exc:
                raise SemanticError(f"cannot read the JWKS file {settings.jwks_file}: "
                                    f"{exc}") from None
        if settings.jwks_url is not None:
            self._client = jwt.PyJWKClient(settings.jwks_url, cache_keys=True, timeout=5)
        default = (SYMMETRIC if settings.secret else ()) + (
            ASYMMETRIC if self._jwks or self._client else ())
        self.algorithms = settings.algorithms or default
        #: token -> (caller, exp): verified tokens, checked again only after they expire
        self._verified: dict[str, tuple[Principal, float]] = {}

    @property
    def fetches(self) -> bool:
        """Whether checking a token may fetch keys over the network (run it off the loop)."""
        return self._client is not None

    def _key(self, token: str, algorithm: str) -> Any:
        if algorithm in SYMMETRIC:
            if not self.settings.secret:
                raise TokenRejected(f"tokens signed with {algorithm} are not accepted")
            return self.settings.secret
        kid = jwt.get_unverified_header(token).get("kid")
        if self._jwks is not None:
            for key in self._jwks.keys:
                if kid is None or key.key_id == kid:
                    return key
        if self._client is not None:
            try:
                return self._client.get_signing_key_from_jwt(token)
            except jwt.PyJWKClientConnectionError as exc:
                logger.warning("cannot fetch the JWKS: %s", exc)
                raise TokenRejected("the token's signing keys cannot be fetched") from None
            except jwt.PyJWKClientError:
                pass
        raise TokenRejected("the token's signing key is not known")

    def verify(self, token: str) -> Principal:
        """The caller a token describes; a token verified before is looked up, not checked
        again (PyJWT costs about 0.3 ms a token), until its ``exp``."""
        cached = self._verified.get(token)
        if cached is not None and time.time() < cached[1]:
            return cached[0]
        principal, expires = self._verify(token)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = (principal, expires)
        return principal

    def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            header = jwt.get_unverified_header(token)
            algorithm = str(header.get("alg"))
            if algorithm not in self.algorithms:
                raise TokenRejected(f"tokens signed with {algorithm} are not accepted")
            claims = jwt.decode(token, self._key(token, algorithm), algorithms=[algorithm],
                                audience=self.settings.audience, issuer=self.settings.issuer,
                                leeway=self.settings.leeway, options={"require": ["exp"]})
        except jwt.PyJWTError as exc:
            raise TokenRejected(f"invalid token: {exc}") from None
        return principal_from_claims(claims), float(claims["exp"])


def _scopes(claims: dict[str, Any]) -> frozenset[str]:
    scope = claims.get("scope", claims.get("scopes", ()))
    if isinstance(scope, str):
        return frozenset(scope.split())
    if isinstance(scope, list) and all(isinstance(s, str) for s in scope):
        return frozenset(scope)
    raise TokenRejected("the token's 'scope' must be a space-separated string or a list")


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    """The caller a verified token describes.

    >>> p = principal_from_claims({"sub": "ann", "scope": "read", "tenant": 42})
    >>> sorted(p.scopes), p.access.claim("tenant")
    (['read'], (42,))
    """
    members = claims.get("members")
    if members is not None and not (isinstance(members, list)
                                    and all(isinstance(m, str) for m in members)):
        raise TokenRejected("the token's 'members' must be a list of member names")
    security = {k: v for k, v in claims.items() if k not in REGISTERED_CLAIMS}
    return Principal(str(claims.get("sub", "token")), _scopes(claims),
                     Access.of(security, members))
