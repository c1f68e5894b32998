"""``semantic init`` (a model from a table or a file, with joins suggested to the other tables
of its database) and the ``--create`` of ``semantic load`` (a source table from a file's
schema, as ClickHouse infers it)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlglot import exp

from engine.ingestion.files import FILE_FORMATS, distinct_counts, file_table, time_column
from engine.ingestion.joins import (
    MAX_KEY_ROWS,
    SuggestedJoin,
    candidate_joins,
    choose_joins,
    key_check,
    key_coverage,
)
from engine.ingestion.scaffold import scaffold_model
from semantic import load_model_text
from semantic.errors import ModelError, SemanticError
from server.cli.common import open_warehouse
from server.cli.files import file_columns, file_format, read_file
from server.cli.output import say
from server.operations.validation import check_offline
from server.runtime.compile import compile_against
from server.settings import Settings
from server.warehouse.availability import WarehouseError
from server.warehouse.catalog import table_columns, tables
from server.warehouse.statements import Warehouse


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
            rows_of: exp.Expression = file_table(fmt)
            parameters: dict[str, Any] = {"data": data}
        else:
            found = table_columns(warehouse, table)
            if found is None:
                raise SemanticError(f"table {table} does not exist in {settings.location}")
            columns = found
            counted = warehouse.query(distinct_counts(list(columns), table))
            rows_of, parameters = exp.to_table(table), {}
        rows, *counts = counted.rows[0]
        distinct = dict(zip(columns, counts, strict=True))
        joins, joined = _suggest_joins(warehouse, table, columns, rows_of, parameters)
        text = scaffold_model(args.source, table, columns, distinct, int(rows), joins, joined)
        refused = _refusal(text, output, warehouse, args.source,
                           described=args.file is None) if joins else ""
        if refused:
            text = scaffold_model(args.source, table, columns, distinct, int(rows), joins,
                                  joined, refused)
    finally:
        warehouse.close()
    output.write_text(text, encoding="utf-8")
    say(f"wrote {output}: source '{args.source}' on {table} ({len(columns)} columns)")
    if joins:
        listed = ", ".join(f"{j.candidate.column} -> {j.candidate.table}.{j.candidate.key}"
                           for j in joins)
        say(f"joins left commented out ({refused}): {listed}" if refused
            else f"joins suggested (see the file): {listed}")
    if args.file is not None:
        say(f"next: semantic --model {output} load {args.source} {args.file} --create; "
            f"semantic --model {output} apply; semantic --model {output} serve")
    else:
        say(f"next: semantic --model {output} apply; semantic --model {output} serve")
    return 0


def _suggest_joins(warehouse: Warehouse, table: str, columns: Mapping[str, str],
                   rows_of: exp.Expression, parameters: dict[str, Any]
                   ) -> tuple[list[SuggestedJoin], dict[str, dict[str, str]]]:
    """The joins from ``table`` (whose rows ``rows_of`` reads) to the other tables of its
    database that the names suggest and the data confirms, and those tables' columns."""
    others: dict[str, dict[str, str]] = {}
    for name in sorted(tables(warehouse, [table.split(".", 1)[0]]) - {table}):
        found = table_columns(warehouse, name)
        if found:
            others[name] = found
    time = time_column(columns)
    keys: dict[tuple[str, str], tuple[int, int] | None] = {}  # (rows, distinct keys)
    checked = []
    for candidate in candidate_joins(columns, others, skip=[time] if time else []):
        place = (candidate.table, candidate.key)
        try:
            if place not in keys:
                key_rows, distinct_keys = warehouse.query(key_check(*place)).rows[0]
                keys[place] = (int(key_rows), int(distinct_keys))
            counted = keys[place]
            if counted is None or counted[0] != counted[1] or counted[0] > MAX_KEY_ROWS:
                continue  # not a key (a join to it would repeat rows), or too large to check
            distinct, found = warehouse.query(key_coverage(rows_of, candidate),
                                              parameters).rows[0]
        except WarehouseError:  # a table that cannot be read (a broken view): no suggestion
            keys[place] = None
            continue
        checked.append(SuggestedJoin(candidate, *counted, int(distinct), int(found)))
    joins = choose_joins(checked)
    return joins, {j.candidate.table: others[j.candidate.table] for j in joins}


def _refusal(text: str, output: Path, warehouse: Warehouse, source: str,
             described: bool) -> str:
    """Why ``semantic validate`` would refuse the model with its suggested joins ("" if it
    would not). Without the ``described`` table (a file not loaded yet) the joined sources
    are checked alone."""
    try:
        model = load_model_text(text, str(output))
        check_offline(model)
        if not described:
            model = replace(model, endpoints=(),
                            sources=tuple(s for s in model.sources if s.name != source))
        compile_against(model, warehouse)
    except ModelError as exc:
        return exc.issues[0].message
    return ""


COMMANDS = {"init": cmd_init}
