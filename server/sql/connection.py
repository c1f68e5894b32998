"""One client of the SQL interface: the PostgreSQL wire protocol's start-up (TLS, password),
simple and extended query protocols, cancel requests, and transactions as clients expect
them (read-only: ``BEGIN``/``COMMIT`` are accepted, nothing is written).

A statement over a model's table is translated (``server.sql.translate``) and answered by the
service layer exactly as ``/v1/query`` answers it: the caller's row-level security, limits,
routing and result cache. Catalog statements are answered by the connection's
``server.sql.catalog``. The caller authenticated at start-up is bound to the connection's task,
so every query runs as that caller.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Iterable, Sequence
from typing import Any

from sqlglot import exp

from server.auth.principal import Principal, current_access, current_principal
from server.service.queries import model_meta
from server.sql import messages as msg
from server.sql.answers import answer_query, catalog_answer, read_query
from server.sql.catalog import (
    SETTINGS,
    Catalog,
    CatalogAnswer,
    is_catalog,
)
from server.sql.commands import Commands
from server.sql.errors import SYNTAX_ERROR, SqlError
from server.sql.messages import DISCARD_LIMIT, Oversized, ProtocolError, Reader
from server.sql.schema import Schema, build_schema
from server.sql.startup import Host, Startup
from server.sql.statements import (
    CACHED_TEXT,
    Portal,
    Prepared,
    Result,
    first_word,
    parse_statements,
    result_formats,
    show_name,
)
from server.sql.translate import Translated, translate
from server.sql.types import TEXT, ParameterError, PgType, decode_parameter, encode_value

logger = logging.getLogger(__name__)


class Connection(Startup, Commands):
    def __init__(self, listener: Host, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.listener = listener
        self.state = listener.state
        self.reader = reader
        self.writer = writer
        self.pid = listener.next_pid()
        self.secret = secrets.randbits(32)
        self.user = ""
        self.database = "semantic"
        self.settings: dict[str, str] = dict(SETTINGS)
        self.statements: dict[str, Prepared] = {}
        self.portals: dict[str, Portal] = {}
        self.status = b"I"
        self.principal: Principal | None = None
        #: cursors declared (DECLARE ... CURSOR FOR), their answers and how far fetched
        self.cursors: dict[str, Portal] = {}
        self.running: asyncio.Task[Any] | None = None
        self.cancelled = False
        self._catalog: tuple[Schema, Catalog] | None = None

    # -- I/O ------------------------------------------------------------------------------

    async def send(self, *chunks: bytes) -> None:
        if self.writer.is_closing():
            raise ConnectionResetError("the client has gone")
        try:
            self.writer.write(b"".join(chunks))
            await asyncio.wait_for(self.writer.drain(), self.listener.write_timeout)
        except TimeoutError:
            raise ConnectionResetError("the client did not read its answer in time") from None
        except RuntimeError as exc:  # the transport closed under the write
            raise ConnectionResetError(str(exc)) from None

    async def read_message(self) -> tuple[bytes, bytes]:
        header = await self.reader.readexactly(5)
        kind, length = header[:1], int.from_bytes(header[1:], "big")
        if length < 4 or length - 4 > DISCARD_LIMIT:
            await self.send(msg.error_response("54000", f"a message of {length} bytes is "
                                               "larger than the server accepts",
                                               severity="FATAL"))
            raise ProtocolError("message too large")
        if length - 4 > self.listener.max_message:
            left = length - 4
            while left:  # read past it: the connection goes on
                left -= len(await self.reader.readexactly(min(left, 1 << 16)))
            raise Oversized(kind, f"a message of {length} bytes is larger than the server "
                            f"accepts ({self.listener.max_message}; "
                            "SEMANTIC_MAX_QUERY_BODY_BYTES)")
        return kind, await self.reader.readexactly(length - 4)

    # -- start-up -------------------------------------------------------------------------

    # -- the loop -------------------------------------------------------------------------

    async def serve(self) -> None:
        if self.listener.credentials is not None and (
                self.principal is None or current_principal() is not self.principal):
            raise ProtocolError("the caller is not bound to the connection")  # never serve
            # a credential's statements without its row-level security
        skipping = False  # after an error in the extended protocol, until Sync
        while True:
            try:
                kind, payload = await self.read_message()
            except Oversized as exc:
                await self.send(msg.error_response("54000", str(exc)))
                if exc.kind == b"Q":
                    await self.send(msg.ready_for_query(self.status))
                else:
                    skipping = True
                continue
            if kind == b"X":
                return
            if skipping and kind not in (b"S", b"Q"):
                continue
            skipping = False
            try:
                await self._dispatch(kind, payload)
            except (SqlError, Exception) as exc:
                if isinstance(exc, ConnectionError | ProtocolError | TimeoutError):
                    raise
                if not isinstance(exc, SqlError):  # a defect: said, logged, and the
                    # connection goes on
                    logger.exception("SQL statement failed on connection %d", self.pid)
                    exc = SqlError("XX000", f"internal error ({type(exc).__name__}); the "
                                   "server log has the details")
                if self.status == b"T":
                    self.status = b"E"
                await self.send(msg.error_response(exc.sqlstate, exc.message, exc.hint))
                if kind == b"Q":
                    await self.send(msg.ready_for_query(self.status))
                else:
                    skipping = True

    async def _dispatch(self, kind: bytes, payload: bytes) -> None:
        reader = Reader(payload)
        if kind == b"Q":
            await self._simple(reader.cstring())
        elif kind == b"P":
            name, text = reader.cstring(), reader.cstring()
            declared = [reader.int32() for _ in range(reader.int16())]
            if name and name in self.statements:
                raise SqlError("42P05", f'prepared statement "{name}" already exists')
            self.statements[name] = await self._prepare_one(text, declared)
            await self.send(msg.PARSE_COMPLETE)
        elif kind == b"B":
            await self._bind_portal(reader)
        elif kind == b"D":
            which, name = reader.byte(), reader.cstring()
            await self._describe(which, name)
        elif kind == b"E":
            name, limit = reader.cstring(), reader.int32()
            portal = self.portals.get(name)
            if portal is None:
                raise SqlError("34000", f'portal "{name}" does not exist')
            await self._execute(portal, limit)
        elif kind == b"S":
            if self.status == b"I":  # the implicit transaction ends: so do its portals
                self.portals.clear()
            else:
                self.portals.pop("", None)
            await self.send(msg.ready_for_query(self.status))
        elif kind == b"H":
            pass
        elif kind == b"C":
            which, name = reader.byte(), reader.cstring()
            (self.statements if which == b"S" else self.portals).pop(name, None)
            await self.send(msg.CLOSE_COMPLETE)
        elif kind in (b"d", b"c", b"f"):
            raise SqlError("0A000", "COPY is not supported")
        else:
            raise SqlError("08P01", f"unexpected message type {kind!r}")

    # -- statements -----------------------------------------------------------------------

    def _classify(self, text: str, statement: exp.Expression | None,
                  declared: list[int]) -> Prepared:
        if statement is None:
            return Prepared(text, None, declared, "empty")
        if isinstance(statement, exp.Select | exp.Union | exp.Subquery):
            if is_catalog(statement):
                return Prepared(text, statement, declared, "catalog")
            schema = self._schema_now()
            translated = translate(statement, schema, self.state.limits.query.rows)
            return Prepared(text, statement, declared, "model", translated)
        return Prepared(text, statement, declared, "command")

    def _prepared(self, text: str, declared: list[int]) -> list[Prepared]:
        """The statements of ``text``, parsed and translated once per text and caller's view
        of the model (the listener keeps short ones: tools send the same text again and
        again)."""
        serial = self._view()[1] if self.state.started is not None else 0
        key = (serial, text, tuple(declared))
        found = self.listener.statements.get(key)
        if found is not None:
            return found
        prepared = [self._classify(text, statement, declared) for statement in
                    parse_statements(text, self.listener.max_message) if statement is not None]
        if len(text) <= CACHED_TEXT:
            self.listener.statements.put(key, prepared)
        return prepared

    async def _parsed(self, text: str, declared: list[int]) -> list[Prepared]:
        """``_prepared``, on a worker thread for a long text (parsing a huge IN list takes
        a while: the event loop serves the other clients meanwhile)."""
        if len(text) <= CACHED_TEXT:
            return self._prepared(text, declared)
        return await self.state.dispatcher.offload(lambda: self._prepared(text, declared))

    async def _prepare_one(self, text: str, declared: list[int]) -> Prepared:
        statements = await self._parsed(text, declared)
        if len(statements) > 1:
            raise SqlError(SYNTAX_ERROR, "cannot insert multiple commands into a prepared "
                           "statement")
        return statements[0] if statements else Prepared(text, None, declared, "empty")

    async def _simple(self, text: str) -> None:
        statements: Iterable[Prepared]
        try:
            statements = await self._parsed(text, [])
        except SqlError:
            # PostgreSQL runs a simple query's statements one by one: those before the one
            # that cannot be answered still run (each classified when its turn comes)
            parsed = [s for s in parse_statements(text, self.listener.max_message) if s is not None]
            statements = (self._classify(text, statement, []) for statement in parsed)
        ran = False
        for prepared in statements:
            ran = True
            if prepared.parameter_count():
                raise SqlError("42P02", f"there is no parameter ${prepared.parameter_count()}")
            portal = Portal(prepared, [], [])
            result = await self._result(portal)
            head = msg.row_description(result.names, result.types, result.formats) \
                if result.names else b""
            await self.send(head, *result.rows, msg.command_complete(result.tag))
        if not ran:
            await self.send(msg.EMPTY_QUERY)
        await self.send(msg.ready_for_query(self.status))

    async def _bind_portal(self, reader: Reader) -> None:
        portal_name, name = reader.cstring(), reader.cstring()
        prepared = self.statements.get(name)
        if prepared is None:
            raise SqlError("26000", f'prepared statement "{name}" does not exist')
        codes = [reader.int16() for _ in range(reader.int16())]
        raw = [reader.value() for _ in range(reader.int16())]
        formats = [reader.int16() for _ in range(reader.int16())]
        types = prepared.parameter_types()
        if len(raw) != len(types):
            raise SqlError("08P01", f"bind message supplies {len(raw)} parameters, but "
                           f"prepared statement \"{name}\" requires {len(types)}")
        parameter_formats = result_formats(codes, len(raw))
        try:
            values = [decode_parameter(data, types[i].oid, parameter_formats[i] == 1)
                      for i, data in enumerate(raw)]
        except (ParameterError, ValueError, UnicodeDecodeError) as exc:
            raise SqlError("22P02", f"invalid parameter: {exc}") from None
        self.portals[portal_name] = Portal(prepared, values, formats)
        await self.send(msg.BIND_COMPLETE)

    async def _describe(self, which: bytes, name: str) -> None:
        if which == b"S":
            prepared = self.statements.get(name)
            if prepared is None:
                raise SqlError("26000", f'prepared statement "{name}" does not exist')
            head = msg.parameter_description(prepared.parameter_types())
            names, types = await self._shape(prepared)
            await self.send(head, msg.row_description(names, types, (0,) * len(names))
                            if names else msg.NO_DATA)
            return
        portal = self.portals.get(name)
        if portal is None:
            raise SqlError("34000", f'portal "{name}" does not exist')
        if portal.prepared.kind in ("catalog", "command"):
            portal.result = await self._result(portal)
            result = portal.result
            names, types, formats = result.names, result.types, result.formats
        else:
            names, types = await self._shape(portal.prepared)
            formats = result_formats(portal.formats, len(names))
        await self.send(msg.row_description(names, types, formats) if names else msg.NO_DATA)

    async def _shape(self,
                     prepared: Prepared) -> tuple[tuple[str, ...], tuple[PgType, ...]]:
        """The columns a statement answers, without running it (a catalog statement is run
        with NULL parameters: it is cheap)."""
        if prepared.translated is not None:
            outputs = prepared.translated.outputs
            return tuple(o.name for o in outputs), tuple(o.type for o in outputs)
        if prepared.kind == "catalog":
            assert prepared.statement is not None
            answer = await self._catalog_answer(prepared.statement,
                                                [None] * prepared.parameter_count())
            return answer.names, answer.types
        if prepared.kind == "command" and first_word(prepared) == "SHOW":
            return (show_name(prepared),), (TEXT,)
        return (), ()

    async def _execute(self, portal: Portal, limit: int) -> None:
        if portal.result is None:
            portal.result = await self._result(portal)
        result = portal.result
        rows = result.rows[portal.sent:]
        if 0 < limit < len(rows):
            portal.sent += limit
            await self.send(*rows[:limit], msg.PORTAL_SUSPENDED)
            return
        portal.sent = len(result.rows)
        if portal.prepared.kind == "empty":
            await self.send(msg.EMPTY_QUERY)
            return
        await self.send(*rows, msg.command_complete(result.tag))

    async def _result(self, portal: Portal) -> Result:
        """Run a portal's statement: its columns, DataRows and command tag."""
        prepared = portal.prepared
        if self.status == b"E" and not (prepared.kind == "command" and first_word(prepared)
                                        in ("ROLLBACK", "ABORT", "COMMIT", "END")):
            raise SqlError("25P02", "current transaction is aborted, commands ignored until "
                           "end of transaction block")
        if prepared.kind == "empty":
            return Result((), (), ())
        if prepared.kind == "command":
            if first_word(prepared) in ("DECLARE", "FETCH", "MOVE", "CLOSE"):
                return await self._cursor(prepared)
            return self._command(prepared)
        assert prepared.statement is not None
        if prepared.kind == "catalog":
            answer = await self._catalog_answer(prepared.statement, portal.values)
            formats = result_formats(portal.formats, len(answer.names))
            rows = [msg.data_row([encode_value(v, t.oid, f == 1) for v, t, f in
                                  zip(row, answer.types, formats, strict=True)])
                    for row in answer.rows]
            return Result(answer.names, answer.types, formats, rows, f"SELECT {len(rows)}")
        assert prepared.translated is not None
        return await self._model(prepared.translated, portal)

    async def _model(self, translated: Translated, portal: Portal) -> Result:
        outputs = translated.outputs
        formats = result_formats(portal.formats, len(outputs))
        query, bound = await read_query(self.state, translated, portal.values, self.settings)
        self.running = asyncio.current_task()
        self.cancelled = False
        started = time.perf_counter()
        try:
            cached, hit = await answer_query(self.state, query, bound, outputs, formats)
        except asyncio.CancelledError:
            if not self.cancelled:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            raise SqlError("57014", "canceling statement due to user request") from None
        finally:
            self.running = None
        rows = list(msg.split_rows(cached.body))
        logger.info("sql %d: %s, %d rows from %s%s in %.1f ms", self.pid, query.source,
                    len(rows), cached.table, " (cached)" if hit else "",
                    (time.perf_counter() - started) * 1000)
        return Result(tuple(o.name for o in outputs), tuple(o.type for o in outputs), formats,
                      rows, f"SELECT {len(rows)}")

    def cancel(self) -> None:
        if self.running is not None:
            self.cancelled = True
            self.running.cancel()

    # -- commands -------------------------------------------------------------------------

    # -- the model as the caller sees it --------------------------------------------------

    def _schema_now(self) -> Schema:
        return self._view()[0]

    def _view(self) -> tuple[Schema, int]:
        """The tables the caller sees and their serial number (the listener's)."""
        runtime = self.state.started
        if runtime is None:
            raise SqlError("57P03", "the model is not compiled yet (ClickHouse unreachable); "
                           "try again shortly")
        return self.listener.schema(runtime, current_access(), lambda: build_schema(
            model_meta(self.state), runtime.compiled))

    async def _catalog_answer(self, statement: exp.Expression,
                              values: Sequence[object]) -> CatalogAnswer:
        return await catalog_answer(self.state, self._catalog_now, statement, values)

    def _catalog_now(self) -> Catalog:
        schema = self._schema_now() if self.state.started is not None else {}
        if self._catalog is None or self._catalog[0] is not schema:
            self._catalog = (schema, Catalog(schema, self.user, self.database,
                                             self.settings.get))
        return self._catalog[1]
