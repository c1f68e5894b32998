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
import datetime as dt
import logging
import re
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlglot
from sqlglot import exp
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers

from engine.query.fields import parse_query
from semantic.errors import FieldError, SemanticError
from server.auth.principal import Principal, bind_principal, current_access, current_principal
from server.runtime.compiled import Answer
from server.service.answers import current_runtime, serve_answer
from server.service.queries import model_meta
from server.sql import messages as msg
from server.sql.catalog import (
    SETTINGS,
    Catalog,
    CatalogAnswer,
    CatalogTimeout,
    InvalidValue,
    UnknownColumn,
    UnknownFunction,
    is_catalog,
)
from server.sql.messages import ProtocolError, Reader
from server.sql.schema import Schema, build_schema
from server.sql.translate import (
    MAX_PARAMETERS,
    SYNTAX_ERROR,
    TOO_MANY_ROWS,
    UNSUPPORTED,
    Output,
    SqlError,
    Translated,
    bind,
    parameter_types,
    translate,
)
from server.sql.types import BY_OID, TEXT, ParameterError, PgType, decode_parameter, encode_value

if TYPE_CHECKING:
    from server.sql.listener import Listener

logger = logging.getLogger(__name__)


class _CommandFallback(logging.Filter):
    """sqlglot warns when it reads a statement as a plain command (``SHOW ...``,
    ``SAVEPOINT ...``): clients send those all the time, and they are answered here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Falling back to parsing as a 'Command'" not in record.getMessage()


logging.getLogger("sqlglot").addFilter(_CommandFallback())

#: statements up to this long are kept parsed and translated (longer ones are parsed on a
#: worker thread each time)
CACHED_TEXT = 16 * 1024
#: statements accepted and answered without doing anything (a read-only session)
_NO_OPS = {"LISTEN": "LISTEN", "UNLISTEN": "UNLISTEN", "NOTIFY": "NOTIFY",
           "DISCARD": "DISCARD ALL", "SAVEPOINT": "SAVEPOINT", "RELEASE": "RELEASE"}
#: statements that would write: refused as in a read-only transaction
_WRITES = frozenset({"INSERT", "UPDATE", "DELETE", "MERGE", "CREATE", "DROP", "ALTER",
                     "TRUNCATE", "GRANT", "REVOKE", "COMMENT", "VACUUM", "ANALYZE", "REINDEX",
                     "CLUSTER", "REFRESH", "LOCK", "COPY", "SECURITY", "IMPORT"})
_DECLARE = re.compile(r"DECLARE\s+(?P<name>\"[^\"]+\"|\w+)\s+(?:BINARY\s+)?(?:(?:ASENSITIVE|"
                      r"INSENSITIVE)\s+)?(?:(?:NO\s+)?SCROLL\s+)?CURSOR\s+"
                      r"(?:(?P<hold>WITH)\s+HOLD\s+|WITHOUT\s+HOLD\s+)?FOR\s+(?P<query>.+)$",
                      re.IGNORECASE | re.DOTALL)
_FETCH = re.compile(r"(?P<verb>FETCH|MOVE)\s+(?:(?:FORWARD|NEXT)\s+)?(?:(?P<count>\d+)\s+|"
                    r"(?P<all>ALL)\s+)?(?:(?:FROM|IN)\s+)?(?P<name>\"[^\"]+\"|\w+)$",
                    re.IGNORECASE)
_CLOSE = re.compile(r"CLOSE\s+(?P<name>\"[^\"]+\"|\w+)$", re.IGNORECASE)
_TRANSACTION = {"BEGIN": "BEGIN", "START": "START TRANSACTION", "COMMIT": "COMMIT",
                "END": "COMMIT", "ROLLBACK": "ROLLBACK", "ABORT": "ROLLBACK"}
_OPERATOR = re.compile(r"OPERATOR\s*\(\s*pg_catalog\s*\.\s*([~!*<>=]+)\s*\)", re.IGNORECASE)
_COLLATE = re.compile(r"COLLATE\s+pg_catalog\s*\.\s*\"?default\"?", re.IGNORECASE)
_FIRST_WORD = re.compile(r"^\s*([A-Za-z]+)")
#: the session setting that chooses the zone of buckets and time literals (``/v1/query``'s
#: ``timezone``): ``SET semantic.timezone = 'Europe/Berlin'``. PostgreSQL's own ``TimeZone``
#: does not change them, as it does not change ``date_trunc`` of a timestamp without zone.
TIMEZONE_SETTING = "semantic.timezone"
#: errors of the layers below, by ``SemanticError.code``, as SQLSTATEs
_SQLSTATES = {"busy": "53300", "query_timeout": "57014", "warehouse_timeout": "57014",
              "warehouse_unavailable": "57P03", "query_too_large": "54000",
              "forbidden": "42501", "invalid_query": "22023"}


#: a message up to this size that is larger than accepted is read past and refused (the
#: connection goes on); a larger one ends the connection
DISCARD_LIMIT = 64 * 1024 * 1024


class Oversized(Exception):
    """A message larger than the server accepts, read past."""

    def __init__(self, kind: bytes, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(slots=True)
class Prepared:
    """A parsed statement (``Parse``, or one statement of a simple ``Query``)."""

    text: str
    statement: exp.Expression | None
    declared: list[int]
    #: ``catalog``, ``model``, ``command`` or ``empty``
    kind: str
    translated: Translated | None = None

    def parameter_count(self) -> int:
        found = [int(p.name) for p in self.statement.find_all(exp.Parameter)
                 if p.name.isdigit()] if self.statement is not None else []
        count = max([len(self.declared), *found], default=0)
        if count > MAX_PARAMETERS:
            raise SqlError("54000", f"a statement has at most {MAX_PARAMETERS} parameters")
        return count

    def parameter_types(self) -> list[PgType]:
        count = self.parameter_count()
        inferred = (parameter_types(self.translated, count) if self.translated else
                    [TEXT] * count)
        return [BY_OID.get(self.declared[i], inferred[i]) if i < len(self.declared) and
                self.declared[i] else inferred[i] for i in range(count)]


@dataclass(slots=True)
class Result:
    names: tuple[str, ...]
    types: tuple[PgType, ...]
    formats: tuple[int, ...]
    rows: list[bytes] = field(default_factory=list)
    tag: str = ""


@dataclass(slots=True)
class Portal:
    prepared: Prepared
    values: list[Any]
    formats: list[int]
    result: Result | None = None
    sent: int = 0


def _formats(codes: Sequence[int], count: int) -> tuple[int, ...]:
    if any(code not in (0, 1) for code in codes):
        raise SqlError("08P01", "format codes are 0 (text) or 1 (binary)")
    if not codes:
        return (0,) * count
    if len(codes) == 1:
        return (codes[0],) * count
    if len(codes) != count:
        raise SqlError("08P01", f"{len(codes)} result format codes for {count} columns")
    return tuple(codes)


class Connection:
    def __init__(self, listener: Listener, reader: asyncio.StreamReader,
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

    async def _read_exactly(self, size: int) -> bytes:
        return await self.reader.readexactly(size)

    async def read_message(self) -> tuple[bytes, bytes]:
        header = await self._read_exactly(5)
        kind, length = header[:1], int.from_bytes(header[1:], "big")
        if length < 4 or length - 4 > DISCARD_LIMIT:
            await self.send(msg.error_response("54000", f"a message of {length} bytes is "
                                               "larger than the server accepts",
                                               severity="FATAL"))
            raise ProtocolError("message too large")
        if length - 4 > self.listener.max_message:
            left = length - 4
            while left:  # read past it: the connection goes on
                left -= len(await self._read_exactly(min(left, 1 << 16)))
            raise Oversized(kind, f"a message of {length} bytes is larger than the server "
                            f"accepts ({self.listener.max_message}; "
                            "SEMANTIC_MAX_QUERY_BODY_BYTES)")
        return kind, await self._read_exactly(length - 4)

    # -- start-up -------------------------------------------------------------------------

    async def start(self, refused: bool = False) -> bool:
        """The start-up exchange; False when the connection is to be closed (a cancel
        request, a refused credential, a broken start-up, or ``refused``: one connection too
        many, said once the client can read it)."""
        while True:
            length = int.from_bytes(await self._read_exactly(4), "big")
            if not 8 <= length <= 10_000:
                raise ProtocolError("a start-up packet of an unexpected length")
            payload = await self._read_exactly(length - 4)
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
        parts = payload[4:].split(b"\x00")
        params = {parts[i].decode(errors="replace"): parts[i + 1].decode(errors="replace")
                  for i in range(0, len(parts) - 1, 2) if parts[i]}
        options = [name for name in params if name.startswith("_pq_.")]
        if code != msg.PROTOCOL_3 or options:  # a newer minor version, or protocol options
            await self.send(msg.negotiate_protocol(0, options))
        self.user = params.get("user", "")
        self.database = params.get("database") or self.user or "semantic"
        for name, value in params.items():
            if name not in ("user", "database", "options", "replication"):
                self.settings[name.lower()] = value
        self.settings.update(_options(params.get("options", "")))
        if not await self._authenticate():
            return False
        statuses = {"server_version": self.settings["server_version"],
                    "server_encoding": "UTF8", "client_encoding": "UTF8",
                    "DateStyle": "ISO, MDY", "TimeZone": "UTC", "IntervalStyle": "postgres",
                    "integer_datetimes": "on", "standard_conforming_strings": "on",
                    "is_superuser": "off", "session_authorization": self.user,
                    "application_name": self.settings["application_name"],
                    "default_transaction_read_only": "on", "in_hot_standby": "off"}
        await self.send(msg.authentication_ok(),
                        *(msg.parameter_status(k, v) for k, v in statuses.items()),
                        msg.backend_key(self.pid, self.secret), msg.ready_for_query(b"I"))
        return True

    async def _authenticate(self) -> bool:
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

    def _bind(self, principal: Principal) -> None:
        # the connection's task has its own context: the caller is bound for its lifetime
        # (start() runs in that task, so the binding outlives it)
        bind_principal(principal)
        self.principal = principal

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

    def _parse(self, text: str) -> list[exp.Expression | None]:
        if len(text) > self.listener.max_message:
            raise SqlError("54000", "the statement is too long")
        cleaned = _COLLATE.sub("", _OPERATOR.sub(r"\1", text))
        try:
            # unquoted names are folded to lower case, as PostgreSQL does
            parsed = [normalize_identifiers(s, dialect="postgres") if s is not None else None
                      for s in sqlglot.parse(cleaned, read="postgres")
                      if not isinstance(s, exp.Semicolon)]  # a comment after the last ';'
        except sqlglot.errors.TokenError as exc:
            raise SqlError(SYNTAX_ERROR, f"syntax error: {str(exc)[:300]}") from None
        except sqlglot.errors.ParseError as exc:
            errors = exc.errors[0] if exc.errors else {}
            raise SqlError(SYNTAX_ERROR, f"syntax error: {errors.get('description', exc)}"
                           + (f" at line {errors['line']}, column {errors['col']}"
                              if "line" in errors else "")) from None
        except (sqlglot.errors.SqlglotError, RecursionError) as exc:
            raise SqlError("54001", f"the statement cannot be read: {str(exc)[:300]}"
                           if not isinstance(exc, RecursionError) else
                           "the statement is nested too deeply") from None
        return [s if isinstance(s, exp.Expression) else None for s in parsed]

    def _classify(self, text: str, statement: exp.Expression | None,
                  declared: list[int]) -> Prepared:
        if statement is None:
            return Prepared(text, None, declared, "empty")
        if isinstance(statement, exp.Select | exp.Union | exp.Subquery) or (
                isinstance(statement, exp.Select) and statement.args.get("with")):
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
        prepared = [self._classify(text, statement, declared)
                    for statement in self._parse(text) if statement is not None]
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
            parsed = [s for s in self._parse(text) if s is not None]
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
        parameter_formats = _formats(codes, len(raw))
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
            formats = _formats(portal.formats, len(names))
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
        if prepared.kind == "command" and _first_word(prepared) == "SHOW":
            return (_show_name(prepared),), (TEXT,)
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
        if self.status == b"E" and not (prepared.kind == "command" and _first_word(prepared)
                                        in ("ROLLBACK", "ABORT", "COMMIT", "END")):
            raise SqlError("25P02", "current transaction is aborted, commands ignored until "
                           "end of transaction block")
        if prepared.kind == "empty":
            return Result((), (), ())
        if prepared.kind == "command":
            if _first_word(prepared) in ("DECLARE", "FETCH", "MOVE", "CLOSE"):
                return await self._cursor(prepared)
            return self._command(prepared)
        assert prepared.statement is not None
        if prepared.kind == "catalog":
            answer = await self._catalog_answer(prepared.statement, portal.values)
            formats = _formats(portal.formats, len(answer.names))
            rows = [msg.data_row([encode_value(v, t.oid, f == 1) for v, t, f in
                                  zip(row, answer.types, formats, strict=True)])
                    for row in answer.rows]
            return Result(answer.names, answer.types, formats, rows, f"SELECT {len(rows)}")
        assert prepared.translated is not None
        return await self._model(prepared.translated, portal)

    async def _model(self, translated: Translated, portal: Portal) -> Result:
        outputs = translated.outputs
        formats = _formats(portal.formats, len(outputs))
        bound = bind(translated, portal.values, dt.datetime.now(_zone(self.settings)))
        body = bound.body
        zone = self.settings.get(TIMEZONE_SETTING)
        if zone:  # the statement's own (date_trunc's third argument) comes first
            body.setdefault("timezone", zone)
        runtime = await current_runtime(self.state)
        try:
            query = parse_query(body, self.state.limits.query, runtime.source_name)
        except FieldError as exc:
            raise SqlError("22023", f"{_clause(exc.field)}: {exc.message}") from None
        shape = ("sql", tuple((o.member, o.type.oid, o.part) for o in outputs), formats,
                 bound.strict, bound.empty)

        def render(answer: Answer) -> bytes:
            return _render(answer, outputs, formats, bound.strict, bound.empty)

        self.running = asyncio.current_task()
        self.cancelled = False
        started = time.perf_counter()
        try:
            cached, hit = await serve_answer(self.state, shape, query, render, route="sql")
        except asyncio.CancelledError:
            if not self.cancelled:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            raise SqlError("57014", "canceling statement due to user request") from None
        except SqlError:
            raise
        except SemanticError as exc:
            said = (f"{_clause(exc.field)}: {exc.message}" if isinstance(exc, FieldError)
                    else exc.message)
            raise SqlError(_SQLSTATES.get(exc.code, "42000"), said) from None
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

    def _command(self, prepared: Prepared) -> Result:
        statement = prepared.statement
        word = _first_word(prepared)
        if isinstance(statement, exp.Rollback) and statement.args.get("savepoint"):
            if self.status == b"E":  # ROLLBACK TO SAVEPOINT: the block goes on
                self.status = b"T"
            return Result((), (), (), tag="ROLLBACK")
        if isinstance(statement, exp.Transaction | exp.Commit | exp.Rollback) or \
                word in _TRANSACTION:
            tag = _TRANSACTION.get(word, "BEGIN")
            if isinstance(statement, exp.Commit | exp.Rollback):
                tag = "COMMIT" if isinstance(statement, exp.Commit) else "ROLLBACK"
            if tag == "COMMIT" and self.status == b"E":
                tag = "ROLLBACK"  # a failed block is rolled back, as PostgreSQL says
            self.status = b"T" if tag in ("BEGIN", "START TRANSACTION") else b"I"
            for name in self.cursors:  # a block's cursors end with it
                self.portals.pop(name, None)
            self.cursors.clear()
            return Result((), (), (), tag=tag)
        if isinstance(statement, exp.Set) or word in ("SET", "RESET"):
            self._set(prepared)
            return Result((), (), (), tag=word or "SET")
        if word == "SHOW":
            name = _show_name(prepared)
            if name == "all":
                return Result(("name", "setting", "description"), (TEXT, TEXT, TEXT), (0, 0, 0),
                              [msg.data_row([k.encode(), v.encode(), b""])
                               for k, v in sorted(self.settings.items())], "SHOW")
            value = self.settings.get(name)
            if value is None:
                raise SqlError("42704", f'unrecognized configuration parameter "{name}"')
            return Result((name,), (TEXT,), (0,),
                          [msg.data_row([value.encode()])], "SHOW")
        if word in _NO_OPS:
            return Result((), (), (), tag=_NO_OPS[word])
        if word == "DEALLOCATE":
            return Result((), (), (), tag="DEALLOCATE")
        if word in _WRITES:
            raise SqlError("25006", f"{word} cannot run here: the SQL interface is read-only and "
                           "answers SELECT over the model's tables",
                           hint="the tables: " + ", ".join(self._schema_now()))
        raise SqlError(UNSUPPORTED, f"{word or 'this statement'} is not supported by the SQL "
                       "interface; it answers SELECT over the model's tables (and DECLARE/FETCH "
                       "cursors over them)")

    async def _cursor(self, prepared: Prepared) -> Result:
        """``DECLARE name CURSOR FOR <select>`` (answered at once, kept), ``FETCH [n] FROM
        name`` (the next rows), ``CLOSE name``: server-side cursors as ODBC drivers and
        psycopg2's named cursors use them."""
        text = prepared.statement.sql("postgres") if isinstance(
            prepared.statement, exp.Expression) else prepared.text
        declared = _DECLARE.match(prepared.text.strip().rstrip(";")) or _DECLARE.match(text)
        if declared is not None:
            if self.status != b"T" and not declared.group("hold"):
                raise SqlError("25P01", "DECLARE CURSOR can only be used in transaction blocks")
            inner = await self._prepare_one(declared.group("query"), [])
            if inner.kind not in ("model", "catalog"):
                raise SqlError(UNSUPPORTED, "a cursor is declared for a SELECT")
            name = _unquoted(declared.group("name"))
            if name in self.cursors:
                raise SqlError("42P03", f'cursor "{name}" already exists')
            # a cursor is a portal too (clients describe it by that name)
            self.cursors[name] = self.portals[name] = Portal(
                inner, [], [], await self._result(Portal(inner, [], [])))
            return Result((), (), (), tag="DECLARE CURSOR")
        fetched = _FETCH.match(prepared.text.strip().rstrip(";")) or _FETCH.match(text)
        if fetched is not None:
            name = _unquoted(fetched.group("name"))
            portal = self.cursors.get(name)
            if portal is None or portal.result is None:
                raise SqlError("34000", f'cursor "{name}" does not exist')
            count = fetched.group("count")
            wanted = len(portal.result.rows) if count is None and fetched.group("all") else \
                int(count or 1)
            rows = portal.result.rows[portal.sent:portal.sent + wanted]
            portal.sent += len(rows)
            moved = fetched.group("verb").upper() == "MOVE"
            result = portal.result
            return Result(() if moved else result.names, () if moved else result.types,
                          () if moved else result.formats, [] if moved else rows,
                          f"{'MOVE' if moved else 'FETCH'} {len(rows)}")
        closed = _CLOSE.match(prepared.text.strip().rstrip(";")) or _CLOSE.match(text)
        if closed is not None:
            name = _unquoted(closed.group("name"))
            if name.upper() == "ALL":
                for each in self.cursors:
                    self.portals.pop(each, None)
                self.cursors.clear()
            elif self.cursors.pop(name, None) is None:
                raise SqlError("34000", f'cursor "{name}" does not exist')
            self.portals.pop(name, None)
            return Result((), (), (), tag="CLOSE CURSOR")
        raise SqlError(SYNTAX_ERROR, f"cannot read the cursor statement {prepared.text[:200]!r}")

    def _set(self, prepared: Prepared) -> None:
        statement = prepared.statement
        if isinstance(statement, exp.Set):
            for item in statement.expressions:
                assignment = item.this
                if isinstance(assignment, exp.EQ):
                    name = assignment.this.sql("postgres").strip('"').lower()
                    value = assignment.expression
                    self.settings[name] = value.name if isinstance(
                        value, exp.Literal | exp.Var | exp.Column | exp.Identifier) else \
                        value.sql("postgres")
            return
        words = prepared.text.strip().rstrip(";").split(None, 3)
        if len(words) >= 3 and words[1].upper() == "TIME" and words[2].upper() == "ZONE":
            self.settings["timezone"] = prepared.text.split(None, 3)[-1].strip(" ;'\"")

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
        """A catalog statement answered on a worker thread, within the statement timeout."""
        timeout = self.state.warehouse.limits.query_timeout

        def answer() -> CatalogAnswer:
            return self._catalog_now().answer(statement, values, timeout)

        try:
            return await self.state.dispatcher.offload(answer)
        except CatalogTimeout as exc:
            raise SqlError("57014", str(exc)) from None
        except UnknownFunction as exc:
            raise SqlError("42883", str(exc)) from None
        except UnknownColumn as exc:
            raise SqlError("42703", str(exc)) from None
        except InvalidValue as exc:
            raise SqlError(exc.sqlstate, str(exc)) from None

    def _catalog_now(self) -> Catalog:
        schema = self._schema_now() if self.state.started is not None else {}
        if self._catalog is None or self._catalog[0] is not schema:
            self._catalog = (schema, Catalog(schema, self.user, self.database,
                                             self.settings.get))
        return self._catalog[1]


