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


def _grid(low: float, high: float) -> tuple[float, ...]:
    """A round's 1,000 quantiles, spread evenly from ``low`` to ``high`` (ms)."""
    return tuple(low + (high - low) * k / 999 for k in range(1000))


def test_merged_pools_the_rounds_by_their_requests(compare: ModuleType) -> None:
    load = compare.Load
    fast = load(300, 2.5, 1.5, 2.0, 1, 0, _grid(1.0, 2.0))
    slow = load(100, 2.5, 3.5, 4.0, 0, 7, _grid(3.0, 4.0))
    both = compare.merged([fast, slow])
    assert (both.requests, both.seconds, both.errors, both.repeated) == (400, 5.0, 1, 7)
    assert both.rps == 80
    # three quarters of the requests are the fast round's: the pooled median is its 2/3
    # quantile, and the pooled p99 the slow round's 96 %
    assert both.p50_ms == pytest.approx(1 + 666 / 999)
    assert both.p99_ms == pytest.approx(3 + 959 / 999)
    # a single round merges into its own figures
    alone = compare.merged([fast])
    assert (alone.p50_ms, alone.p99_ms) == (fast.grid[499], fast.grid[989])
    assert alone.p50_ms == pytest.approx(1.5, abs=0.001)


def test_merged_ignores_rounds_that_measured_nothing(compare: ModuleType) -> None:
    load = compare.Load
    nothing = load(0, 2.5, 0.0, 0.0, 3)
    some = load(50, 2.5, 2.0, 2.0, 0, 0, _grid(2.0, 2.0))
    assert compare.merged([nothing, some]).p50_ms == 2.0
    assert compare.merged([nothing, some]).errors == 3
    assert not compare.merged([nothing, nothing]).measured


def test_side_by_side_alternates_the_servers(compare: ModuleType,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def run(port: int, lines: list[str], connections: int, duration: float, once: bool = False,
            grid: bool = False) -> object:
        calls.append((port, lines, connections, duration, once, grid))
        return compare.Load(10 * port, duration, 1.0, 1.0, 0, 0, _grid(port, port))

    monkeypatch.setattr(compare, "wrk", run)
    loads = compare.side_by_side({"a": 1, "b": 2}, lambda r: [f"line {r}"], 8, 5.0, once=True)
    # A B, B A, A B, B A, in rounds of whole seconds that read the same backwards
    assert [(port, lines, seconds) for port, lines, _, seconds, *_ in calls] == [
        (1, ["line 0"], 2), (2, ["line 0"], 2), (2, ["line 1"], 1), (1, ["line 1"], 1),
        (1, ["line 2"], 1), (2, ["line 2"], 1), (2, ["line 3"], 2), (1, ["line 3"], 2)]
    assert {(c, o, g) for _, _, c, _, o, g in calls} == {(8, True, True)}
    assert (loads["a"].requests, loads["a"].seconds, loads["a"].p50_ms) == (40, 6, 1.0)
    assert (loads["b"].requests, loads["b"].p50_ms) == (80, 2.0)


@pytest.mark.parametrize("duration", [2, 3, 4, 5, 6, 7, 10, 17])
def test_rounds_give_both_servers_seconds_of_the_same_middle(compare: ModuleType,
                                                             duration: int) -> None:
    """Under a steady drift of the machine's speed neither server is favoured: in the order
    side_by_side runs them, the middles of A's seconds and of B's are the same."""
    lengths = compare.round_lengths(duration)
    assert sum(lengths) in (duration, duration + 1) and len(lengths) % 2 == 0
    moments: dict[str, float] = {"a": 0.0, "b": 0.0}
    clock = 0.0
    for r, seconds in enumerate(lengths):
        for name in ("a", "b") if r % 2 == 0 else ("b", "a"):
            moments[name] += seconds * (clock + seconds / 2)
            clock += seconds
    assert moments["a"] == moments["b"]


def test_round_lengths_are_whole_seconds(compare: ModuleType) -> None:
    assert compare.round_lengths(5) == [2, 1, 1, 2]
    assert compare.round_lengths(10) == [3, 2, 2, 3]
    assert compare.round_lengths(4) == [1, 1, 1, 1]
    assert compare.round_lengths(2) == [1, 1]
    assert compare.round_lengths(1) == [1]  # too short to alternate: one round each
    assert compare.round_lengths(0.4) == [1]
