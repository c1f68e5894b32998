"""Logging, configured in one place: one handler on the root logger, one format for every
line (ours, uvicorn's, libraries'), plain text by default or JSON objects
(``SEMANTIC_LOG_FORMAT=json``), each line carrying the id of the request it belongs to.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

from server.http.request_ids import current_request_id

LOG_FORMATS = ("plain", "json")

#: attribute of a log record holding structured fields (``extra={"fields": {...}}``): JSON
#: lines carry them as keys, plain lines already say them in the message
FIELDS = "fields"


class RequestIdFilter(logging.Filter):
    """Stamps every record with the id of the request being handled (None outside one).

    Handlers run in worker threads with a copy of the request's context, so the id set by
    the request-id middleware is seen by every line logged while answering it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        return True


def _timestamp(record: logging.LogRecord) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}Z"


class PlainFormatter(logging.Formatter):
    """``2026-03-01T10:00:00.123Z INFO server.access [req=ab12cd]: message``."""

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None)
        where = f" [req={request_id}]" if request_id else ""
        line = (f"{_timestamp(record)} {record.levelname} {record.name}{where}: "
                f"{record.getMessage()}")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``message``,
    ``request_id`` and the record's structured fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        fields = getattr(record, FIELDS, None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to ``sys.stderr`` as it is when a line is logged, not when the handler was made
    (the command line runs inside test processes that swap it)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def make_handler(fmt: str, stream: TextIO | None = None) -> logging.Handler:
    if fmt not in LOG_FORMATS:
        raise ValueError(f"unknown log format '{fmt}'; use one of {', '.join(LOG_FORMATS)}")
    handler = StderrHandler() if stream is None else logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else PlainFormatter())
    return handler


def configure_logging(fmt: str = "plain", level: int | str = logging.INFO,
                      stream: TextIO | None = None) -> None:
    """Route every logger through one handler in format ``fmt`` (plain or json).

    uvicorn's loggers propagate to it; its access log is switched off because the request
    log of ``server.observability.requests`` replaces it (with latency, tables and rows).
    """
    # Our formats use no caller, thread or process: skip gathering them for every record
    # (https://docs.python.org/3/howto/logging.html#optimization); the request line is on
    # the hot path.
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(make_handler(fmt, stream))
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # While ClickHouse is away their warnings repeat on every attempt what the warehouse logs
    # once per change of state.
    for name in ("clickhouse_connect", "urllib3.connectionpool"):
        logging.getLogger(name).setLevel(logging.ERROR)