def _render(answer: Answer, outputs: tuple[Output, ...], formats: tuple[int, ...],
            strict: bool, empty: bool) -> bytes:
    """An answer's rows as DataRows of the statement's columns (none for ``LIMIT 0``); an
    answer cut short by the row limit is an error unless the statement asked for that."""
    if answer.truncated and strict:
        raise SqlError(TOO_MANY_ROWS, f"the answer has more than {answer.plan.query.limit} "
                       "rows; add a LIMIT or narrow it with WHERE")
    if empty:
        return b""
    columns = {name: i for i, name in enumerate(answer.plan.columns)}
    picked = [([_year(v) for v in answer.values[columns[o.member]]] if o.part == "year" else
               answer.values[columns[o.member]], o.type.oid, f == 1)
              for o, f in zip(outputs, formats, strict=True)]
    return b"".join(msg.data_row([encode_value(column[row], oid, binary)
                                  for column, oid, binary in picked])
                    for row in range(answer.count))


#: the part of a statement each field of the query it became comes from
_CLAUSES = (("time_range.from", "the lower bound on the time column"),
            ("time_range.to", "the upper bound on the time column"),
            ("time_range", "the range on the time column"), ("filters", "WHERE or HAVING"),
            ("limit", "LIMIT"), ("offset", "OFFSET"), ("order", "ORDER BY"),
            ("measures", "the select list"), ("dimensions", "the select list or GROUP BY"))


