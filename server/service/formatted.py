"""Answers in CSV, Parquet or Arrow, formatted by ClickHouse, for ``/v1/query`` and the
generated endpoints.

The query is planned (and restricted by row-level security) exactly as for JSON; its serving
statement is wrapped so the columns are the JSON answer's (``engine.serving.output``) and ClickHouse
writes the bytes. A small answer (up to ``CACHEABLE_BYTES``) is read whole before the response
starts and kept in the result cache under its format, at the data version it was computed at
(so never stale); a larger one is sent as it is read, chunk by chunk, and not cached.
Errors before the first bytes are sent are our usual JSON errors; a failure after that (the
query time limit, ClickHouse going away) ends the response early without its terminating
chunk, so a client never takes a cut answer for a whole one.
"""

from __future__ import annotations

import contextvars
import csv
import io
import logging
import queue
import threading
from collections.abc import AsyncIterator, Generator, Hashable, Sequence

from anyio import to_thread
from litestar import Response
from litestar.response import Stream

from engine.query.request import Query
from engine.serving.output import answer_statement
from server.http.formats import CSV_FORMAT, Format, download_name
from server.http.request_ids import current_request_id
from server.http.responses import TABLE_HEADER
from server.observability.metrics import count_answer
from server.observability.requests import note_answer
from server.runtime.cache import Cached
from server.runtime.state import State
from server.service.answers import CACHE_HEADER, current_runtime

logger = logging.getLogger(__name__)

#: chunks of an answer being read from ClickHouse (closing it gives the client back)
Chunks = Generator[bytes, None, None]

#: formatted answers up to this size are read whole, cached and sent with a length; larger
#: ones are streamed
CACHEABLE_BYTES = 1024 * 1024
#: ClickHouse settings per format: CSV nulls as empty fields (not ``\N``); Arrow buffers
#: uncompressed, which every Arrow reader can read (Arrow JS cannot read LZ4 buffers)
FORMAT_SETTINGS: dict[str, dict[str, object]] = {
    "csv": {"format_csv_null_representation": ""},
    "arrow": {"output_format_arrow_compression_method": "none"},
}


def csv_header(names: Sequence[str]) -> bytes:
    r"""The header line ClickHouse's ``CSVWithNames`` writes: every name quoted.

    >>> csv_header(["region", 'x"y'])
    b'"region","x""y"\n'
    """
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n").writerow(names)
    return out.getvalue().encode()


def read_head(chunks: Chunks, head: list[bytes]) -> Chunks | None:
    """Read ``chunks`` into ``head`` up to ``CACHEABLE_BYTES``: None if that was all of it,
    else the rest, still open."""
    size = sum(len(chunk) for chunk in head)
    for chunk in chunks:
        head.append(chunk)
        size += len(chunk)
        if size > CACHEABLE_BYTES:
            return chunks
    return None


def read_ahead(rest: Chunks) -> queue.SimpleQueue[bytes | Exception | None]:
    """The rest of an answer, read from ClickHouse on a thread of its own as fast as it comes
    (then the client goes back to the pool), whatever pace the caller downloads it at: a slow
    reader holds memory (at most the answer, which the row limit bounds), not a connection.
    The queue ends with None, or with the error that cut the answer short."""
    chunks: queue.SimpleQueue[bytes | Exception | None] = queue.SimpleQueue()

    def drain() -> None:
        try:
            for chunk in rest:
                chunks.put(chunk)
        except Exception as exc:  # noqa: BLE001 - handed to the response, which ends cut
            chunks.put(exc)
        else:
            chunks.put(None)
        finally:
            rest.close()

    context = contextvars.copy_context()  # the request's id and statistics
    threading.Thread(target=context.run, args=(drain,), name="answer-reader",
                     daemon=True).start()
    return chunks


async def _rest(head: list[bytes],
                chunks: queue.SimpleQueue[bytes | Exception | None]) -> AsyncIterator[bytes]:
    sent = 0
    for chunk in head:
        sent += len(chunk)
        yield chunk
    while (item := await to_thread.run_sync(chunks.get)) is not None:
        if isinstance(item, Exception):
            logger.warning("request %s: the answer stream failed after %d bytes: %s",
                           current_request_id(), sent, getattr(item, "message", item))
            raise item
        sent += len(item)
        yield item


async def serve_formatted(state: State, shape: Hashable, query: Query,
                          answer_format: Format, download: str,
                          fields: Sequence[tuple[str, str]] | None = None,
                          route: str | None = None) -> Response[bytes] | Stream:
    """The answer to ``query`` in ``answer_format``; ``fields`` are the (name, member)
    columns (default: the plan's), ``download`` names the file of a binary answer,
    ``shape`` and ``route`` as for ``serve_answer``."""
    assert answer_format.clickhouse is not None
    runtime = await current_runtime(state)
    plan = runtime.cached_plan(query)
    if plan is None:
        plan = await to_thread.run_sync(runtime.plan, query)
    key = ((shape, answer_format.name), plan.query)
    found = state.cache.get(key)
    headers = {TABLE_HEADER: plan.table, CACHE_HEADER: "hit" if found else "miss",
               "Vary": "Accept"}
    if answer_format.binary:
        headers["Content-Disposition"] = download_name(download, answer_format)
    media_type = answer_format.media_type  # Litestar adds "; charset=utf-8" to text/csv
    rollup = plan.rollup.name if plan.rollup else None
    if found is not None:
        _count(plan.query.source or "", rollup, query.force_raw, plan.tables, route)
        return Response(content=found.body, media_type=media_type, headers=headers)
    version = state.cache.miss()
    statement = answer_statement(plan, runtime.compiled.sources[plan.query.source], fields)
    names = [name for name, _ in fields] if fields is not None else list(plan.columns)
    chunks = runtime.warehouse.stream(
        statement, plan.parameters, answer_format.clickhouse, raw=plan.rollup is None,
        settings={**(runtime.read_settings(plan) or {}),
                  **FORMAT_SETTINGS.get(answer_format.name, {})})
    head = [csv_header(names)] if answer_format is CSV_FORMAT else []
    rest = await to_thread.run_sync(read_head, chunks, head)
    _count(plan.query.source or "", rollup, query.force_raw, plan.tables, route)
    if rest is not None:
        return Stream(_rest(head, read_ahead(rest)), media_type=media_type, headers=headers)
    body = b"".join(head)
    state.cache.store(key, Cached(body, plan.table, plan.tables, 0, rollup,
                                  plan.query.source or ""), version)
    return Response(content=body, media_type=media_type, headers=headers)


def _count(source: str, rollup: str | None, force_raw: bool, tables: Sequence[str],
           route: str | None) -> None:
    """Monitoring of an answer, as ``serve_answer`` does it (its rows are not counted)."""
    count_answer(source, rollup, force_raw)
    note_answer(tables, None, route=route)
