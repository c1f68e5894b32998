"""Commands that put data in: ``demo`` (the reference data) and ``load`` (a file)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from pathlib import Path

from semantic import load_model
from semantic.errors import SemanticError
from server.cli.common import add_server_argument, open_warehouse, running_server, say
from server.config import Settings

#: file suffix -> (content type, whether batches are split by lines)
LOAD_FORMATS = {
    ".csv": ("text/csv", True),
    ".jsonl": ("application/x-ndjson", True),
    ".ndjson": ("application/x-ndjson", True),
    ".json": ("application/json", False),
    ".parquet": ("application/vnd.apache.parquet", False),
}


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from engine.demo import DEMO_TABLE
    from server.operations import fill_demo

    table = args.table or DEMO_TABLE
    client = running_server(args, settings)
    if client is not None:
        answer = client.post_json("/v1/admin/demo", params={
            "rows": args.rows, "seed": args.seed, "table": table, "append": args.append})
        for line in answer["log"]:
            say(str(line))
        return 0
    warehouse = open_warehouse(settings)
    try:
        fill_demo(warehouse, args.rows, args.seed, table, args.append, say)
    finally:
        warehouse.close()
    return 0


def _batches(data: bytes, content_type: str, by_lines: bool, size: int) -> Iterator[bytes]:
    """The file cut into batches of ``size`` rows (CSV keeps its header in every batch)."""
    if not by_lines:
        yield data
        return
    lines = data.splitlines(keepends=True)
    header = lines[:1] if content_type == "text/csv" else []
    body = lines[len(header):]
    for start in range(0, max(len(body), 1), size):
        yield b"".join(header + body[start:start + size])


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
    from engine.sources import FILE_FORMATS
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
    """Check the whole file, then insert it batch by batch: a bad row anywhere inserts
    nothing. Goes through the running server when it holds the embedded engine."""
    from server.ingest import ingest
    from server.runtime import Runtime

    path = Path(args.file)
    suffix, content_type, by_lines = file_format(path, args.format)
    data = read_file(path)
    batches = list(_batches(data, content_type, by_lines, args.batch_rows))
    client = running_server(args, settings)
    if args.create:
        if client is not None:
            raise SemanticError("--create needs the engine in this process: stop the server "
                                f"at {client.url} first (it cannot serve a source whose table "
                                "does not exist yet)")
        _create(settings, args.source, path, data, suffix)
    started = time.perf_counter()
    done = 0
    if client is not None:
        rows_path = f"/v1/sources/{args.source}/rows"
        say(f"loading {path} through {client.url}")
        for batch in batches:
            client.call("POST", rows_path, batch, content_type, {"dry_run": True})
        for batch in batches:
            done += int(client.call("POST", rows_path, batch, content_type)["inserted"])
            say(f"inserted {done:,} rows ({done / (time.perf_counter() - started):,.0f} rows/s)")
    else:
        model = load_model(settings.model_path)
        warehouse = open_warehouse(settings)
        try:
            runtime = Runtime.start(model, warehouse)
            for batch in batches:
                ingest(runtime, args.source, batch, content_type, dry_run=True)
            for batch in batches:
                done += ingest(runtime, args.source, batch, content_type).rows
                say(f"inserted {done:,} rows "
                    f"({done / (time.perf_counter() - started):,.0f} rows/s)")
        finally:
            warehouse.close()
    say(f"load: {done:,} rows into source '{args.source}' in "
        f"{time.perf_counter() - started:.1f} s")
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
                               "into a source (the whole file is checked first)")
    load.add_argument("source", help="source name from metrics.yaml")
    load.add_argument("file", help="file to load: .csv (with a header), .jsonl/.ndjson, .json "
                      "(an array of objects) or .parquet")
    load.add_argument("--format", choices=[s.lstrip(".") for s in LOAD_FORMATS],
                      help="file format (default: from the file name)")
    load.add_argument("--create", action="store_true", help="first create the source's table "
                      "from the file's schema as ClickHouse infers it (ordered and partitioned "
                      "by month by the time column), showing the types")
    load.add_argument("--batch-rows", type=int, default=100_000, help="rows per INSERT for "
                      "CSV and JSON lines (default 100,000)")
    add_server_argument(load)


COMMANDS = {"demo": cmd_demo, "load": cmd_load}
