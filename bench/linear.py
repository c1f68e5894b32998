"""Our own CPU per query grows linearly with its size: decoding, validation, planning and SQL.

For each shape of request (top-level filters, values in one ``in`` list, filters inside
groups nested 8 deep, measures and dimensions ordered), the request is made 2x larger step by
step, and the time to go from the JSON body to the rendered SQL is measured (best of
``--repeat`` runs, garbage collection paused, no warehouse involved). A linear cost doubles
with each step (ratio 2; a quadratic one 4); the fitted exponent over all steps (time grows
as size^k) is 1 for linear work, 2 for quadratic.

Usage (from the repository root)::

    .venv/bin/python bench/linear.py [--steps 5] [--repeat 5]

Exit status: 0 when every shape's exponent stays below 1.4, 1 otherwise.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.model.compiled import SourceTypes  # noqa: E402
from engine.model.compiler import compile_model  # noqa: E402
from engine.query.fields import parse_query  # noqa: E402
from engine.query.limits import QueryLimits  # noqa: E402
from engine.serving.plan import RollupStats  # noqa: E402
from engine.serving.router import plan_query  # noqa: E402
from semantic import load_model  # noqa: E402
from server.service.queries import decode_request  # noqa: E402

#: the reference table's types (SCENARIO.md), so no warehouse is needed
TYPES = SourceTypes(
    columns={"event_id": "String", "event_ts": "DateTime", "user_id": "String",
             "region": "String", "revenue": "Float64"},
    probed={("value", "region"): "String", ("value", "user_id"): "String",
            ("value", "revenue"): "Float64", ("value", "revenue > 0"): "UInt8",
            ("sum", "revenue", ""): "Float64",
            ("min", "revenue", ""): "Float64", ("max", "revenue", ""): "Float64"},
)
#: no bound gets in the way of the sizes measured
UNLIMITED = QueryLimits(members=10**9, filters=10**9, filter_depth=64, order=10**9,
                        list_values=10**9)


def _flat(n: int) -> dict[str, Any]:
    return {"filters": [{"member": "region", "op": "ne", "value": f"r{i}"} for i in range(n)]}


def _in_list(n: int) -> dict[str, Any]:
    return {"filters": [{"member": "user_id", "op": "in",
                         "value": [f"usr_{i:06d}" for i in range(n * 50)]}]}


def _nested(n: int) -> dict[str, Any]:
    node: dict[str, Any] = {"or": [{"member": "region", "value": f"r{i}"} for i in range(n)]}
    for depth in range(7):
        node = {"and" if depth % 2 else "or": [node, {"member": "user_id", "value": "u"}]}
    return {"filters": [node]}


def _having(n: int) -> dict[str, Any]:
    return {"dimensions": ["region"], "filters": [
        {"member": "total_revenue", "op": "gt", "value": i} for i in range(n)]}


SHAPES: dict[str, Callable[[int], dict[str, Any]]] = {
    "top-level filters": _flat,
    "values in one in list (x50)": _in_list,
    "filters in groups 8 deep": _nested,
    "measure filters (HAVING)": _having,
}


def measure(shape: Callable[[int], dict[str, Any]], n: int, repeat: int) -> float:
    compiled = compile_model(load_model(ROOT / "metrics.yaml"), {"events": TYPES})
    source = compiled.sources["events"]
    ready = {r.qualified_table: RollupStats(10 ** i, 100 * 10 ** i)
             for i, r in enumerate(compiled.rollups)}
    body = json.dumps({"measures": ["total_events"], **shape(n)}).encode()
    best = float("inf")
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeat):
            started = time.perf_counter()
            query = parse_query(decode_request(body), UNLIMITED, lambda _: "events")
            # memo=None: each run renders its SQL, which a repeated shape would skip
            plan_query(source, query, ready, memo=None)
            best = min(best, time.perf_counter() - started)
    finally:
        gc.enable()
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5, help="doublings per shape")
    parser.add_argument("--repeat", type=int, default=5, help="runs per size (best kept)")
    args = parser.parse_args()
    worst = 0.0
    for name, shape in SHAPES.items():
        print(f"{name}:")
        times: list[tuple[int, float]] = []
        for step in range(args.steps):
            n = 100 * 2 ** step
            seconds = measure(shape, n, args.repeat)
            ratio = f"x{seconds / times[-1][1]:.2f}" if times else ""
            print(f"  n={n:>6}  {seconds * 1000:9.1f} ms  {ratio}")
            times.append((n, seconds))
        (n0, t0), (n1, t1) = times[0], times[-1]
        exponent = math.log(t1 / t0) / math.log(n1 / n0)
        worst = max(worst, exponent)
        print(f"  time grows as size^{exponent:.2f}")
    verdict = "PASS" if worst < 1.4 else "FAIL"
    print(f"largest exponent: {worst:.2f} (linear: 1, quadratic: 2) {verdict}")
    return 0 if worst < 1.4 else 1


if __name__ == "__main__":
    sys.exit(main())
