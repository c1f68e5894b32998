"""The one ASGI middleware in front of every route: the host and cross-site checks, then
credentials and scopes; the caller is bound for the request (``principal.current_principal``).

With access control off, only loopback host names (and those configured in ``[http] hosts``)
are answered, so a web page cannot read the server through DNS rebinding; on every route but
the public ones, a browser request from a foreign web origin (not the server's own, not in
``[cors] origins``) is refused.

Which scope a route needs is decided here, by path, so every surface is covered, including
ones added later: ``/v1/admin/...`` needs ``admin``, ``/v1/sources/{source}/rows`` needs
``ingest``, ``/metrics`` needs ``metrics`` (its figures are over every tenant's rows),
everything else ``read``, except the public paths (health, readiness, the schema
and its docs page) and CORS preflights (answered by Litestar's CORS support).
"""

from __future__ import annotations

import functools
import logging
import posixpath
import re
from collections.abc import Callable

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from server.auth.credentials import Credentials
from server.auth.principal import Principal, bind_principal, unbind_principal
from server.auth.settings import AccessSettings
from server.http.hosts import host_allowed, host_name, is_loopback, same_origin
from server.http.request_ids import current_request_id
from server.http.serialize import encode

logger = logging.getLogger(__name__)

PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json", "/docs",
                          # the explore page's document and assets hold no data (a browser
                          # cannot send a credential when it opens a page); its requests to
                          # the API carry the key typed into it
                          "/", "/explore", "/explore/model"})
#: public folders of single files (no deeper path is public)
PUBLIC_FOLDERS = ("/explore/static/",)
#: answered whatever the Host (they hold no data; probes call them by address)
HEALTH_PATHS = frozenset({"/healthz", "/readyz"})
#: a batch of rows, and committing or cancelling a staged load
_INGEST = re.compile(r"^/v1/sources/[^/]+/(rows|loads/[^/]+(/commit)?)$")
_SLASHES = re.compile(r"/+")
#: content types a cross-site HTML form (or a no-preflight fetch) can send
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data", "text/plain")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
REALM = 'Bearer realm="semantic"'


def required_scope(path: str) -> str | None:
    """The scope a path needs; None for public paths. The path is normalized first (repeated
    slashes, dot segments), so no spelling of an admin path passes for another route.

    >>> required_scope("/v1/admin/apply"), required_scope("/v1/sources/events/rows")
    ('admin', 'ingest')
    >>> required_scope("/v1/sources/events/loads/ab12cd34/commit")
    'ingest'
    >>> required_scope("//v1//admin/./apply"), required_scope("/v1/x/../sources/e//rows/")
    ('admin', 'ingest')
    >>> required_scope("/api/metrics"), required_scope("/healthz"), required_scope("//metrics")
    ('read', None, 'metrics')
    >>> required_scope("/api/metrics/../../healthz"), required_scope("/explore/static/..")
    ('read', 'read')
    """
    # as written: a path that only normalizes to a public one is not public
    if path in PUBLIC_PATHS or any(path.startswith(folder) and "/" not in path[len(folder):]
                                   and path[len(folder):] not in ("", ".", "..")
                                   for folder in PUBLIC_FOLDERS):
        return None
    path = posixpath.normpath(_SLASHES.sub("/", path))
    if path == "/v1/admin" or path.startswith("/v1/admin/"):
        return "admin"
    if _INGEST.match(path):
        return "ingest"
    if path == "/metrics":
        return "metrics"
    return "read"


#: a refused request: status, error code, message, extra headers
Refusal = tuple[int, str, str, dict[str, str]]

#: Host headers whose answer an access middleware remembers
_MAX_HOSTS = 256

#: ``required_scope`` remembered per path (paths come from callers: bounded)
_scope_of = functools.lru_cache(maxsize=4096)(required_scope)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


