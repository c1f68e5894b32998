"""Parquet files are cut into Parquet batches read from the file a record batch at a time:
bounded rows and bytes per batch, every row once and in order, an empty file one empty batch."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow
import pytest
from pyarrow import parquet

from semantic.errors import SemanticError
from server.cli.files import ParquetBatches


def _write(path: Path, rows: int, group: int = 1000) -> None:
    table = pyarrow.table({"n": list(range(rows)), "s": [f"row {i}" for i in range(rows)]})
    parquet.write_table(table, path, row_group_size=group)


def _rows(data: bytes) -> list[int]:
    return [int(n) for n in parquet.read_table(io.BytesIO(data)).column("n").to_pylist()]


def test_batches_hold_every_row_once_in_order(tmp_path: Path) -> None:
    path = tmp_path / "many.parquet"
    _write(path, 25_000)
    cut = ParquetBatches(path, 10_000, 64 * 2**20)
    batches = list(cut)
    assert len(cut) == len(batches) == 3
    assert [b.rows for b in batches] == [10_000, 10_000, 5_000]
    assert [b.line_offset for b in batches] == [0, 10_000, 20_000]
    assert [n for b in batches for n in _rows(b.body)] == list(range(25_000))
    assert _rows(cut.sample(10)) == list(range(10))


def test_bytes_bound_the_rows_per_batch(tmp_path: Path) -> None:
    path = tmp_path / "wide.parquet"
    _write(path, 5_000)
    cut = ParquetBatches(path, 100_000, 20_000)  # about 20 bytes a row: ~500 rows a batch
    batches = list(cut)
    assert len(batches) == len(cut) > 5
    assert all(len(b.body) <= 20_000 for b in batches)
    assert sum(b.rows for b in batches) == 5_000


def test_an_empty_file_is_one_empty_batch_and_a_bad_one_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.parquet"
    _write(path, 0)
    [batch] = list(ParquetBatches(path, 1000, 2**20))
    assert batch.rows == 0 and parquet.read_table(io.BytesIO(batch.body)).num_rows == 0
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(SemanticError, match="cannot read .* as Parquet"):
        ParquetBatches(bad, 1000, 2**20)
