"""Commands that put data in: ``demo`` (the reference data) and ``load`` (a file)."""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

from semantic import load_model
from semantic.errors import SemanticError
from server.cli.common import add_server_argument, open_warehouse, running_server, say
from server.settings import Settings

#: file suffix -> (content type, whether batches are split by lines)
LOAD_FORMATS = {
    ".csv": ("text/csv", True),
    ".jsonl": ("application/x-ndjson", True),
    ".ndjson": ("application/x-ndjson", True),
    ".json": ("application/json", False),
    ".parquet": ("application/vnd.apache.parquet", False),
}


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from engine.ingestion.demo import DEMO_TABLE
    from server.operations.apply import fill_demo

    table = args.table or DEMO_TABLE
    client = running_server(args, settings)
    if client is not None:
        answer = client.post_json("/v1/admin/demo", params={
            "rows": args.rows, "seed": args.seed, "table": table, "append": args.append})
        for line in answer["log"]:
            say(str(line))
        return 0
    warehouse = open_warehouse(settings, admin=True)
    try:
        fill_demo(warehouse, args.rows, args.seed, table, args.append, say)
    finally:
        warehouse.close()
    return 0


@dataclass(frozen=True, slots=True)
class Batch:
    body: bytes
    line_offset: int  # added to the body's line numbers to give the file's
    rows: int


def batches(data: bytes, content_type: str, by_lines: bool, size: int,
            max_bytes: int) -> list[Batch]:
    """The file cut into batches of at most ``size`` rows and ``max_bytes`` bytes (CSV keeps
    its header in every batch); other formats go whole."""
    if not by_lines:
        return [Batch(data, 0, 0)]
    lines = data.splitlines(keepends=True)
    header = lines[:1] if content_type == "text/csv" else []
    budget = max(1, max_bytes - sum(len(h) for h in header))
    cut: list[Batch] = []
    start = len(header)
    while start < len(lines) or not cut:
        end, used = start, 0
        while end < len(lines) and end - start < size and \
                (used + len(lines[end]) <= budget or end == start):
            used += len(lines[end])
            end += 1
        # body line 1 is the header (CSV) or the batch's first line (file line start + 1)
        cut.append(Batch(b"".join(header + lines[start:end]), start - len(header),
                         end - start))
        start = end
    return cut


def file_format(path: Path, name: str | None) -> tuple[str, str, bool]:
    """(suffix, content type, split by lines) of a file to load."""
    suffix = f".{name}" if name else path.suffix.lower()
    if suffix not in LOAD_FORMATS:
        raise SemanticError(f"{path}: unknown format '{suffix}'; use one of "
                            f"{', '.join(s.lstrip('.') for s in LOAD_FORMATS)} (or --format)")
    return (suffix, *LOAD_FORMATS[suffix])


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SemanticError(f"cannot read {path}: {exc.strerror}") from None


def _create(settings: Settings, source_name: str, path: Path, data: bytes, suffix: str) -> None:
    from engine.ingestion.files import FILE_FORMATS
    from server.cli.scaffold import create_table

    model = load_model(settings.model_path)
    source = model.source(source_name)
    if source is None:
        raise SemanticError(f"source '{source_name}' is not in {settings.model_path} (its "
                            f"sources: {', '.join(s.name for s in model.sources)})")
    warehouse = open_warehouse(settings)
    try:
        create_table(warehouse, source, path, data, FILE_FORMATS[suffix])
    finally:
        warehouse.close()


