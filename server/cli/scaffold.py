"""``semantic init`` (a model from a table or a file) and the ``--create`` of ``semantic load``
(a source table from a file's schema, as ClickHouse infers it)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from semantic.errors import SemanticError
from semantic.model import Source
from server.cli.common import open_warehouse, say
from server.settings import Settings
from server.warehouse.catalog import table_columns

if TYPE_CHECKING:
    from server.warehouse.statements import Warehouse


def file_columns(warehouse: Warehouse, path: Path, data: bytes, fmt: str) -> dict[str, str]:
    from engine.ingestion.files import describe_file
    from server.warehouse.availability import WarehouseError

    try:
        columns = warehouse.describe_data(describe_file(fmt), data)
    except WarehouseError as exc:
        raise SemanticError(f"ClickHouse cannot read {path} as {fmt}: {exc.message}") from None
    if not columns:
        raise SemanticError(f"{path}: ClickHouse found no columns in it")
    return columns


def create_table(warehouse: Warehouse, source: Source, path: Path, data: bytes,
                 fmt: str) -> None:
    """Create the source's table from the file's schema, showing the types first."""
    from engine.dialect.render import render
    from engine.ingestion.files import create_source_table, time_column

    if table_columns(warehouse, source.table) is not None:
        raise SemanticError(f"{source.table} already exists; load without --create to add "
                            "rows to it")
    columns = file_columns(warehouse, path, data, fmt)
    time = source.time_column or time_column(columns)
    if time is not None and time not in columns:
        raise SemanticError(f"the time column '{time}' of source '{source.name}' is not in "
                            f"{path} (its columns: {', '.join(columns)})")
    statements = create_source_table(source.table, columns, time)
    width = max(len(name) for name in columns)
    say(f"creating {source.table} from the schema ClickHouse infers for {path}:")
    for name, kind in columns.items():
        say(f"  {name.ljust(width)}  {kind}")
    for statement in statements:
        say(f"{render(statement)};")
    for statement in statements:
        warehouse.command(statement)


def cmd_init(args: argparse.Namespace, settings: Settings) -> int:
    from engine.ingestion.files import FILE_FORMATS, distinct_counts, scaffold_model
    from server.cli.data import file_format, read_file
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


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    init = commands.add_parser("init", help="write a metrics.yaml for a file or a table: time "
                               "column, dimensions, measures, a daily rollup, an endpoint")
    init.add_argument("source", help="name of the source in the model")
    init.add_argument("--file", help="a .csv/.jsonl/.json/.parquet file to describe (then "
                      "`semantic load SOURCE FILE --create` creates the table and loads it)")
    init.add_argument("--format", choices=["csv", "jsonl", "ndjson", "json", "parquet"],
                      help="file format (default: from the file name)")
    init.add_argument("--from-table", metavar="DB.TABLE", help="an existing table to describe")
    init.add_argument("--table", help="with --file: the table the data will live in "
                      "(default analytics.SOURCE)")
    init.add_argument("--output", help="where to write the model (default: --model, "
                      "$SEMANTIC_MODEL or metrics.yaml)")
    init.add_argument("--force", action="store_true", help="replace an existing file")
