"""The start-up of a SQL connection: TLS and GSS requests, cancel requests, the protocol
version (3.0; a newer minor one is negotiated down), the start-up parameters and settings,
the password (an API key or a JWT with the ``read`` scope), and the caller bound to the
connection's task for its lifetime. ``Startup`` is mixed into the connection."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import Protocol

from engine.query.security import Access
from server.auth.credentials import Credentials
from server.auth.principal import Principal, bind_principal
from server.runtime.compiled import Runtime
from server.runtime.state import State
from server.sql import messages as msg
from server.sql.messages import ProtocolError, Reader
from server.sql.schema import Schema
from server.sql.statements import StatementCache, startup_settings

logger = logging.getLogger(__name__)


class Host(Protocol):
    """What a connection uses of the listener that accepted it."""

    state: State
    credentials: Credentials | None
    tls: ssl.SSLContext | None
    max_connections: int
    write_timeout: float
    max_message: int
    statements: StatementCache

    def next_pid(self) -> int: ...

    def cancel(self, pid: int, secret: int) -> None: ...

    def schema(self, runtime: Runtime, access: Access | None,
               build: Callable[[], Schema]) -> tuple[Schema, int]: ...


class Link(Protocol):
    """What the start-up reads and sets of a connection."""

    listener: Host
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    pid: int
    secret: int
    user: str
    database: str
    settings: dict[str, str]
    principal: Principal | None

    async def send(self, *chunks: bytes) -> None: ...

    async def read_message(self) -> tuple[bytes, bytes]: ...

    async def _authenticate(self) -> bool: ...

    def _bind(self, principal: Principal) -> None: ...


class Startup:
    """The start-up exchange, as methods of the connection."""

    principal: Principal | None

    async def start(self: Link, refused: bool = False) -> bool:
        """The start-up exchange; False when the connection is to be closed (a cancel
        request, a refused credential, a broken start-up, or ``refused``: one connection too
        many, said once the client can read it)."""
        while True:
            length = int.from_bytes(await self.reader.readexactly(4), "big")
            if not 8 <= length <= 10_000:
                raise ProtocolError("a start-up packet of an unexpected length")
            payload = await self.reader.readexactly(length - 4)
            code = int.from_bytes(payload[:4], "big")
            if code == msg.CANCEL_REQUEST and len(payload) == 12:
                self.listener.cancel(int.from_bytes(payload[4:8], "big"),
                                     int.from_bytes(payload[8:12], "big"))
                return False
            if code == msg.SSL_REQUEST:
                if self.listener.tls is None:
                    await self.send(b"N")
                else:
                    await self.send(b"S")
                    await self.writer.start_tls(self.listener.tls)
                continue
            if code == msg.GSS_REQUEST:
                await self.send(b"N")
                continue
            if code >> 16 != 3:
                await self.send(msg.error_response("08P01", "only protocol 3.0 is supported",
                                                   severity="FATAL"))
                return False
            break
        if refused:
            await self.send(msg.error_response(
                "53300", f"sorry, too many clients already (at most "
                f"{self.listener.max_connections}; SEMANTIC_SQL_MAX_CONNECTIONS)",
                severity="FATAL"))
            return False
        params = msg.startup_parameters(payload)
        options = [name for name in params if name.startswith("_pq_.")]
        if code != msg.PROTOCOL_3 or options:  # a newer minor version, or protocol options
            await self.send(msg.negotiate_protocol(0, options))
        self.user = params.get("user", "")
        self.database = params.get("database") or self.user or "semantic"
        for name, value in params.items():
            if name not in ("user", "database", "options", "replication"):
                self.settings[name.lower()] = value
        self.settings.update(startup_settings(params.get("options", "")))
        if not await self._authenticate():
            return False
        await self.send(msg.authentication_ok(),
                        *msg.parameter_statuses(self.settings["server_version"], self.user,
                                                self.settings["application_name"]),
                        msg.backend_key(self.pid, self.secret), msg.ready_for_query(b"I"))
        return True

    async def _authenticate(self: Link) -> bool:
        credentials = self.listener.credentials
        if credentials is None:
            return True
        await self.send(msg.authentication_cleartext())
        kind, payload = await self.read_message()
        if kind != b"p":
            raise ProtocolError("expected a password message")
        password = Reader(payload).cstring()
        principal = await credentials.principal(password) if password else \
            "send an API key or a JWT as the password"
        if isinstance(principal, str):
            logger.info("SQL interface refused a credential for user %r: %s", self.user[:100],
                        principal)
            await self.send(msg.error_response("28P01", f"password authentication failed: "
                                               f"{principal}", severity="FATAL"))
            return False
        if "read" not in principal.scopes:
            await self.send(msg.error_response(
                "28000", "this credential lacks the 'read' scope (it has: "
                f"{', '.join(sorted(principal.scopes)) or 'none'})", severity="FATAL"))
            return False
        self._bind(principal)
        return True

    def _bind(self: Link, principal: Principal) -> None:
        # the connection's task has its own context: the caller is bound for its lifetime
        # (start() runs in that task, so the binding outlives it)
        bind_principal(principal)
        self.principal = principal
