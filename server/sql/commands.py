"""The session statements of the SQL interface: transactions (a read-only session: nothing is
written), ``SET``/``RESET``/``SHOW``, statements accepted as no-ops, and server-side cursors
(``DECLARE``/``FETCH``/``MOVE``/``CLOSE``). ``Commands`` is mixed into the connection, whose
state (``Session``) it reads and changes."""

from __future__ import annotations

import re
from typing import Protocol

from sqlglot import exp

from server.sql import messages as msg
from server.sql.errors import SYNTAX_ERROR, UNSUPPORTED, SqlError
from server.sql.schema import Schema
from server.sql.statements import Portal, Prepared, Result, first_word, show_name, unquoted
from server.sql.types import TEXT

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


class Session(Protocol):
    """What the session statements read and change of a connection."""

    status: bytes
    settings: dict[str, str]
    cursors: dict[str, Portal]
    portals: dict[str, Portal]

    def _schema_now(self) -> Schema: ...

    async def _prepare_one(self, text: str, declared: list[int]) -> Prepared: ...

    async def _result(self, portal: Portal) -> Result: ...

    def _set(self, prepared: Prepared) -> None: ...


class Commands:
    """The session statements, as methods of the connection."""

    def _command(self: Session, prepared: Prepared) -> Result:
        statement = prepared.statement
        word = first_word(prepared)
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
            name = show_name(prepared)
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

    async def _cursor(self: Session, prepared: Prepared) -> Result:
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
            name = unquoted(declared.group("name"))
            if name in self.cursors:
                raise SqlError("42P03", f'cursor "{name}" already exists')
            # a cursor is a portal too (clients describe it by that name)
            self.cursors[name] = self.portals[name] = Portal(
                inner, [], [], await self._result(Portal(inner, [], [])))
            return Result((), (), (), tag="DECLARE CURSOR")
        fetched = _FETCH.match(prepared.text.strip().rstrip(";")) or _FETCH.match(text)
        if fetched is not None:
            name = unquoted(fetched.group("name"))
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
            name = unquoted(closed.group("name"))
            if name.upper() == "ALL":
                for each in self.cursors:
                    self.portals.pop(each, None)
                self.cursors.clear()
            elif self.cursors.pop(name, None) is None:
                raise SqlError("34000", f'cursor "{name}" does not exist')
            self.portals.pop(name, None)
            return Result((), (), (), tag="CLOSE CURSOR")
        raise SqlError(SYNTAX_ERROR, f"cannot read the cursor statement {prepared.text[:200]!r}")

    def _set(self: Session, prepared: Prepared) -> None:
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
