"""Commands that put data in: ``demo`` (the reference data) and ``load`` (a file)."""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from engine.ingestion.demo import DEMO_TABLE
from engine.ingestion.files import FILE_FORMATS
from semantic import load_model
from semantic.errors import SemanticError
from semantic.model import Model
from server.cli.common import open_warehouse, running_server
from server.cli.files import (
    Batch,
    ParquetBatches,
    batches,
    create_table,
    file_format,
    read_file,
)
from server.cli.output import say
from server.operations.apply import fill_demo
from server.runtime.compiled import Runtime
from server.service.ingestion import PARQUET_TYPES, cancel_load, commit_load, ingest
from server.settings import Settings


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:

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





def _create(settings: Settings, model: Model, source_name: str, path: Path, data: bytes,
            suffix: str) -> None:
    source = model.source(source_name)
    if source is None:
        raise SemanticError(f"source '{source_name}' is not in {settings.model_path} (its "
                            f"sources: {', '.join(s.name for s in model.sources)})")
    warehouse = open_warehouse(settings)
    try:
        create_table(warehouse, source, path, data, FILE_FORMATS[suffix])
    finally:
        warehouse.close()


def loading_model(model: Model, source_name: str) -> Model:
    """The model as far as loading one source needs it: that source with its own dimensions
    and the row-level security on them (no joins, measures or rollups), so the tables of a
    star schema load one by one, before the others exist and before any apply. (Rollups
    storing values of the table notice the new rows by its fingerprint.)"""
    source = model.source(source_name)
    if source is None:
        raise SemanticError(f"source '{source_name}' is not in {model.file} (its sources: "
                            f"{', '.join(s.name for s in model.sources)})")
    bare = replace(source, joins=(), measures=(), metrics=(), rollups=(),
                   security=tuple(c for c in source.security if "." not in c.dimension.name))
    return replace(model, sources=(bare,), endpoints=())


def cmd_load(args: argparse.Namespace, settings: Settings) -> int:
    """Load a file all or nothing: one batch is one checked INSERT; a bigger file is staged
    batch by batch (each checked) and then inserted in one statement, and a bad batch
    anywhere cancels the load. Goes through the running server when it holds the embedded
    engine."""

    path = Path(args.file)
    model = load_model(settings.model_path)
    if args.replace:  # refused before anything is staged (the server refuses it too)
        declared = model.source(args.source)
        if declared is not None and declared.rollups:
            raise SemanticError(f"source '{args.source}' has rollups fed by its inserts; "
                                "--replace swaps a dimension table's rows, so load this "
                                "source's new rows without --replace")
    suffix, content_type, by_lines = file_format(path, args.format)
    limits = settings.limits
    size = args.batch_rows or limits.max_batch_rows
    cut: Sequence[Batch] | ParquetBatches
    if content_type in PARQUET_TYPES:  # read a batch at a time: any size in bounded memory
        cut = ParquetBatches(path, size, limits.max_body_bytes)
        data = cut.sample() if args.create else b""
    else:
        data = read_file(path)
        cut = batches(data, content_type, by_lines, size, limits.max_body_bytes)
    # a replacing load is always staged: the table's rows are swapped only when all are in
    load = uuid.uuid4().hex[:16] if len(cut) > 1 or args.replace else None
    client = running_server(args, settings)
    if args.create:
        if client is not None:
            raise SemanticError("--create needs the engine in this process: stop the server "
                                f"at {client.url} first (it cannot serve a source whose table "
                                "does not exist yet)")
        _create(settings, model, args.source, path, data, suffix)
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
            path = f"{base}/loads/{load}/commit" + ("?replace=true" if args.replace else "")
            return int(remote.call("POST", path)["inserted"])

        def cancel() -> None:
            remote.call("DELETE", f"{base}/loads/{load}")
    else:
        warehouse = open_warehouse(settings, admin=True)
        runtime = Runtime.start(loading_model(model, args.source), warehouse)

        def send(batch: Batch) -> int:
            return ingest(runtime, args.source, batch.body, content_type, load=load,
                          line_offset=batch.line_offset).rows

        def commit() -> int:
            assert load is not None
            return commit_load(runtime, args.source, load, args.replace).rows

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
                    if number > 1:  # the first batch refused: nothing was staged
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
    how = " (replacing its rows at once)" if args.replace else " (one statement)" if load else ""
    say(f"load: {done:,} rows into source '{args.source}' in "
        f"{time.perf_counter() - started:.1f} s{how}")
    return 0


COMMANDS = {"demo": cmd_demo, "load": cmd_load}
