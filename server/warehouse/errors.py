"""Errors of the warehouse, in our own words: a failure to reach ClickHouse (never the
driver's text, which goes to the debug log) or an error ClickHouse answered with."""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Iterable, Iterator

from urllib3.exceptions import (
    ConnectTimeoutError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from semantic.errors import SemanticError
from server.settings import OperatingLimits
from server.warehouse.availability import WarehouseError, WarehouseUnavailable

logger = logging.getLogger(__name__)


class EngineInUse(WarehouseUnavailable):
    """Another process holds the embedded engine's data directory (not an outage: the
    command says so and stops)."""


class WarehouseTimeout(WarehouseUnavailable):
    """ClickHouse accepted the connection but did not answer within the read timeout."""

    code = "warehouse_timeout"
    status = 504


class WarehouseBusy(WarehouseUnavailable):
    """Every client is running a query and none came free within the queue timeout."""

    code = "busy"


class QueryTimeout(SemanticError):
    """ClickHouse stopped the query at ``max_execution_time``."""

    code = "query_timeout"
    status = 504


class QueryTooLarge(SemanticError):
    """ClickHouse stopped the query at ``max_memory_usage``."""

    code = "query_too_large"
    status = 422


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """An exception, its causes and contexts, and urllib3's ``reason``s, each once."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        reason = getattr(item, "reason", None)
        todo += [item.__cause__, item.__context__,
                 reason if isinstance(reason, BaseException) else None]


def error_code(exc: BaseException) -> int | None:
    match = re.search(r"Code: (\d+)", str(exc))
    return int(match.group(1)) if match else None


def transport_failure(exc: BaseException, location: str, limits: OperatingLimits,
                      read_timeout: float, embedded: bool = False,
                      connecting: bool = False) -> WarehouseUnavailable:
    """Our own words for a failure to talk to ClickHouse (never the driver's text, which
    goes to the debug log)."""
    logger.debug("talking to ClickHouse at %s failed", location, exc_info=exc)
    chain = list(_chain(exc))
    where = f"ClickHouse at {location}"
    if any(isinstance(e, ReadTimeoutError) for e in chain):
        return WarehouseTimeout(f"{where} did not answer within {read_timeout:g} s")
    if any(isinstance(e, NameResolutionError | socket.gaierror) for e in chain):
        return WarehouseUnavailable(f"{where} is unavailable: its host name does not "
                                    "resolve")
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return WarehouseUnavailable(f"{where} is unavailable: connection refused")
    if any(isinstance(e, NewConnectionError) for e in chain):
        return WarehouseUnavailable(f"{where} is unavailable: cannot connect")
    if any(isinstance(e, ConnectTimeoutError) for e in chain):
        return WarehouseUnavailable(f"{where} is unavailable: no connection within "
                                    f"{limits.connect_timeout:g} s "
                                    "(SEMANTIC_CONNECT_TIMEOUT)")
    if any(isinstance(e, ConnectionError | ProtocolError) for e in chain):
        return WarehouseUnavailable(f"{where} is unavailable: the connection was closed "
                                    "before it answered")
    if connecting:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if embedded and first:  # chDB's own start-up errors are about local files
            return WarehouseUnavailable(f"cannot open {location}: {first}")
        return WarehouseUnavailable(f"cannot connect to {where}")
    return WarehouseUnavailable(f"{where} is unavailable")


def database_failure(exc: BaseException, limits: OperatingLimits, what: str,
                     sql: str) -> SemanticError:
    """Our error for an error ClickHouse answered with: the time and memory limits by name,
    anything else as it came (``WarehouseError``)."""
    code = error_code(exc)
    if code in (159, 160):  # TIMEOUT_EXCEEDED, TOO_SLOW
        return QueryTimeout(f"the query would run longer than {limits.query_timeout:g} s "
                            "(ClickHouse max_execution_time, set by "
                            "SEMANTIC_QUERY_TIMEOUT) and was stopped; narrow it (a "
                            "shorter time range, fewer dimensions or filter values)")
    if code == 241:  # MEMORY_LIMIT_EXCEEDED
        return QueryTooLarge(f"the query needs more than {limits.query_max_memory:,} bytes "
                             "of memory (ClickHouse max_memory_usage, set by "
                             "SEMANTIC_QUERY_MAX_MEMORY) and was stopped; narrow it")
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
    return WarehouseError(f"ClickHouse rejected {what}: {message}", sql)


#: the response header in which a ClickHouse server (25.11 and later) names the tag of an
#: exception it writes into a response already under way
EXCEPTION_TAG_HEADER = "X-ClickHouse-Exception-Tag"


def cut_at_exception(chunks: Iterable[bytes], tag: str | None) -> Iterator[bytes]:
    r"""The chunks of a streamed answer up to an exception block the server wrote into it
    (``__exception__\r\n<tag>...``), where ``WarehouseError`` is raised instead: a server that
    fails after sending its headers can only say so in the body, which must not pass for
    data. The last bytes of each chunk are held back until the next, so a marker split
    between two chunks is found too.

    >>> b"".join(cut_at_exception([b"1\n2", b"\n3\n"], "t0"))
    b'1\n2\n3\n'
    >>> list(cut_at_exception([b"1\n2\n__excep", b"tion__\r\nt0\r\nCode: 159"],
    ...                       "t0"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    server.warehouse.availability.WarehouseError: ClickHouse failed while sending the answer: ...
    """
    if not tag:
        yield from chunks
        return
    marker = b"__exception__\r\n" + tag.encode()
    keep = len(marker) - 1
    carry = b""
    for chunk in chunks:
        data = carry + chunk
        found = data.find(marker)
        if found != -1:
            text = data[found + len(marker):].decode(errors="replace").strip()
            raise WarehouseError("ClickHouse failed while sending the answer: "
                                 + (text.splitlines()[0] if text else "(no message)"))
        carry = data[-keep:]
        if len(data) > keep:
            yield data[:-keep]
    if carry:
        yield carry
