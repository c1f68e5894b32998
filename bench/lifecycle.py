"""Rollup lifecycle costs on the embedded engine: backfill speed of `semantic apply` and the
ingestion overhead each rollup's materialized view adds.

    python bench/lifecycle.py --rows 5000000 --rows 50000000

For each size: a fresh data directory, `semantic demo`, then `semantic apply` (every rollup of
metrics.yaml built and backfilled; rows/s = source rows / build time). Then, on the 5M-row
directory only, `semantic demo --append` inserts of --insert-rows rows with no rollup, each
rollup alone, and all of them (models rewritten to keep one rollup; `apply` drops the others).
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / ".data"


def semantic(data_dir: Path, *args: str) -> tuple[str, float]:
    env = {k: v for k, v in os.environ.items() if k != "CLICKHOUSE_URL"}
    env["SEMANTIC_DATA_DIR"] = str(data_dir)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "server.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"semantic {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout, elapsed


def backfill(rows: int) -> Path:
    data_dir = DATA / f"lifecycle-{rows}"
    shutil.rmtree(data_dir, ignore_errors=True)
    _, loaded = semantic(data_dir, "demo", "--rows", str(rows))
    output, applied = semantic(data_dir, "apply")
    builds = re.findall(r"^create\s+(\S+):.*?\n(?:.*\n)*?\s+done in ([0-9.]+) s", output, re.M)
    print(f"\n{rows:,} rows: demo insert {loaded:.1f} s ({rows / loaded:,.0f} rows/s); "
          f"apply {applied:.1f} s for {len(builds)} rollups (process start included)")
    print(f"  {'rollup table':48} {'build s':>8} {'rows/s':>14}")
    for table, seconds in builds:
        print(f"  {table:48} {float(seconds):8.2f} {rows / float(seconds):14,.0f}")
    return data_dir


def _model_with(rollups: list[str], path: Path) -> Path:
    model = yaml.safe_load((ROOT / "metrics.yaml").read_text())
    variant = copy.deepcopy(model)
    source = variant["sources"]["events"]
    source["rollups"] = {k: v for k, v in source["rollups"].items() if k in rollups}
    if not source["rollups"]:
        del source["rollups"]
    variant.pop("endpoints", None)
    path.write_text(yaml.safe_dump(variant, sort_keys=False))
    return path


def ingestion(data_dir: Path, insert_rows: int, repeats: int) -> None:
    names = list(yaml.safe_load((ROOT / "metrics.yaml").read_text())
                 ["sources"]["events"]["rollups"])
    print(f"\ningestion: {insert_rows:,} rows per INSERT (semantic demo --append), "
          f"median of {repeats}")
    print(f"  {'rollups fed':24} {'seconds':>8} {'added':>9}")
    baseline = None
    for label, keep in [("none", []), *[(n, [n]) for n in names], ("all", names)]:
        model = _model_with(keep, data_dir.parent / f"model-{label}.yaml")
        semantic(data_dir, "--model", str(model), "apply")
        times = []
        for seed in range(repeats):
            _, elapsed = semantic(data_dir, "--model", str(model), "demo", "--append",
                                  "--rows", str(insert_rows), "--seed", str(100 + seed))
            times.append(elapsed)
        seconds = statistics.median(times)
        baseline = seconds if baseline is None else baseline
        added = f"{seconds - baseline:+.2f} s" if label != "none" else ""
        print(f"  {label:24} {seconds:8.2f} {added:>9}")
    print("  (seconds include ~1 s of process start and data generation, the same in every "
          "row; 'added' is the time the rollups' views add to the INSERT)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, action="append", help="source sizes (repeatable; "
                        "default 5000000)")
    parser.add_argument("--insert-rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sizes = args.rows or [5_000_000]
    dirs = {rows: backfill(rows) for rows in sizes}
    ingestion(dirs[min(sizes)], args.insert_rows, args.repeats)


if __name__ == "__main__":
    main()
