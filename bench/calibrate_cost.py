"""Measure what routing's cost model needs: nanoseconds per byte read, by kind of work.

Runs on a data directory prepared by ``semantic demo`` + ``semantic apply`` (the reference
model), with nothing else using it:

    SEMANTIC_DATA_DIR=.data/chdb .venv/bin/python bench/calibrate_cost.py

For each case it times the query (median of repeats, the ``SELECT 1`` floor subtracted) and
divides by the uncompressed bytes of the columns read (``system.parts_columns``). The ratios
to the plain-column case are the weights in ``engine/clickhouse.py`` (``read_weight`` and
``raw_weight`` of each component kind).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from semantic import load_model  # noqa: E402
from server.runtime.compiled import Runtime  # noqa: E402
from server.settings import load_settings  # noqa: E402
from server.warehouse.statements import Warehouse  # noqa: E402


def timed(warehouse: Warehouse, sql: str, repeat: int = 30) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        warehouse.query_columns(sql)
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1e9


def main() -> None:
    settings = load_settings()
    warehouse = Warehouse(settings.dsn, settings.location, 1)
    runtime = Runtime.start(load_model(settings.model_path), warehouse)
    tables = {r.name: r for r in runtime.compiled.rollups}
    raw = runtime.compiled.sources["events"].source.table
    sizes = runtime.ready

    def rollup(name: str, columns: list[str], select: str, group: str = "") -> tuple[str, int]:
        rollup = tables[name]
        stats = sizes[rollup.qualified_table]
        by = f" GROUP BY {group}" if group else ""
        return (f"SELECT {select} FROM {rollup.qualified_table}{by}",
                sum(stats.column_bytes.get(c, 0) for c in columns))

    def source(columns: list[str], select: str, group: str = "") -> tuple[str, int]:
        stats = sizes[raw]
        by = f" GROUP BY {group}" if group else ""
        return (f"SELECT {select} FROM {raw}{by}",
                sum(stats.column_bytes.get(c, 0) for c in columns))

    cases = {
        "rollup: plain columns (sum)": rollup(
            "region_hourly", ["count_all", "sum_revenue", "event_ts_hour", "region"],
            "sum(count_all), sum(sum_revenue)", "event_ts_hour, region"),
        "rollup: uniq states": rollup("daily", ["uniq_user_id", "event_ts_day"],
                                      "uniqMerge(uniq_user_id)", "event_ts_day"),
        "rollup: t-digest states": rollup(
            "region_daily", ["tdigest_revenue", "event_ts_day", "region"],
            "quantileTDigestMerge(0.5)(tdigest_revenue)", "event_ts_day, region"),
        "raw: count + sum": source(["revenue"], "count(), sum(revenue)"),
        "raw: uniq": source(["user_id"], "uniq(user_id)"),
        "raw: uniqExact": source(["user_id"], "uniqExact(user_id)"),
        "raw: t-digest": source(["revenue"], "quantileTDigest(0.5)(revenue)"),
        "raw: group by day, region": source(["event_ts", "region"],
                                            "toDate(event_ts) AS d, region, count()",
                                            "d, region"),
    }
    floor = timed(warehouse, "SELECT 1")
    base = None
    print(f"floor (SELECT 1): {floor / 1e6:.2f} ms; rows: {sizes[raw].rows:,}")
    print("| case | ms | bytes | ns/byte | weight |")
    print("|---|--:|--:|--:|--:|")
    for name, (sql, size) in cases.items():
        # one output row: the answer's size is the same whichever table serves it
        spent = max(timed(warehouse, f"SELECT sum(sipHash64(*)) FROM ({sql})") - floor, 1.0)
        per_byte = spent / max(size, 1)
        base = base or per_byte
        print(f"| {name} | {spent / 1e6:.2f} | {size:,} | {per_byte:.3f} | "
              f"{per_byte / base:.1f} |")
    warehouse.close()
    os._exit(0)


if __name__ == "__main__":
    main()