def _clause(field: str | None) -> str:
    """Where in the SQL statement a field of its query comes from.

    >>> _clause("time_range.from"), _clause("filters[2].value"), _clause(None)
    ('the lower bound on the time column', 'WHERE or HAVING', 'the statement')
    """
    return next((said for prefix, said in _CLAUSES if field and field.startswith(prefix)),
                field or "the statement")


def _options(text: str) -> dict[str, str]:
    """Settings of a start-up packet's ``options`` (``-c name=value``, ``--name=value``).

    >>> _options("-c semantic.timezone=Europe/Berlin --search_path=public")
    {'semantic.timezone': 'Europe/Berlin', 'search_path': 'public'}
    """
    found: dict[str, str] = {}
    words = text.split()
    for index, word in enumerate(words):
        if word == "-c" and index + 1 < len(words):
            word = words[index + 1]
        elif word.startswith("-c"):
            word = word[2:]
        elif word.startswith("--"):
            word = word[2:]
        else:
            continue
        name, equals, value = word.partition("=")
        if equals:
            found[name.lower().replace("-", "_")] = value
    return found


def _zone(settings: dict[str, str]) -> ZoneInfo:
    """The session's ``TimeZone``: where now() and current_date are read (UTC if unknown)."""
    try:
        return ZoneInfo(settings.get("timezone") or "UTC")
    except (ValueError, ZoneInfoNotFoundError):
        return ZoneInfo("UTC")


