"""Ingestion: batches of rows from a request body (JSON, JSON lines, CSV or Parquet), checked
whole against the source table's columns, then inserted as one block.

A load too big for one batch is staged: each batch is checked and inserted into a staging
table of its own (``?load=ID``), then ``commit_load`` moves every staged row into the source
in one ``INSERT ... SELECT``; a bad batch anywhere cancels the load and nothing reaches the
source. A staged load belongs to the credential that staged it: its staging table's name
carries a digest of the caller (subject and claims), so another credential's commit or cancel
finds no such load (404), and a commit checks the committed rows against the committer's
claims as well.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import time
import uuid
from dataclasses import dataclass

from sqlglot import exp

from engine.dialect.render import render
from engine.ingestion.rows import RowError, check_rows
from engine.model.compiled import CompiledSource
from engine.query.security import AccessDenied, check_written_rows, write_restrictions
from engine.rollups.ddl import (
    create_database,
    create_like,
    create_load_table,
    create_staging_table,
    exchange_tables,
    insert_load,
)
from server.auth.principal import current_access, current_principal
from server.operations.keys import duplicate_issue
from server.runtime.compiled import Runtime
from server.warehouse.catalog import tables

JSON_TYPES = ("application/json",)
NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/json-lines")
CSV_TYPES = ("text/csv", "application/csv")
PARQUET_TYPES = ("application/vnd.apache.parquet", "application/parquet",
                 "application/x-parquet")


LOAD_ID = re.compile(r"[a-z0-9]{8,32}")


class UnknownLoad(RowError):
    code = "unknown_load"
    status = 404


@dataclass(frozen=True, slots=True)
class Inserted:
    source: str
    table: str
    rows: int
    elapsed_ms: float


def _csv_rows(text: str, line_offset: int) -> tuple[list[object], list[str] | None, bool]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames:
        raise RowError("body", "a CSV body starts with a header line naming the columns")
    rows: list[object] = []
    names = []
    for record in reader:
        where = f"line {reader.line_num + line_offset}"
        if None in record:
            raise RowError(where, f"{where}: more values than header columns")
        if any(value is None for value in record.values()):
            raise RowError(where, f"{where}: fewer values than header columns")
        rows.append(dict(record))
        names.append(where)
    return rows, names, True


def parse_body(body: bytes, content_type: str,
               line_offset: int = 0) -> tuple[list[object], list[str] | None, bool]:
    """Rows of a request body: (rows, names of rows for errors, values are text). Lines are
    named by their number in the body plus ``line_offset`` (a batch cut from a file gives
    the file's line numbers)."""
    kind = content_type.split(";", 1)[0].strip().lower()
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RowError("body", "the body is not UTF-8 text") from None
    if kind in CSV_TYPES:
        try:
            return _csv_rows(text, line_offset)
        except csv.Error as exc:  # e.g. a field past the csv module's size limit
            raise RowError("body", f"the body is not valid CSV: {exc}") from None
    if kind in NDJSON_TYPES:
        rows, names = [], []
        for number, line in enumerate(text.splitlines(), start=1 + line_offset):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise RowError(f"line {number}", f"line {number}: not JSON: {exc.msg}") from None
            names.append(f"line {number}")
        return rows, names, False
    if kind in JSON_TYPES or not kind:
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RowError("body", f"the body is not valid JSON: {exc}") from None
        if isinstance(document, dict) and set(document) == {"rows"}:
            document = document["rows"]
        if not isinstance(document, list):
            raise RowError("body", "send a JSON array of row objects (or {\"rows\": [...]})")
        return document, None, False
    raise RowError("content-type", f"unsupported content type '{kind}'; send "
                   f"{', '.join(JSON_TYPES + NDJSON_TYPES + CSV_TYPES + PARQUET_TYPES)}")


def _checked(runtime: Runtime, source: CompiledSource, body: bytes, content_type: str,
             line_offset: int) -> list[list[object]]:
    """Every row of a body, checked against the source's columns, the ingestion limits and
    the caller's row-level security claims. Parquet is decoded by ClickHouse first, then
    checked like the other formats."""
    columns = dict(source.columns)
    limits = runtime.warehouse.limits
    if content_type.split(";", 1)[0].strip().lower() in PARQUET_TYPES:
        staging = exp.table_(f"_staging_{uuid.uuid4().hex[:12]}",
                             db=source.source.database)
        rows: list[object] = list(runtime.warehouse.decode_file(
            staging, create_staging_table(staging, columns), body, "Parquet"))
        names, text = None, False
    else:
        rows, names, text = parse_body(body, content_type, line_offset)
    checked = check_rows(columns, rows, text, names, max_rows=limits.max_batch_rows,
                         allow_nonfinite=limits.allow_nonfinite)
    access = current_access()
    if access is not None:
        check_written_rows(source, list(columns), checked, access, names)
    return checked


def _owner() -> str:
    """Who stages a load: empty with access control off, else a digest of the caller's
    subject and claims (a key id, or a token's subject, with its row-level claims)."""
    principal = current_principal()
    if principal is None:
        return ""
    who = json.dumps([principal.subject, principal.access.claims], default=str)
    return "_" + hashlib.sha256(who.encode()).hexdigest()[:16]


def _load_table(runtime: Runtime, source: CompiledSource, load: str) -> exp.Table:
    """The staging table of the caller's load ``load`` (another caller's load of the same id
    is another table)."""
    if not LOAD_ID.fullmatch(load):
        raise RowError("load", "a load id is 8 to 32 lowercase letters and digits")
    return exp.table_(f"_load_{source.name}_{load}{_owner()}", db=runtime.model.rollup_database)


def _staged(runtime: Runtime, source: CompiledSource, load: str) -> exp.Table:
    """The caller's staged load ``load``; 404 when this caller staged no such load."""
    staging = _load_table(runtime, source, load)
    if render(staging) not in tables(runtime.warehouse, [runtime.model.rollup_database]):
        raise UnknownLoad("load", f"no load '{load}' is staged for source '{source.name}' by "
                          "this credential (committed or cancelled already, or never started)")
    return staging


def _check_committed_rows(runtime: Runtime, source: CompiledSource,
                          staging: exp.Table) -> None:
    """Refuse a commit whose staged rows the committer may not write (its claims)."""
    access = current_access()
    if access is None:
        return
    for restriction in write_restrictions(source, list(source.columns), access):
        outside = runtime.warehouse.query(exp.select(exp.Count(this=exp.Star())).from_(
            staging.copy()).where(restriction.outside())).rows[0][0]
        if outside:
            raise AccessDenied("load", f"{outside} staged rows have a {restriction.column} "
                               f"outside the credential's claim '{restriction.claim}'")


def ingest(runtime: Runtime, source_name: str, body: bytes, content_type: str,
           dry_run: bool = False, load: str | None = None, line_offset: int = 0) -> Inserted:
    """Check every row, then insert the batch as one block (unless ``dry_run``); nothing is
    inserted when a row is bad. With ``load``, the rows are staged for ``commit_load``
    instead of going into the source."""
    source = runtime.compiled.sources[runtime.source_name(source_name)]
    checked = _checked(runtime, source, body, content_type, line_offset)
    started = time.perf_counter()
    target = source.source.table
    if load is not None:
        staging = _load_table(runtime, source, load)
        target = render(staging)
        if not dry_run:  # staging works before the first apply made the rollup database
            runtime.warehouse.command(create_database(runtime.model.rollup_database,
                                                      runtime.model.cluster))
            runtime.warehouse.command(create_load_table(staging, dict(source.columns)))
    if not dry_run:
        runtime.warehouse.insert(target, list(source.columns), checked)
        if load is None:
            _stores_changed(runtime, source)
    return Inserted(source.name, target, len(checked), (time.perf_counter() - started) * 1000)


def _stores_changed(runtime: Runtime, source: CompiledSource) -> None:
    """After rows reach ``source``: rollups storing values read through joins from its table
    are stale from now on (the refresh marks them before the write is answered)."""
    if any(source.source.table in r.stores_from for r in runtime.compiled.rollups):
        runtime.refresh()


def commit_load(runtime: Runtime, source_name: str, load: str,
                replace: bool = False) -> Inserted:
    """Insert every row staged under ``load`` into the source in one statement, then drop
    the staging table: the load goes in whole (or, if ClickHouse fails, stays staged).

    ``replace``: the staged rows become the table's whole contents instead, swapped in at
    once (a dimension table: answers read through joins change at the swap)."""
    source = runtime.compiled.sources[runtime.source_name(source_name)]
    staging = _staged(runtime, source, load)
    _check_committed_rows(runtime, source, staging)
    started = time.perf_counter()
    rows = runtime.warehouse.query(exp.select(exp.Count(this=exp.Star())).from_(
        staging.copy())).rows[0][0]
    if replace:
        _replace(runtime, source, staging)
    else:
        runtime.warehouse.transfer(insert_load(source.source.table, staging,
                                               list(source.columns)))
    runtime.warehouse.command(exp.Drop(tables=[staging], kind="TABLE", exists=True))
    _stores_changed(runtime, source)
    return Inserted(source.name, source.source.table, int(rows),
                    (time.perf_counter() - started) * 1000)


def _replace(runtime: Runtime, source: CompiledSource, staging: exp.Table) -> None:
    """Swap the staged rows in as the source table's contents: a copy of the table is filled
    and exchanged with it in one atomic step, then the old rows are dropped. Refused for a
    source with rollups of its own (their views feed on its inserts), for a caller limited to
    some of its rows, and for rows whose primary key repeats."""
    if source.rollups:
        raise RowError("replace", f"source '{source.name}' has rollups fed by its inserts; "
                       "replace swaps a dimension table's rows, so load this source's new "
                       "rows without --replace")
    access = current_access()
    if access is not None and write_restrictions(source, list(source.columns), access):
        raise AccessDenied("replace", "replacing a table removes rows outside the "
                           "credential's row-level claims; use a credential without them")
    if source.source.primary_key:
        issue = duplicate_issue(runtime.warehouse, source.source, render(staging),
                                "the staged rows")
        if issue is not None:
            raise RowError("replace", issue.message)
    table = source.table
    fresh = exp.table_(f"_replace_{table.name}_{uuid.uuid4().hex[:8]}", db=table.db)
    warehouse = runtime.warehouse
    with warehouse.ingestion_lock:
        warehouse.command(create_like(fresh, table))
        try:
            warehouse.transfer(insert_load(render(fresh), staging, list(source.columns)))
            warehouse.command(exchange_tables(table, fresh))
        finally:
            warehouse.command(exp.Drop(tables=[fresh], kind="TABLE", exists=True))


def cancel_load(runtime: Runtime, source_name: str, load: str) -> None:
    """Drop what the caller's load staged (nothing reaches the source); 404 when the caller
    staged no such load."""
    source = runtime.compiled.sources[runtime.source_name(source_name)]
    runtime.warehouse.command(exp.Drop(tables=[_staged(runtime, source, load)],
                                       kind="TABLE", exists=True))
