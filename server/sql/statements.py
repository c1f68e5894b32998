"""Statements of the SQL interface before and after they run, without I/O: parsing (sqlglot,
``postgres``, with the rewrites psql's catalog queries need), the prepared statement a text
becomes, portals and results, and the listener-wide cache of parsed statements."""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers

from server.sql.errors import SYNTAX_ERROR, SqlError
from server.sql.translate import MAX_PARAMETERS, Translated, parameter_types
from server.sql.types import BY_OID, TEXT, PgType


class _CommandFallback(logging.Filter):
    """sqlglot warns when it reads a statement as a plain command (``SHOW ...``,
    ``SAVEPOINT ...``): clients send those all the time, and they are answered here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Falling back to parsing as a 'Command'" not in record.getMessage()


logging.getLogger("sqlglot").addFilter(_CommandFallback())

#: statements up to this long are kept parsed and translated (longer ones are parsed on a
#: worker thread each time)
CACHED_TEXT = 16 * 1024
_OPERATOR = re.compile(r"OPERATOR\s*\(\s*pg_catalog\s*\.\s*([~!*<>=]+)\s*\)", re.IGNORECASE)
_COLLATE = re.compile(r"COLLATE\s+pg_catalog\s*\.\s*\"?default\"?", re.IGNORECASE)
_FIRST_WORD = re.compile(r"^\s*([A-Za-z]+)")


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


def result_formats(codes: Sequence[int], count: int) -> tuple[int, ...]:
    if any(code not in (0, 1) for code in codes):
        raise SqlError("08P01", "format codes are 0 (text) or 1 (binary)")
    if not codes:
        return (0,) * count
    if len(codes) == 1:
        return (codes[0],) * count
    if len(codes) != count:
        raise SqlError("08P01", f"{len(codes)} result format codes for {count} columns")
    return tuple(codes)


def parse_statements(text: str, max_length: int) -> list[exp.Expression | None]:
    """The statements of ``text`` (unquoted names folded to lower case, as PostgreSQL
    does); a text that cannot be read is a ``SqlError``."""
    if len(text) > max_length:
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


class StatementCache:
    """Statements parsed and translated, by the caller's view of the model and their text
    (least recently used first out)."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self.entries: OrderedDict[Hashable, list[Prepared]] = OrderedDict()

    def get(self, key: Hashable) -> list[Prepared] | None:
        found = self.entries.get(key)
        if found is not None:
            self.entries.move_to_end(key)
        return found

    def put(self, key: Hashable, prepared: list[Prepared]) -> None:
        self.entries[key] = prepared
        if len(self.entries) > self.size:
            self.entries.popitem(last=False)


def unquoted(name: str) -> str:
    return name[1:-1] if name.startswith('"') else name.lower()


def first_word(prepared: Prepared) -> str:
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


def startup_settings(text: str) -> dict[str, str]:
    """Settings of a start-up packet's ``options`` (``-c name=value``, ``--name=value``).

    >>> startup_settings("-c semantic.timezone=Europe/Berlin --search_path=public")
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


#: ``SHOW`` names that differ from the setting they show
_SHOW_ALIASES = {"transaction_isolation_level": "transaction_isolation",
                 "time_zone": "timezone"}


def show_name(prepared: Prepared) -> str:
    """The setting a ``SHOW`` names, as the column of its answer is named."""
    statement = prepared.statement
    text = prepared.text.strip().rstrip(";").split(None, 1)[-1]
    if isinstance(statement, exp.Command) and statement.expression is not None:
        text = str(statement.expression.name if isinstance(statement.expression, exp.Literal)
                   else statement.expression.sql("postgres"))
    name = "_".join(text.strip().strip('"').lower().split())
    return _SHOW_ALIASES.get(name, name)
