"""The SQL interface's listener: PostgreSQL clients on one socket, each served by its own
``Connection`` on the event loop the HTTP API runs on (a query waits on a worker thread as
HTTP requests do; a slow client holds only its own connection).

At most ``max_connections`` clients at once (more are refused with SQLSTATE 53300); a client
that does not read its answer within ``write_timeout`` seconds is disconnected.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import socket
import ssl
from collections.abc import Callable

from engine.query.security import Access
from server.auth.credentials import Credentials
from server.auth.settings import AccessSettings
from server.runtime.compiled import Runtime
from server.runtime.state import State
from server.settings import SqlSettings
from server.sql import messages as msg
from server.sql.connection import Connection
from server.sql.messages import ProtocolError
from server.sql.schema import Schema
from server.sql.statements import StatementCache

logger = logging.getLogger(__name__)

#: seconds a client has to start up (TLS, password), as PostgreSQL's authentication_timeout
STARTUP_TIMEOUT = 60.0


def tls_context(settings: SqlSettings) -> ssl.SSLContext | None:
    """TLS for clients that ask for it, when a certificate is configured."""
    if not settings.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.tls_cert, settings.tls_key or None)
    return context


class Listener:
    def __init__(self, state: State, access: AccessSettings, settings: SqlSettings) -> None:
        self.state = state
        self.credentials = Credentials(access) if access.enabled else None
        self.tls = tls_context(settings)
        self.max_connections = settings.max_connections
        self.write_timeout = settings.write_timeout
        #: the largest message (a statement, a bind): the query body limit, at least 1 MiB
        self.max_message = max(state.limits.body_bytes, 1024 * 1024)
        self.connections: dict[int, Connection] = {}
        #: sockets accepted and not yet closed (started up or not)
        self.open = 0
        self.statements = StatementCache()
        #: each caller's view of the model (by its access), for the runtime it was made from
        self._schemas: dict[Access | None, tuple[Runtime, Schema, int]] = {}
        self._serial = 0
        self._pids = itertools.count((os.getpid() % 10_000) * 100_000 + 1)
        self.server: asyncio.Server | None = None

    def schema(self, runtime: Runtime, access: Access | None,
               build: Callable[[], Schema]) -> tuple[Schema, int]:
        """The tables ``access`` sees in ``runtime``'s model, built once per access, and the
        serial number cached statements are keyed by (a new one for every schema built)."""
        found = self._schemas.get(access)
        if found is not None and found[0] is runtime:
            return found[1], found[2]
        if len(self._schemas) >= 1024:
            self._schemas.clear()
        self._serial += 1
        schema = build()
        self._schemas[access] = (runtime, schema, self._serial)
        return schema, self._serial

    def next_pid(self) -> int:
        return next(self._pids) % 2**31

    async def start(self, sock: socket.socket) -> None:
        self.server = await asyncio.start_server(self._handle, sock=sock)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for connection in list(self.connections.values()):
            connection.writer.close()

    def cancel(self, pid: int, secret: int) -> None:
        """A cancel request: the statement the connection ``pid`` runs, if the secret is its
        own (as PostgreSQL, nothing is said either way)."""
        connection = self.connections.get(pid)
        if connection is not None and connection.secret == secret:
            connection.cancel()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = Connection(self, reader, writer)
        self.open += 1  # counted from the accept: a client that never starts up counts too
        try:
            # over the bound: refused after the start-up packet, so the client shows why
            refused = self.open > self.max_connections
            # in this task (not one wait_for would make): the caller bound at start-up stays
            # bound for the statements
            async with asyncio.timeout(STARTUP_TIMEOUT):
                started = await connection.start(refused)
            if not started:
                return
            self.connections[connection.pid] = connection
            await connection.serve()
        except ProtocolError as exc:
            logger.debug("SQL connection %d broke the protocol: %s", connection.pid, exc)
            with contextlib.suppress(ConnectionError, TimeoutError):
                await connection.send(msg.error_response("08P01", f"protocol violation: {exc}",
                                                         severity="FATAL"))
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError,
                TimeoutError) as exc:
            logger.debug("SQL connection %d closed: %s", connection.pid, exc)
        except asyncio.CancelledError:
            raise
        except Exception:  # a defect: this connection ends, the listener goes on
            logger.exception("SQL connection %d failed", connection.pid)
        finally:
            self.open -= 1
            self.connections.pop(connection.pid, None)
            writer.close()
