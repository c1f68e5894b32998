"""Ingestion: batches of rows from a request body (JSON, JSON lines or CSV), checked whole
against the source table's columns, then inserted as one block."""

from __future__ import annotations

import csv
import io
import json
import time
import uuid
from dataclasses import dataclass

from sqlglot import exp

from engine.ddl import create_staging_table
from engine.rows import RowError, check_rows
from server.runtime import Runtime

JSON_TYPES = ("application/json",)
NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/json-lines")
CSV_TYPES = ("text/csv", "application/csv")
PARQUET_TYPES = ("application/vnd.apache.parquet", "application/parquet",
                 "application/x-parquet")


@dataclass(frozen=True, slots=True)
class Inserted:
    source: str
    table: str
    rows: int
    elapsed_ms: float


def parse_body(body: bytes, content_type: str) -> tuple[list[object], list[str] | None, bool]:
    """Rows of a request body: (rows, names of rows for errors, values are text)."""
    kind = content_type.split(";", 1)[0].strip().lower()
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RowError("body", "the body is not UTF-8 text") from None
    if kind in CSV_TYPES:
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames:
            raise RowError("body", "a CSV body starts with a header line naming the columns")
        rows: list[object] = []
        names = []
        for record in reader:
            if None in record:
                raise RowError(f"line {reader.line_num}", f"line {reader.line_num}: more values "
                               "than header columns")
            if any(value is None for value in record.values()):
                raise RowError(f"line {reader.line_num}", f"line {reader.line_num}: fewer "
                               "values than header columns")
            rows.append(dict(record))
            names.append(f"line {reader.line_num}")
        return rows, names, True
    if kind in NDJSON_TYPES:
        rows, names = [], []
        for number, line in enumerate(text.splitlines(), start=1):
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


def ingest(runtime: Runtime, source_name: str, body: bytes, content_type: str,
           dry_run: bool = False) -> Inserted:
    """Check every row, then insert the batch (unless ``dry_run``); nothing is inserted when
    a row is bad. Parquet is decoded by ClickHouse, then checked like the other formats."""
    source = runtime.compiled.sources[runtime.source_name(source_name)]
    columns = dict(source.columns)
    if content_type.split(";", 1)[0].strip().lower() in PARQUET_TYPES:
        staging = exp.table_(f"_staging_{uuid.uuid4().hex[:12]}",
                             db=source.source.database)
        rows: list[object] = list(runtime.warehouse.decode_file(
            staging, create_staging_table(staging, columns), body, "Parquet"))
        names, text = None, False
    else:
        rows, names, text = parse_body(body, content_type)
    checked = check_rows(columns, rows, text, names)
    started = time.perf_counter()
    if not dry_run:
        runtime.warehouse.insert(source.source.table, list(columns), checked)
    return Inserted(source.name, source.source.table, len(checked),
                    (time.perf_counter() - started) * 1000)
