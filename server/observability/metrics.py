"""Prometheus metrics (served at ``/metrics`` by ``server.api.metrics``).

Counters and histograms live in one process-wide registry and are updated where things
happen (requests, ClickHouse statements, answers, ingestion, backfills): each update is a
prometheus-client child lookup and an add, nothing else; within a request, a query's and an
answer's once the response is sent (``server.observability.requests.after_response``).
What describes the current state (rollup readiness and size, age of the newest data) is read
when scraped, by ``server.observability.collector``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

logger = logging.getLogger(__name__)

#: one server per process, so one registry per process
REGISTRY = CollectorRegistry(auto_describe=False)

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0, 30.0)

REQUESTS = Counter("semantic_http_requests", "HTTP requests answered, by method, route "
                   "template and status", ["method", "route", "status"], registry=REGISTRY)
REQUEST_SECONDS = Histogram("semantic_http_request_duration_seconds", "Time to answer an HTTP "
                            "request, by method and route template", ["method", "route"],
                            buckets=_LATENCY_BUCKETS, registry=REGISTRY)
ANSWERS = Counter("semantic_answers", "Query answers (query API and endpoints) by source and "
                  "the rollup serving most of the data; rollup=\"\" is the raw table",
                  ["source", "rollup"], registry=REGISTRY)
RAW_FALLBACKS = Counter("semantic_raw_fallbacks", "Answers read from the raw table alone "
                        "although rollups were allowed (no rollup could serve them)",
                        ["source"], registry=REGISTRY)
CLICKHOUSE_SECONDS = Histogram("semantic_clickhouse_query_duration_seconds", "Time of "
                               "statements sent to ClickHouse, by kind (query, command, "
                               "insert)", ["kind"], buckets=_LATENCY_BUCKETS, registry=REGISTRY)
CLICKHOUSE_READ_ROWS = Counter("semantic_clickhouse_read_rows", "Rows ClickHouse reports "
                               "having read", registry=REGISTRY)
CLICKHOUSE_READ_BYTES = Counter("semantic_clickhouse_read_bytes", "Uncompressed bytes "
                                "ClickHouse reports having read", registry=REGISTRY)
CLICKHOUSE_ERRORS = Counter("semantic_clickhouse_errors", "Statements that failed, by error "
                            "code (warehouse_unavailable, warehouse_error)", ["code"],
                            registry=REGISTRY)
INGESTED_ROWS = Counter("semantic_ingested_rows", "Rows inserted through the service, by "
                        "source", ["source"], registry=REGISTRY)
BACKFILL_ROWS = Counter("semantic_backfill_rows", "Rows backfilled into rollup tables by "
                        "apply in this process, by rollup table", ["table"], registry=REGISTRY)
BACKFILL_PROGRESS = Gauge("semantic_backfill_progress_ratio", "Share of the snapshot "
                          "backfilled so far (1 when done), by rollup table", ["table"],
                          registry=REGISTRY)


#: (source, rollup) -> the answer counter's child (model names: bounded)
_ANSWER_CHILDREN: dict[tuple[str, str], Any] = {}


def count_answer(source: str, rollup: str | None, force_raw: bool) -> None:
    """Count an answer served by ``rollup`` (None: the raw table alone)."""
    key = (source, rollup or "")
    child = _ANSWER_CHILDREN.get(key)
    if child is None:
        child = _ANSWER_CHILDREN[key] = ANSWERS.labels(*key)
    child.inc()
    if rollup is None and not force_raw:
        RAW_FALLBACKS.labels(source).inc()


@dataclass(frozen=True, slots=True)
class QueryStats:
    """What ClickHouse reports for one statement; None where it reported nothing."""

    read_rows: int | None
    read_bytes: int | None
    elapsed_ms: float | None
    #: the answer was cut from a kept answer: ClickHouse read nothing for it
    from_cache: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"rows_read": self.read_rows, "bytes_read": self.read_bytes,
                "elapsed_ms": round(self.elapsed_ms, 3) if self.elapsed_ms is not None
                else None, "from_cache": self.from_cache}


#: what an answer cut from a kept answer read: nothing, from the cache
FROM_CACHE = QueryStats(0, 0, 0.0, from_cache=True)


def _integer(summary: Mapping[str, Any], key: str) -> int | None:
    value = summary.get(key)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


#: the histogram's child per statement kind (a few fixed kinds; the label lookup locks)
_TIMERS: dict[str, Any] = {}


def record_statement(kind: str, seconds: float, summary: Mapping[str, Any] | None) -> QueryStats:
    """Count a statement ClickHouse answered (``count_statement``) and return what it read
    (``statement_stats``)."""
    stats = statement_stats(summary)
    count_statement(kind, seconds, stats)
    return stats


def statement_stats(summary: Mapping[str, Any] | None) -> QueryStats:
    """What a statement read: ``summary`` is clickhouse-connect's ``QueryResult.summary``
    (the ``X-ClickHouse-Summary`` header over HTTP, the result's own statistics in chDB):
    ``read_rows``, ``read_bytes``, ``elapsed_ns`` as strings or numbers."""
    summary = summary or {}
    rows, size = _integer(summary, "read_rows"), _integer(summary, "read_bytes")
    elapsed = _integer(summary, "elapsed_ns")
    return QueryStats(rows, size, elapsed / 1e6 if elapsed is not None else None)


def count_statement(kind: str, seconds: float, stats: QueryStats) -> None:
    """The statement metrics: its time by kind, the rows and bytes it read."""
    timer = _TIMERS.get(kind)
    if timer is None:
        timer = _TIMERS[kind] = CLICKHOUSE_SECONDS.labels(kind)
    timer.observe(seconds)
    if stats.read_rows:
        CLICKHOUSE_READ_ROWS.inc(stats.read_rows)
    if stats.read_bytes:
        CLICKHOUSE_READ_BYTES.inc(stats.read_bytes)


class WarehouseHealth:
    """Whether ClickHouse answers; logs each change of state once, not once per request.

    The first state is not logged: whoever made the first statement reports its failure (the
    server when it starts degraded, a command with its error message).
    """

    def __init__(self, location: str) -> None:
        self.location = location
        self.up: bool | None = None
        self._lock = threading.Lock()

    def reached(self) -> None:
        if self.up is not True:  # the common case costs one comparison
            self._change(True, "")

    def unreachable(self, message: str) -> None:
        CLICKHOUSE_ERRORS.labels("warehouse_unavailable").inc()
        if self.up is not False:
            self._change(False, message)

    def _change(self, up: bool, message: str) -> None:
        with self._lock:
            if self.up is up:
                return
            was, self.up = self.up, up
        if was is None:
            return
        if not up:
            logger.error("ClickHouse at %s is unavailable (answering 503 until it is back): %s",
                         self.location, message)
        else:
            logger.warning("ClickHouse at %s is available again", self.location)
