"""JWT checks below HTTP: the verified-token cache never outlives a token's ``exp``."""

from __future__ import annotations

import time

import jwt
import pytest

from server.auth.tokens import JwtSettings, TokenRejected, TokenVerifier, principal_from_claims

SECRET = "k" * 40


def test_verified_tokens_are_cached_until_they_expire() -> None:
    verifier = TokenVerifier(JwtSettings(secret=SECRET, leeway=0))
    token = jwt.encode({"exp": time.time() + 1, "scope": "read", "tenant": 7}, SECRET)
    first = verifier.verify(token)
    assert verifier.verify(token) is first  # looked up, not checked again
    assert first.access.claim("tenant") == (7,)
    time.sleep(1.2)
    with pytest.raises(TokenRejected, match="expired"):
        verifier.verify(token)


def test_token_claims_are_checked() -> None:
    with pytest.raises(TokenRejected, match="'scope'"):
        principal_from_claims({"scope": 5})
    with pytest.raises(TokenRejected, match="'members'"):
        principal_from_claims({"scope": "read", "members": "total_events"})
    caller = principal_from_claims({"sub": "x", "scopes": ["read", "admin"], "exp": 1,
                                    "members": ["a"], "org": "acme"})
    assert caller.scopes == {"read", "admin"} and caller.access.members == {"a"}
    assert caller.access.claims == (("org", ("acme",)),)
