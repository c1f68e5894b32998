"""What a statement over the model's tables is answered with: its rows as DataRows of the
statement's columns, the session's zones, and the errors of the layers below as SQLSTATEs
naming the clause of the statement they come from."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlglot import exp

from engine.query.fields import parse_query
from engine.query.request import Query
from semantic.errors import FieldError, SemanticError
from server.runtime.cache import Cached
from server.runtime.compiled import Answer
from server.runtime.state import State
from server.service.answers import current_runtime, serve_answer
from server.sql import messages as msg
from server.sql.catalog import (
    Catalog,
    CatalogAnswer,
    CatalogTimeout,
    InvalidValue,
    UnknownColumn,
    UnknownFunction,
)
from server.sql.errors import TOO_MANY_ROWS, SqlError
from server.sql.translate import Bound, Output, Translated, bind
from server.sql.types import encode_value

#: the session setting that chooses the zone of buckets and time literals (``/v1/query``'s
#: ``timezone``): ``SET semantic.timezone = 'Europe/Berlin'``. PostgreSQL's own ``TimeZone``
#: does not change them, as it does not change ``date_trunc`` of a timestamp without zone.
TIMEZONE_SETTING = "semantic.timezone"
#: errors of the layers below, by ``SemanticError.code``, as SQLSTATEs
SQLSTATES = {"busy": "53300", "query_timeout": "57014", "warehouse_timeout": "57014",
              "warehouse_unavailable": "57P03", "query_too_large": "54000",
              "forbidden": "42501", "invalid_query": "22023"}


def render_rows(answer: Answer, outputs: tuple[Output, ...], formats: tuple[int, ...],
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


def clause(field: str | None) -> str:
    """Where in the SQL statement a field of its query comes from.

    >>> clause("time_range.from"), clause("filters[2].value"), clause(None)
    ('the lower bound on the time column', 'WHERE or HAVING', 'the statement')
    """
    return next((said for prefix, said in _CLAUSES if field and field.startswith(prefix)),
                field or "the statement")


def session_zone(settings: dict[str, str]) -> ZoneInfo:
    """The session's ``TimeZone``: where now() and current_date are read (UTC if unknown)."""
    try:
        return ZoneInfo(settings.get("timezone") or "UTC")
    except (ValueError, ZoneInfoNotFoundError):
        return ZoneInfo("UTC")


def _year(value: object) -> object:
    return value.year if isinstance(value, dt.date) else value


async def read_query(state: State, translated: Translated, values: list[Any],
                     settings: dict[str, str]) -> tuple[Query, Bound]:
    """The query of a translated statement with its parameters bound, read as ``/v1/query``
    reads a body (its errors name the clause they come from)."""
    bound = bind(translated, values, dt.datetime.now(session_zone(settings)))
    zone = settings.get(TIMEZONE_SETTING)
    if zone:  # the statement's own (date_trunc's third argument) comes first
        bound.body.setdefault("timezone", zone)
    runtime = await current_runtime(state)
    try:
        return parse_query(bound.body, state.limits.query, runtime.source_name), bound
    except FieldError as exc:
        raise SqlError("22023", f"{clause(exc.field)}: {exc.message}") from None


async def answer_query(state: State, query: Query, bound: Bound, outputs: tuple[Output, ...],
                       formats: tuple[int, ...]) -> tuple[Cached, bool]:
    """The statement's rows, encoded, from the service layer (its result cache, under a
    shape of the SQL interface's own), and whether they came from the cache."""
    shape = ("sql", tuple((o.member, o.type.oid, o.part) for o in outputs), formats,
             bound.strict, bound.empty)

    def render(answer: Answer) -> bytes:
        return render_rows(answer, outputs, formats, bound.strict, bound.empty)

    try:
        return await serve_answer(state, shape, query, render, route="sql")
    except SqlError:
        raise
    except SemanticError as exc:
        said = (f"{clause(exc.field)}: {exc.message}" if isinstance(exc, FieldError)
                else exc.message)
        raise SqlError(SQLSTATES.get(exc.code, "42000"), said) from None


async def catalog_answer(state: State, catalog: Callable[[], Catalog],
                         statement: exp.Expression, values: Sequence[object]) -> CatalogAnswer:
    """A catalog statement answered on a worker thread, within the statement timeout."""
    timeout = state.warehouse.limits.query_timeout

    def answer() -> CatalogAnswer:
        return catalog().answer(statement, values, timeout)

    try:
        return await state.dispatcher.offload(answer)
    except CatalogTimeout as exc:
        raise SqlError("57014", str(exc)) from None
    except UnknownFunction as exc:
        raise SqlError("42883", str(exc)) from None
    except UnknownColumn as exc:
        raise SqlError("42703", str(exc)) from None
    except InvalidValue as exc:
        raise SqlError(exc.sqlstate, str(exc)) from None