def cmd_load(args: argparse.Namespace, settings: Settings) -> int:
    """Load a file all or nothing: one batch is one checked INSERT; a bigger file is staged
    batch by batch (each checked) and then inserted in one statement, and a bad batch
    anywhere cancels the load. Goes through the running server when it holds the embedded
    engine."""
    import uuid

    from server.runtime.compiled import Runtime
    from server.service.ingestion import cancel_load, commit_load, ingest

    path = Path(args.file)
    suffix, content_type, by_lines = file_format(path, args.format)
    data = read_file(path)
    limits = settings.limits
    cut = batches(data, content_type, by_lines, args.batch_rows or limits.max_batch_rows,
                  limits.max_body_bytes)
    load = uuid.uuid4().hex[:16] if len(cut) > 1 else None
    client = running_server(args, settings)
    if args.create:
        if client is not None:
            raise SemanticError("--create needs the engine in this process: stop the server "
                                f"at {client.url} first (it cannot serve a source whose table "
                                "does not exist yet)")
        _create(settings, args.source, path, data, suffix)
    started = time.perf_counter()
    warehouse = None
    if client is not None:
        base = f"/v1/sources/{args.source}"
        say(f"loading {path} through {client.url}")
        remote = client

        def send(batch: Batch) -> int:
            reply = remote.call("POST", f"{base}/rows", batch.body, content_type,
                                {"line_offset": batch.line_offset, "load": load})
            return int(reply["staged" if load else "inserted"])

        def commit() -> int:
            return int(remote.call("POST", f"{base}/loads/{load}/commit")["inserted"])

        def cancel() -> None:
            remote.call("DELETE", f"{base}/loads/{load}")
    else:
        warehouse = open_warehouse(settings, admin=True)
        runtime = Runtime.start(load_model(settings.model_path), warehouse)

        def send(batch: Batch) -> int:
            return ingest(runtime, args.source, batch.body, content_type, load=load,
                          line_offset=batch.line_offset).rows

        def commit() -> int:
            assert load is not None
            return commit_load(runtime, args.source, load).rows

        def cancel() -> None:
            assert load is not None
            cancel_load(runtime, args.source, load)

    try:
        done = 0
        for number, batch in enumerate(cut, start=1):
            try:
                done += send(batch)
            except SemanticError:
                if load is not None:
                    cancel()
                    say(f"batch {number} of {len(cut)} was refused: the load is cancelled, "
                        "nothing was inserted")
                raise
            rate = f"{done / (time.perf_counter() - started):,.0f} rows/s"
            say(f"staged {done:,} rows, batch {number} of {len(cut)} ({rate})" if load
                else f"inserted {done:,} rows ({rate})")
        if load is not None:
            done = commit()
    finally:
        if warehouse is not None:
            warehouse.close()
    say(f"load: {done:,} rows into source '{args.source}' in "
        f"{time.perf_counter() - started:.1f} s" + (" (one statement)" if load else ""))
    return 0


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = commands.add_parser("demo", help="create analytics.events and fill it with the "
                               "reference data (skipped if it already has rows)")
    demo.add_argument("--rows", type=int, default=5_000_000, help="rows to insert "
                      "(default 5,000,000)")
    demo.add_argument("--seed", type=int, default=1, help="seed; the same seed gives the same "
                      "rows (default 1)")
    demo.add_argument("--table", help="target table (default: the reference table, "
                      "analytics.events)")
    demo.add_argument("--append", action="store_true", help="insert even if the table has rows")
    add_server_argument(demo)

    load = commands.add_parser("load", help="insert a CSV, JSON lines, JSON or Parquet file "
                               "into a source, all or nothing (a file of several batches is "
                               "staged, then inserted in one statement)")
    load.add_argument("source", help="source name from metrics.yaml")
    load.add_argument("file", help="file to load: .csv (with a header), .jsonl/.ndjson, .json "
                      "(an array of objects) or .parquet")
    load.add_argument("--format", choices=[s.lstrip(".") for s in LOAD_FORMATS],
                      help="file format (default: from the file name)")
    load.add_argument("--create", action="store_true", help="first create the source's table "
                      "from the file's schema as ClickHouse infers it (ordered and partitioned "
                      "by month by the time column), showing the types")
    load.add_argument("--batch-rows", type=int, help="rows per request for CSV and JSON "
                      "lines (default $SEMANTIC_MAX_BATCH_ROWS, 100,000); batches are also cut "
                      "at $SEMANTIC_MAX_BODY_BYTES (64 MiB)")
    add_server_argument(load)


COMMANDS = {"demo": cmd_demo, "load": cmd_load}