def _year(value: object) -> object:
    return value.year if isinstance(value, dt.date) else value


def _unquoted(name: str) -> str:
    return name[1:-1] if name.startswith('"') else name.lower()


def _first_word(prepared: Prepared) -> str:
    """What kind of command a statement is, as its first keyword (``SHOW``, ``DROP``)."""
    statement = prepared.statement
    if isinstance(statement, exp.Command):
        return str(statement.this).upper()
    if isinstance(statement, exp.Set):
        return "SET"
    if isinstance(statement, exp.Transaction):
        return "BEGIN"
    if statement is None:
        return ""
    if isinstance(statement, exp.Alias | exp.Column):  # LISTEN x, CLOSE x read as names
        found = _FIRST_WORD.match(statement.sql("postgres"))
        return found.group(1).upper() if found else ""
    return statement.key.upper()


#: ``SHOW`` names that differ from the setting they show
_SHOW_ALIASES = {"transaction_isolation_level": "transaction_isolation",
                 "time_zone": "timezone"}


def _show_name(prepared: Prepared) -> str:
    """The setting a ``SHOW`` names, as the column of its answer is named."""
    statement = prepared.statement
    text = prepared.text.strip().rstrip(";").split(None, 1)[-1]
    if isinstance(statement, exp.Command) and statement.expression is not None:
        text = str(statement.expression.name if isinstance(statement.expression, exp.Literal)
                   else statement.expression.sql("postgres"))
    name = "_".join(text.strip().strip('"').lower().split())
    return _SHOW_ALIASES.get(name, name)
