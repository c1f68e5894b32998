"""The authenticated caller of the request being handled, readable on the request path."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from engine.query.security import Access

#: scopes a credential may carry; each route requires one (health and the schema none);
#: ``metrics`` is the Prometheus scrape, whose figures are over every tenant's rows
SCOPES: tuple[str, ...] = ("read", "ingest", "admin", "metrics")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling (a key id or a token subject), its scopes and its row-level access."""

    subject: str
    scopes: frozenset[str]
    access: Access


_current: ContextVar[Principal | None] = ContextVar("principal", default=None)


def current_principal() -> Principal | None:
    """The caller of this request; None when access control is off (or off the request path).
    Handlers run in worker threads with a copy of the request's context, so they see it."""
    return _current.get()


def current_access() -> Access | None:
    principal = _current.get()
    return principal.access if principal is not None else None


def bind_principal(principal: Principal | None) -> object:
    """Bind the caller to the running context; returns a token for ``unbind_principal``."""
    return _current.set(principal)


def unbind_principal(token: object) -> None:
    _current.reset(token)  # type: ignore[arg-type]
