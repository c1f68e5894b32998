"""The request log and request metrics: one log line per request (method, path, status,
latency, tables read, rows, bytes read) and the request counters and latency histogram.

What a request did is gathered on a small ``RequestStats`` object bound to the request's
context: the warehouse adds what ClickHouse reports for each statement (``note_statement``),
the query handlers the tables and rows of their answer (``note_answer``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

from server.http.request_ids import current_request_id
from server.http.serialize import encode
from server.observability.logs import FIELDS
from server.observability.metrics import REQUEST_SECONDS, REQUESTS, QueryStats

logger = logging.getLogger("server.access")

#: route label of requests no route matched (keeps the label's values bounded)
UNMATCHED = "unmatched"


class RequestStats:
    """What one request did; filled in while it is answered."""

    __slots__ = ("after", "answered", "cut", "read_bytes", "read_rows", "route", "rows",
                 "statements", "tables")

    def __init__(self) -> None:
        self.route: str | None = None
        self.tables: Sequence[str] = ()
        self.rows: int | None = None
        self.read_rows = 0
        self.read_bytes = 0
        self.statements = 0
        #: stopped when the shutdown grace period ended
        self.cut = False
        #: metric updates made once the request has been answered (``after_response``)
        self.after: list[tuple[Callable[..., None], tuple[Any, ...]]] = []
        #: set when those have been made: a worker thread still running the request's
        #: statement (a request cut at shutdown) makes its own at once
        self.answered = False


_current: ContextVar[RequestStats | None] = ContextVar("request_stats", default=None)


def note_statement(stats: QueryStats) -> None:
    """Add a ClickHouse statement's figures to the request being answered, if any."""
    current = _current.get()
    if current is not None:
        current.statements += 1
        current.read_rows += stats.read_rows or 0
        current.read_bytes += stats.read_bytes or 0


def after_response(update: Callable[..., None], *args: Any) -> None:
    """``update(*args)`` (a metric's update) once the request being answered has been
    answered, or now outside a request: work its client need not wait for (done right after
    a query, on caches the query has just filled, it costs several times more too)."""
    current = _current.get()
    if current is None or current.answered:
        update(*args)
    else:
        current.after.append((update, args))


def note_answer(tables: Sequence[str], rows: int | None, route: str | None = None) -> None:
    """Record the tables an answer read and its row count (None: not counted, e.g. an answer
    ClickHouse formatted); ``route`` replaces the route template (the generated endpoints
    share one catch-all route)."""
    current = _current.get()
    if current is not None:
        current.tables, current.rows = tables, rows
        if route is not None:
            current.route = route


async def _answer_cut(send: Send) -> None:
    """A 503 for a request cut at shutdown, if the connection still takes it."""
    body = encode({"error": {"code": "shutting_down", "field": None, "request_id":
                             current_request_id(), "message": "the server is shutting down; "
                             "this request was stopped before it finished: retry it"}})
    try:
        await send({"type": "http.response.start", "status": 503, "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body, "more_body": False})
    except (OSError, RuntimeError):  # the connection is gone already
        pass


def _log(method: str, path: str, status: int, seconds: float, stats: RequestStats) -> None:
    # 503 is the warehouse being away, which the warehouse logs once per change of state
    level = logging.WARNING if status >= 500 and status != 503 else logging.INFO
    if not logger.isEnabledFor(level):  # e.g. --log-level warning: build nothing
        return
    latency_ms = round(seconds * 1000, 3)
    parts = [f"{method} {path} {status} {latency_ms:.1f} ms"]
    if stats.cut:
        parts.append("cut at shutdown")
    if stats.tables:
        parts.append(f"tables={','.join(stats.tables)}")
    if stats.rows is not None:
        parts.append(f"rows={stats.rows}")
    if stats.statements:
        parts.append(f"read_rows={stats.read_rows} read_bytes={stats.read_bytes}")
    fields = {"method": method, "path": path, "status": status, "latency_ms": latency_ms,
              "tables": list(stats.tables), "rows": stats.rows,
              "read_rows": stats.read_rows, "read_bytes": stats.read_bytes}
    logger.log(level, " ".join(parts), extra={FIELDS: fields})


#: label sets seen -> their metric children (the label lookup locks and hashes; bounded, since
#: methods come from callers)
_CHILDREN: dict[tuple[str, str, int], tuple[Any, Any]] = {}
_MAX_CHILDREN = 4096


def _children(method: str, route: str, status: int) -> tuple[Any, Any]:
    key = (method, route, status)
    found = _CHILDREN.get(key)
    if found is None:
        found = (REQUESTS.labels(method, route, str(status)),
                 REQUEST_SECONDS.labels(method, route))
        if len(_CHILDREN) < _MAX_CHILDREN:
            _CHILDREN[key] = found
    return found


class Observed:
    """One HTTP request observed from its start to ``finish``: its ``RequestStats`` bound to
    its context, its status (500 until a response starts) and time, then its count, latency
    and log line."""

    __slots__ = ("responded", "scope", "started", "stats", "status", "token")

    def __init__(self, scope: HTTPScope) -> None:
        self.scope = scope
        self.stats = RequestStats()
        self.token = _current.set(self.stats)
        self.started = time.perf_counter()
        self.status = 500
        #: whether the response has started (a request cut later cannot be answered)
        self.responded = False

    def responds(self, status: int) -> None:
        self.status, self.responded = status, True

    async def cut(self, send: Send) -> None:
        """uvicorn cancels the requests still running when the shutdown grace period ends:
        the request is cut (503, nothing half-done: an insert is one statement), not failed,
        so no traceback and no 500."""
        self.status = 503
        self.stats.cut = True
        if not self.responded:
            await _answer_cut(send)

    def finish(self) -> None:
        _current.reset(self.token)
        seconds = time.perf_counter() - self.started
        scope, stats = self.scope, self.stats
        stats.answered = True
        for update, args in stats.after:
            update(*args)
        method = scope.get("method", "")
        route = stats.route or scope.get("path_template") or UNMATCHED
        count, latency = _children(method, route, self.status)
        count.inc()
        latency.observe(seconds)
        _log(method, scope.get("path", ""), self.status, seconds, stats)


def observe_requests(app: ASGIApp) -> ASGIApp:
    """ASGI middleware around the whole app (unrouted requests included): counts and times
    every HTTP request and logs its line. Wrap it inside the request-id middleware so the
    line carries the request id."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        observed = Observed(scope)

        async def send_with_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                observed.responds(message["status"])
            await send(message)

        try:
            await app(scope, receive, send_with_status)
        except asyncio.CancelledError:
            await observed.cut(send)
        finally:
            observed.finish()

    return middleware
