"""Served-vs-raw latency of a mix of representative ``POST /v1/query`` requests, through HTTP.

Built on ``bench/endpoints.py`` (same data directory, CLI preparation, server and client):

1. prepares the reference data in ``bench/.data/rows-N`` (``semantic demo`` then
   ``semantic apply``; with ``--keep`` an existing directory skips ``demo``);
2. starts ``semantic serve`` on a free local port;
3. for every query of ``QUERIES``: times sequential keep-alive requests routed, then with
   ``force_raw``, and checks that the routed answer agrees with the raw one;
4. prints one line per query (tables read, served and raw p50/p99, speed-up at p50), the
   geometric mean speed-up and a PASS/FAIL correctness verdict.

Agreement: integers equal, floats within 1e-9 relative, t-digest quantiles (``median``,
``quantile``, and metrics built on them) within 5 % relative, since merged digests are not a
one-pass digest. ``uniq()`` measures must be equal: rollups store its exact state. Repeated
answers to one request must agree with the same tolerances: a one-pass ``quantileTDigest``
over the raw table varies between identical requests (threads merge digests in any order).
On an error or a difference the query, the difference and ``POST /v1/explain`` are printed.

Usage (from the repository root)::

    .venv/bin/python bench/queries.py [--rows 5000000] [--requests 200] [--raw-requests 30]
                                      [--port P] [--keep]

Exit status: 0 when every answer agrees, 1 on a difference or a failed query, 2 when the data
could not be prepared or the server failed. Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Run as a script, so bench/ is on sys.path (see bench/endpoints.py for the shared pieces).
from endpoints import (
    HOST,
    RAW_TABLE,
    BenchError,
    Client,
    Mismatch,
    Reply,
    cli_env,
    free_port,
    percentile,
    prepare,
    run_cli,
    say,
    shut_down,
    start_server,
    wait_healthy,
)

FLOAT_RTOL = 1e-9
TDIGEST_RTOL = 0.05
SERVED_BUDGET_S = 60.0  # per query
RAW_BUDGET_S = 180.0  # per query
SERVED_WARMUP = 5
RAW_WARMUP = 1

#: data span: 2026-01-01 .. 2026-03-31 UTC
ALL_2026_Q1 = {"from": "2026-01-01", "to": "2026-04-01"}


@dataclass(frozen=True)
class Spec:
    name: str
    body: dict[str, Any]
    #: "rollup": rollups only; "mixed": rollup and raw pieces; "raw": the raw table only
    expect: str


QUERIES: tuple[Spec, ...] = (
    Spec("metrics_endpoint",
         {"measures": ["total_events", "unique_users", "total_revenue"]}, "rollup"),
    Spec("breakdown_endpoint",
         {"measures": ["total_events"], "dimensions": ["region"], "grain": "day"}, "rollup"),
    Spec("month_from_daily",
         {"measures": ["total_events", "total_revenue", "avg_revenue"], "grain": "month"},
         "rollup"),
    Spec("week_by_region",
         {"measures": ["total_events", "min_revenue", "max_revenue"], "dimensions": ["region"],
          "grain": "week"}, "rollup"),
    Spec("region_eq_by_day",
         {"measures": ["total_events", "total_revenue"], "grain": "day",
          "filters": [{"member": "region", "op": "eq", "value": "us-east"}]}, "rollup"),
    Spec("region_in_by_month",
         {"measures": ["total_events", "avg_revenue"], "dimensions": ["region"],
          "grain": "month",
          "filters": [{"member": "region", "op": "in", "values": ["us-east", "eu-central"]}]},
         "rollup"),
    Spec("nested_or_by_week",
         {"measures": ["total_events", "paying_events"], "dimensions": ["region"],
          "grain": "week",
          "filters": [{"or": [
              {"member": "region", "op": "eq", "value": "us-west"},
              {"and": [{"member": "region", "op": "starts_with", "value": "eu"},
                       {"member": "region", "op": "ne", "value": "eu-west"}]}]}]}, "rollup"),
    Spec("uniq_users_by_day",
         {"measures": ["unique_users"], "grain": "day"}, "rollup"),
    Spec("revenue_per_user_month",
         {"measures": ["revenue_per_user", "unique_users"], "grain": "month"}, "rollup"),
    Spec("paying_share_week",
         {"measures": ["paying_share"], "dimensions": ["region"], "grain": "week"}, "rollup"),
    Spec("quantiles_by_region",
         {"measures": ["median_revenue", "revenue_p90"], "dimensions": ["region"]}, "rollup"),
    Spec("having_region_day",
         {"measures": ["total_events"], "dimensions": ["region"], "grain": "day",
          "filters": [{"member": "total_events", "op": "gt", "value": 18500}]}, "rollup"),
    Spec("unaligned_range",
         {"measures": ["total_events", "total_revenue", "avg_revenue"], "dimensions": ["region"],
          "time_range": {"from": "2026-01-03T05:17:00Z", "to": "2026-02-10T13:45:00Z"}},
         "mixed"),
    Spec("aligned_range_by_day",
         {"measures": ["total_events", "unique_users"], "grain": "day",
          "time_range": {"from": "2026-02-01", "to": "2026-03-01"}}, "rollup"),
    # Relative to the clock: "last 30 days" is empty for data in Q1 2026 read later; the
    # last 60 complete months hold it until 2031.
    Spec("relative_last_60_months",
         {"measures": ["total_events", "total_revenue"], "grain": "month",
          "time_range": "last 60 months"}, "rollup"),
    Spec("berlin_day_hourly",
         {"measures": ["total_events", "paying_events"], "grain": "day",
          "timezone": "Europe/Berlin", "time_range": ALL_2026_Q1}, "rollup"),
    # +05:30 is not a whole hour away from UTC: no rollup can cut its days.
    Spec("kolkata_day_raw",
         {"measures": ["total_events", "paying_events"], "grain": "day",
          "timezone": "Asia/Kolkata", "time_range": ALL_2026_Q1}, "raw"),
    Spec("order_limit_offset",
         {"measures": ["total_revenue"], "dimensions": ["region"], "grain": "day",
          "order": ["-total_revenue", "region", "event_ts"], "limit": 10, "offset": 5},
         "rollup"),
)


@dataclass
class Result:
    spec: Spec
    tables: list[str] = field(default_factory=list)
    rows: int = 0
    served: list[float] = field(default_factory=list)
    raw: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    routing_ok: bool = True
    approximate: bool = False
    stopped_early: bool = False


# -- correctness ---------------------------------------------------------------------------


def tdigest_members(meta: dict[str, Any]) -> set[str]:
    """Measures (and metrics built on them) whose rollup answer is a merged t-digest."""
    names: set[str] = set()
    for source in meta["sources"]:
        names |= {m["name"] for m in source["measures"] if "t-digest" in (m["exactness"] or "")}
        names |= {m["name"] for m in source["metrics"] if names & set(m["measures"])}
    return names


def close(served: Any, raw: Any, rtol: float) -> bool:
    if isinstance(served, bool) or isinstance(raw, bool):
        return bool(served is raw)
    if isinstance(served, int) and isinstance(raw, int):
        return served == raw
    if isinstance(served, int | float) and isinstance(raw, int | float):
        if math.isnan(served) or math.isnan(raw):
            return math.isnan(served) and math.isnan(raw)
        return math.isclose(served, raw, rel_tol=rtol, abs_tol=0.0)
    return bool(served == raw)


def compare(served: list[dict[str, Any]], raw: list[dict[str, Any]],
            approximate: set[str]) -> list[str]:
    """Differences between the routed and the raw rows (row by row: both are ordered)."""
    if len(served) != len(raw):
        return [f"{len(served)} served rows vs {len(raw)} raw rows"]
    diffs = []
    for index, (got, want) in enumerate(zip(served, raw, strict=True)):
        if list(got) != list(want):
            diffs.append(f"row {index}: columns {list(got)} vs {list(want)}")
            continue
        for column, value in got.items():
            rtol = TDIGEST_RTOL if column in approximate else FLOAT_RTOL
            if not close(value, want[column], rtol):
                diffs.append(f"row {index} {column}: served {value!r}, raw {want[column]!r}")
    return diffs


def routing_ok(expect: str, tables: list[str]) -> bool:
    raw = RAW_TABLE in tables
    rollups = [t for t in tables if t != RAW_TABLE]
    return {"rollup": not raw and bool(rollups), "mixed": raw and bool(rollups),
            "raw": raw and not rollups}[expect]


def explain(client: Client, body: dict[str, Any]) -> str:
    try:
        reply, _ = client.call("POST", "/v1/explain", json.dumps(body).encode())
    except BenchError as exc:
        return f"/v1/explain failed: {exc}"
    try:
        return json.dumps(reply.json(), indent=1)
    except ValueError:
        return f"HTTP {reply.status}: {reply.body[:500]!r}"


# -- running one query ---------------------------------------------------------------------


def timed(client: Client, body: dict[str, Any], warmup: int, count: int, budget_s: float,
          approximate: set[str]) -> tuple[Reply, list[float], bool]:
    """The first reply and the latencies of ``count`` requests after ``warmup`` untimed ones.

    Like ``endpoints.measure``, every reply must be 200 JSON and equal to the first; here
    t-digest columns may vary within their tolerance, because a one-pass ``quantileTDigest``
    over the raw table is not deterministic (threads merge their digests in varying order).
    """
    payload = json.dumps(body).encode()
    first: Reply | None = None
    latencies: list[float] = []
    stopped_early = False
    deadline = math.inf  # set when the warm-up is over
    for index in range(warmup + count):
        if index == warmup:
            deadline = time.monotonic() + budget_s
        elif index > warmup and time.monotonic() > deadline:
            stopped_early = True
            break
        reply, ms = client.call("POST", "/v1/query", payload)
        if reply.status != 200 or not reply.content_type.startswith("application/json"):
            raise BenchError(f"HTTP {reply.status} ({reply.content_type}): {reply.body[:300]!r}")
        if first is None:
            first = reply
        else:
            diffs = compare(reply.json()["data"], first.json()["data"], approximate)
            if diffs:
                raise Mismatch(f"the answer changed between identical requests: {diffs[0]}")
        if index >= warmup:
            latencies.append(ms)
    assert first is not None
    return first, latencies, stopped_early


def run_query(client: Client, spec: Spec, args: argparse.Namespace,
              approximate: set[str]) -> Result:
    result = Result(spec)
    result.approximate = bool(approximate & set(spec.body.get("measures", ())))
    served: Reply | None = None
    raw: Reply | None = None
    try:
        served, result.served, early = timed(client, spec.body, SERVED_WARMUP, args.requests,
                                             SERVED_BUDGET_S, approximate)
        result.stopped_early |= early
    except (BenchError, Mismatch) as exc:
        result.problems.append(f"routed: {exc}")
    try:
        raw, result.raw, early = timed(client, {**spec.body, "force_raw": True}, RAW_WARMUP,
                                       args.raw_requests, RAW_BUDGET_S, approximate)
        result.stopped_early |= early
    except (BenchError, Mismatch) as exc:
        result.problems.append(f"force_raw: {exc}")
    if served is not None:
        meta = served.json()["meta"]
        result.tables, result.rows = meta["tables"], meta["rows"]
        result.routing_ok = routing_ok(spec.expect, result.tables)
        if served.table != meta["table"]:
            result.problems.append(f"header {served.table!r} != meta.table {meta['table']!r}")
    if served is not None and raw is not None:
        got, want = served.json(), raw.json()
        if want["meta"]["tables"] != [RAW_TABLE]:
            result.problems.append(f"force_raw read {want['meta']['tables']}")
        if got["meta"]["truncated"] != want["meta"]["truncated"]:
            result.problems.append("meta.truncated differs")
        if want["meta"]["truncated"] and "limit" not in spec.body:
            result.problems.append("the answer was truncated by the default row limit")
        if not want["data"]:
            result.problems.append("the raw answer has no rows: the query proves nothing")
        diffs = compare(got["data"], want["data"], approximate)
        if diffs:
            shown = "; ".join(diffs[:5]) + (f"; ... {len(diffs) - 5} more" if len(diffs) > 5
                                             else "")
            result.problems.append(f"{len(diffs)} difference(s): {shown}")
    if result.problems:
        say(f"  FAIL {spec.name}: body {json.dumps(spec.body)}")
        for problem in result.problems:
            say(f"    {problem}")
        say("    /v1/explain:")
        for line in explain(client, spec.body).splitlines():
            say(f"      {line}")
    return result


# -- report --------------------------------------------------------------------------------


def short_tables(tables: list[str], names: dict[str, str]) -> str:
    return "+".join(names.get(t, "raw" if t == RAW_TABLE else t) for t in tables) or "?"


def report(results: list[Result], names: dict[str, str], rows: int,
           args: argparse.Namespace) -> bool:
    say()
    say(f"latency through HTTP (ms), {rows:,} rows, sequential keep-alive POST /v1/query on "
        f"{HOST}; served n={args.requests}, raw (force_raw) n={args.raw_requests}")
    header = (f"{'query':<24}{'tables':<34}{'rows':>5}{'srv p50':>9}{'srv p99':>9}"
              f"{'raw p50':>9}{'raw p99':>9}{'x p50':>8}  check")
    say(header)
    say("-" * len(header))
    speedups = []
    for r in results:
        s50, s99 = percentile(r.served, 0.5), percentile(r.served, 0.99)
        w50, w99 = percentile(r.raw, 0.5), percentile(r.raw, 0.99)
        ratio = w50 / s50 if r.served and r.raw else float("nan")
        if not math.isnan(ratio):
            speedups.append(ratio)
        check = "ok" if not r.problems else "FAIL"
        if r.approximate and not r.problems:
            check = "ok ~5%"
        if not r.routing_ok:
            check += f" (expected {r.spec.expect})"
        if r.stopped_early:
            check += " (budget)"
        say(f"{r.spec.name:<24}{short_tables(r.tables, names):<34}{r.rows:>5}{s50:>9.2f}"
            f"{s99:>9.2f}{w50:>9.2f}{w99:>9.2f}{ratio:>7.1f}x  {check}")
    say()
    say("tables: rollup names; 'raw' = analytics.events; '+' = pieces merged in one query. "
        "~5% = t-digest quantiles, allowed 5 % relative difference (merged digests); "
        "everything else: integers equal, floats within 1e-9 relative.")
    geo = math.exp(sum(math.log(x) for x in speedups) / len(speedups)) if speedups else math.nan
    say(f"geometric mean speed-up at p50 over {len(speedups)} queries: {geo:.1f}x")
    routed = [r for r in results if not r.routing_ok]
    say("routing: " + ("as expected" if not routed else
                       "UNEXPECTED for " + ", ".join(r.spec.name for r in routed)))
    failed = [r.spec.name for r in results if r.problems]
    ok = not failed
    say(f"correctness (served == raw): {'PASS' if ok else 'FAIL'} "
        f"({len(results) - len(failed)}/{len(results)} queries agree"
        + (f"; failed: {', '.join(failed)})" if failed else ")"))
    return ok


# -- main ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000,
                        help="rows of reference data (default 5,000,000)")
    parser.add_argument("--requests", type=int, default=200,
                        help="timed routed requests per query (default 200)")
    parser.add_argument("--raw-requests", type=int, default=30,
                        help="timed force_raw requests per query (default 30)")
    parser.add_argument("--port", type=int, default=None,
                        help="server port (default: a free port)")
    parser.add_argument("--keep", action="store_true",
                        help="reuse bench/.data/rows-N as it is if it exists: skip `semantic "
                        "demo` (its row count is still checked); `semantic apply` always runs")
    args = parser.parse_args(argv)
    if args.rows <= 0 or args.requests <= 0 or args.raw_requests <= 0:
        parser.error("--rows, --requests and --raw-requests must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data_dir = (Path(__file__).resolve().parent / ".data" / f"rows-{args.rows}").resolve()
    env = cli_env(data_dir)
    try:
        if args.keep and data_dir.is_dir():
            say(f"data directory: {data_dir} (--keep: reused, demo skipped)")
            run_cli(["apply"], env)
        else:
            prepare(data_dir, args.rows, env)
    except BenchError as exc:
        say(f"ERROR: {exc}")
        return 2

    port = args.port or free_port()
    log_path = data_dir.parent / f"serve-{data_dir.name}.log"
    say(f"starting semantic serve on http://{HOST}:{port} (log: {log_path})")
    proc = start_server(port, env, log_path)
    client: Client | None = None
    try:
        began = time.perf_counter()
        wait_healthy(proc, port, log_path, data_dir)
        say(f"  healthy in {time.perf_counter() - began:.1f} s")
        client = Client(port)
        reply, _ = client.call("GET", "/v1/meta")
        meta = reply.json()
        names = {r["table"]: r["name"] for s in meta["sources"] for r in s["rollups"]}
        not_ready = [r["name"] for s in meta["sources"] for r in s["rollups"] if not r["ready"]]
        if not_ready:
            raise BenchError(f"rollups not ready after apply: {', '.join(not_ready)}")
        approximate = tdigest_members(meta)
        results = []
        for spec in QUERIES:
            say(f"  {spec.name}")
            results.append(run_query(client, spec, args, approximate))
            if proc.poll() is not None:
                raise BenchError(f"the server exited with {proc.returncode} during the run")
        total = next((r for r in results if r.spec.name == "metrics_endpoint"), None)
        if total is not None and not total.problems:
            body = json.dumps({"measures": ["total_events"], "force_raw": True}).encode()
            counted = client.call("POST", "/v1/query", body)[0].json()["data"][0]["total_events"]
            if counted != args.rows:
                raise BenchError(f"{data_dir} holds {counted:,} rows, not {args.rows:,}")
        ok = report(results, names, args.rows, args)
        return 0 if ok else 1
    except BenchError as exc:
        say(f"ERROR: {exc}")
        return 2
    finally:
        shut_down(client, proc)


if __name__ == "__main__":
    sys.exit(main())