class AccessMiddleware:
    """Parsed once from the settings; per request: a dict lookup and a hash (a key), or one
    signature check (a JWT)."""

    def __init__(self, app: ASGIApp, settings: AccessSettings,
                 credentials: Credentials) -> None:
        self.app = app
        self.settings = settings
        self.origins = frozenset(settings.cors_origins)
        self.credentials = credentials
        #: with access control on, credentials guard every route and any Host is answered
        #: unless hosts are configured
        self.check_hosts = not settings.enabled or bool(settings.hosts)
        #: Host header -> whether it is answered (headers come from callers: bounded)
        self._hosts: dict[str, bool] = {}

    def _answers(self, host: str) -> bool:
        """Whether this server answers requests to the ``Host`` header ``host``."""
        found = self._hosts.get(host)
        if found is None:
            name = host_name(host)
            found = (not self.settings.enabled and is_loopback(name)) or host_allowed(
                name, self.settings.hosts)
            if len(self._hosts) >= _MAX_HOSTS:
                self._hosts.clear()
            self._hosts[host] = found
        return found

    def _foreign_host(self, scope: Scope) -> Refusal | None:
        """A request to a host name this server does not answer (DNS rebinding)."""
        if not self.check_hosts or scope["path"] in HEALTH_PATHS:
            return None
        host = _header(scope, b"host")
        if host is None:  # HTTP/1.0 without Host: not from a browser
            return None
        if self._answers(host):
            return None
        return (403, "foreign_host", f"this server does not answer the host name "
                f"{host[:200]!r}; allow it in [http] hosts (SEMANTIC_ALLOWED_HOSTS) or turn "
                "access control on", {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.WEBSOCKET:
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        outcome = await self.admit(scope)
        if isinstance(outcome, tuple):
            await refuse(send, outcome, scope["path"])
            return
        token = bind_principal(outcome)
        try:
            await self.app(scope, receive, send)
        finally:
            unbind_principal(token)

    async def admit(self, scope: Scope) -> Principal | Refusal | None:
        """Who makes an HTTP request: its credential's principal, None when no credential is
        asked for (access control off, a public path, a CORS preflight), or why it is refused
        (answered with ``refuse``)."""
        refusal = self._foreign_host(scope)
        if refusal is not None:
            return refusal
        needed = _scope_of(scope["path"])
        method = str(scope.get("method", "GET"))
        if method == "OPTIONS" or needed is None:
            return None
        refusal = self._cross_site(scope, method, needed)
        if refusal is not None:
            return refusal
        if self.settings.enabled:
            return await self._authenticate(scope, needed)
        return None

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A WebSocket needs the same credential as its path over HTTP (closed with 1008,
        policy violation, without one)."""
        needed = required_scope(scope["path"])
        refusal = self._foreign_host(scope) or (
            self._cross_site(scope, "GET", needed) if needed is not None else None)
        if refusal is not None:
            await send({"type": "websocket.close", "code": 1008, "reason": refusal[2][:120]})
            return
        principal = None
        if needed is not None and self.settings.enabled:
            outcome = await self._authenticate(scope, needed)
            if not isinstance(outcome, Principal):
                await send({"type": "websocket.close", "code": 1008, "reason": outcome[2][:120]})
                return
            principal = outcome
        token = bind_principal(principal)
        try:
            await self.app(scope, receive, send)
        finally:
            unbind_principal(token)

    def _cross_site(self, scope: Scope, method: str,
                    needed: str) -> Refusal | None:
        """Refuse what a web page on another site could make a browser send: any request
        from a foreign ``Origin`` (neither the server's own nor allowed by CORS), and on admin
        and ingestion routes a form content type (no CORS preflight guards those)."""
        origin = _header(scope, b"origin")
        if (origin is not None and origin not in self.origins
                and not same_origin(origin, _header(scope, b"host"))):
            return (403, "foreign_origin", f"requests from the web origin {origin[:200]!r} are "
                    "not accepted; allow it in [cors] origins", {})
        if needed == "read" or method in SAFE_METHODS:
            return None
        kind = (_header(scope, b"content-type") or "").split(";", 1)[0].strip().lower()
        if kind in FORM_TYPES:
            return (415, "unsupported_media_type", f"content type '{kind}' is not accepted on "
                    f"{path_kind(needed)} routes; send JSON, CSV or Parquet", {})
        return None

    async def _authenticate(self, scope: Scope,
                            needed: str) -> Principal | Refusal:
        header = _header(scope, b"authorization")
        if header is None:
            return (401, "unauthorized", "send a credential: Authorization: Bearer <API key "
                    "or JWT>", {"WWW-Authenticate": REALM})
        kind, space, credential = header.strip().partition(" ")
        if not space:  # a bare token, as Cube's client sends it
            kind, credential = "bearer", kind
        credential = credential.strip()
        if kind.lower() != "bearer" or not credential:
            return (401, "unauthorized", "the Authorization header must read 'Bearer "
                    "<API key or JWT>'", {"WWW-Authenticate": f'{REALM}, error="invalid_request"'})
        principal = await self.credentials.principal(credential)
        if isinstance(principal, str):
            logger.info("refused a credential on %s: %s", scope["path"], principal)
            return (401, "unauthorized", principal,
                    {"WWW-Authenticate": f'{REALM}, error="invalid_token"'})
        if needed not in principal.scopes:
            return (403, "insufficient_scope", f"this credential lacks the '{needed}' scope "
                    f"(it has: {', '.join(sorted(principal.scopes)) or 'none'})",
                    {"WWW-Authenticate": f'{REALM}, error="insufficient_scope", '
                                         f'scope="{needed}"'})
        return principal


def path_kind(scope: str) -> str:
    return {"admin": "admin", "ingest": "ingestion", "metrics": "metrics"}.get(scope, scope)


#: paths answered in Cube's shape (``server.api.cube``): errors are ``{"error": "..."}`` and
#: credentials are refused with 403, as Cube's gateway does
CUBE_PREFIX = "/cubejs-api/"


async def refuse(send: Send, refusal: Refusal, path: str,
                 extra: list[tuple[bytes, bytes]] | None = None) -> int:
    """Answer a refused request (on the Cube API's paths in Cube's shape); ``extra``: more
    response headers. Returns the status sent."""
    status, code, message, headers = refusal
    if path.startswith(CUBE_PREFIX):
        status = 403 if status == 401 else status
        body = encode({"error": message, "requestId": current_request_id()})
    else:
        body = encode({"error": {"code": code, "message": message, "field": None,
                                 "request_id": current_request_id()}})
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    raw += extra or []
    start: Message = {"type": "http.response.start", "status": status, "headers": raw}
    await send(start)
    await send({"type": "http.response.body", "body": body, "more_body": False})
    return status


def access_middleware(settings: AccessSettings) -> Callable[[ASGIApp], AccessMiddleware]:
    """The middleware factory for ``Litestar(middleware=[...])``; every middleware it makes
    shares one ``Credentials`` (one key store, one JWKS cache)."""
    credentials = Credentials(settings)

    def wrap(app: ASGIApp) -> AccessMiddleware:
        return AccessMiddleware(app, settings, credentials)
    return wrap


__all__ = ["AccessMiddleware", "access_middleware", "required_scope"]
