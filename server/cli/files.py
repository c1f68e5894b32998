"""Data files for ``load`` and ``init``: their format, their batches, the columns ClickHouse
infers for them, and a source table made from one."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow
from pyarrow import parquet

from engine.dialect.render import render
from engine.ingestion.files import (
    create_source_table,
    describe_file,
    time_column,
)
from semantic.errors import SemanticError
from semantic.model import Source
from server.cli.arguments import LOAD_FORMATS
from server.cli.output import say
from server.warehouse.availability import WarehouseError
from server.warehouse.catalog import table_columns
from server.warehouse.statements import Warehouse


@dataclass(frozen=True, slots=True)
class Batch:
    body: bytes
    line_offset: int  # added to the body's line numbers to give the file's
    rows: int


class ParquetBatches:
    """A Parquet file cut into Parquet files of at most ``size`` rows (fewer when that many
    would exceed ``max_bytes``), read from the file a record batch at a time, so a file of any
    size loads in bounded memory; each batch's ``line_offset`` is the rows before it."""

    def __init__(self, path: Path, size: int, max_bytes: int) -> None:
        try:
            self.file = parquet.ParquetFile(path, memory_map=True)
        except (pyarrow.ArrowException, OSError) as exc:
            raise SemanticError(f"cannot read {path} as Parquet: {exc}") from None
        meta = self.file.metadata
        self.total = int(meta.num_rows)
        # the uncompressed size bounds what a batch's own Parquet file takes
        uncompressed = sum(int(meta.row_group(i).total_byte_size)
                           for i in range(meta.num_row_groups))
        per_row = max(1, uncompressed // max(self.total, 1))
        self.rows: int = max(1, min(size, max_bytes // (2 * per_row)))

    def __len__(self) -> int:
        return max(1, -(-self.total // self.rows))

    def __iter__(self) -> Iterator[Batch]:
        offset = 0
        for record_batch in self.file.iter_batches(batch_size=self.rows):
            yield Batch(_parquet_bytes(pyarrow.Table.from_batches([record_batch])), offset,
                        record_batch.num_rows)
            offset += record_batch.num_rows
        if offset == 0:  # no rows: one empty batch, as a file of other formats gives
            yield Batch(_parquet_bytes(self.file.schema_arrow.empty_table()), 0, 0)

    def sample(self, rows: int = 1000) -> bytes:
        """The first rows as a Parquet file, for ClickHouse to infer the columns from."""
        for record_batch in self.file.iter_batches(batch_size=rows):
            return _parquet_bytes(pyarrow.Table.from_batches([record_batch]))
        return _parquet_bytes(self.file.schema_arrow.empty_table())


def _parquet_bytes(table: pyarrow.Table) -> bytes:
    sink = io.BytesIO()
    parquet.write_table(table, sink)
    return sink.getvalue()


def batches(data: bytes, content_type: str, by_lines: bool, size: int,
            max_bytes: int) -> list[Batch]:
    """The file cut into batches of at most ``size`` rows and ``max_bytes`` bytes (CSV keeps
    its header in every batch); a JSON array goes whole (Parquet: ``ParquetBatches``)."""
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


def file_columns(warehouse: Warehouse, path: Path, data: bytes, fmt: str) -> dict[str, str]:

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


