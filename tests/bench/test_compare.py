"""The side-by-side benchmark's table formatting and its ranges asked once (bench/compare.py)."""

from __future__ import annotations

import importlib.util
import sys
from datetime import date
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "compare.py"


@pytest.fixture(scope="module")
def compare() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_compare", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


def test_row_unmeasured_figures_print_a_dash(compare: ModuleType) -> None:
    load = compare.Load
    loads = {1: load(1, 3.0, 1867.0, 1867.0, 0), 8: load(0, 3.0, 0.0, 0.0, 2),
             32: load(90, 3.0, 5.0, 9.0, 0)}
    row = compare._row("/api/metrics", "raw", loads)
    assert row == ("| /api/metrics | raw | 1867.00 | 1867.00 | 0.3 | 1867.0 | - | - | 30 | 9.0 "
                   "| 2 |")
    assert compare._cell(loads[8]) == "-"
    assert compare._cell(loads[32]) == "5.00 / 9.00"
    assert compare._note_unmeasured(loads.values()) == ["", compare.UNMEASURED_NOTE]
    assert compare._note_unmeasured([loads[1], loads[32]]) == []


def test_ranges_asked_once_disjoint_unseen_and_fixed(compare: ModuleType) -> None:
    seen = set(compare.distinct_ranges())
    slices = compare.ranges_asked_once(seen, 3)
    assert slices == compare.ranges_asked_once(seen, 3)
    assert len({len(x) for x in slices}) == 1
    every = [r for part in slices for r in part]
    # 28,937 pairs overlap the data, less the 500 distinct ranges, cut in three equal slices
    assert len(every) == len(set(every)) == 28_437
    assert not set(every) & seen
    for pair in every:
        start, end = (date.fromisoformat(x.split("=")[1]) for x in pair.split("&"))
        assert date(2025, 10, 1) <= start < end <= date(2026, 7, 1)
        assert start < date(2026, 4, 1) and end > date(2026, 1, 1)
