"""``semantic init`` (a model from a table or a file) and the ``--create`` of ``semantic load``
(a source table from a file's schema, as ClickHouse infers it)."""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.ingestion.files import (
    FILE_FORMATS,
    distinct_counts,
    scaffold_model,
)
from semantic.errors import SemanticError
from server.cli.common import open_warehouse
from server.cli.files import file_columns, file_format, read_file
from server.cli.output import say
from server.settings import Settings
from server.warehouse.catalog import table_columns


def cmd_init(args: argparse.Namespace, settings: Settings) -> int:
    output = Path(args.output) if args.output else settings.model_path
    if output.exists() and not args.force:
        raise SemanticError(f"{output} exists; choose another --output or pass --force to "
                            "replace it")
    if (args.file is None) == (args.from_table is None):
        raise SemanticError("give the data to describe: --file FILE or --from-table DB.TABLE")
    table = args.from_table or args.table or f"analytics.{args.source}"
    warehouse = open_warehouse(settings)
    try:
        if args.file is not None:
            path = Path(args.file)
            suffix, _, _ = file_format(path, args.format)
            fmt, data = FILE_FORMATS[suffix], read_file(path)
            columns = file_columns(warehouse, path, data, fmt)
            counted = warehouse.query(distinct_counts(list(columns), None, fmt), {"data": data})
        else:
            found = table_columns(warehouse, table)
            if found is None:
                raise SemanticError(f"table {table} does not exist in {settings.location}")
            columns = found
            counted = warehouse.query(distinct_counts(list(columns), table))
    finally:
        warehouse.close()
    rows, *counts = counted.rows[0]
    text = scaffold_model(args.source, table, columns, dict(zip(columns, counts, strict=True)),
                          int(rows))
    output.write_text(text, encoding="utf-8")
    say(f"wrote {output}: source '{args.source}' on {table} ({len(columns)} columns)")
    if args.file is not None:
        say(f"next: semantic --model {output} load {args.source} {args.file} --create; "
            f"semantic --model {output} apply; semantic --model {output} serve")
    else:
        say(f"next: semantic --model {output} apply; semantic --model {output} serve")
    return 0



COMMANDS = {"init": cmd_init}
