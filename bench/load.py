"""Sustained load: a mix of endpoints and queries at N concurrent connections for a fixed time,
then the same with slow raw-table queries mixed in, while a prober times ``/healthz``.

One run:

1. prepares the reference data in its own embedded data directory (as ``bench/endpoints.py``);
2. starts ``semantic serve`` on a local port and waits for ``/readyz``;
3. phase "mix": ``--connections`` keep-alive connections send the mix below for
   ``--duration`` seconds; a separate connection probes ``/healthz`` every 0.25 s;
4. phase "mix + slow": the same, with ``--slow`` of the connections sending slow raw-table
   queries instead;
5. prints per phase: requests, statuses, errors, requests/s, p50/p99 (per request kind too),
   the server's RSS before and after, and the health probe's worst and p99 latency.

Usage (from the repository root)::

    .venv/bin/python bench/load.py [--rows 2000000] [--duration 60] [--connections 32]
                                   [--slow 4] [--data-dir DIR] [--port P]

Exit status: 0 when the mix phase had no errors and health answered every probe within 1 s
in both phases, 1 otherwise, 2 when the data or the server failed. Only 127.0.0.1 is
contacted, for a bounded time.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

# Run as a script, so bench/ is on sys.path (see bench/endpoints.py for the shared pieces).
from endpoints import (
    ROOT,
    BenchError,
    Client,
    cli_env,
    free_port,
    percentile,
    prepare,
    say,
    shut_down,
    start_server,
    wait_healthy,
)

HEALTH_EVERY_S = 0.25
HEALTH_BUDGET_MS = 1000.0


def _query(body: dict[str, object]) -> tuple[str, str, bytes]:
    return "POST", "/v1/query", json.dumps(body).encode()


#: (kind, weight, method, path, body)
MIX: list[tuple[str, int, str, str, bytes | None]] = [
    ("metrics", 20, "GET", "/api/metrics", None),
    ("breakdown", 15, "GET", "/api/breakdown", None),
    ("breakdown?region&range", 10, "GET",
     "/api/breakdown?region=eu-central&from=2026-03-01&to=2026-03-08", None),
    ("query region x day", 15, *_query({
        "measures": ["total_events", "total_revenue"], "dimensions": ["region"],
        "grain": "day", "time_range": {"from": "2026-02-01", "to": "2026-03-01"}})),
    ("query unaligned", 10, *_query({
        "measures": ["total_events", "paying_share"], "dimensions": ["region"],
        "time_range": {"from": "2026-01-10T06:30", "to": "2026-02-03T18:00"}})),
    ("query or + having", 10, *_query({
        "measures": ["total_events", "avg_revenue"], "dimensions": ["region"], "grain": "day",
        "time_range": {"from": "2026-03-01", "to": "2026-03-08"},
        "filters": [{"or": [{"member": "region", "value": "us-east"},
                            {"member": "region", "op": "starts_with", "value": "eu-"}]},
                    {"member": "total_events", "op": "gte", "value": 100}],
        "order": ["-total_events"], "limit": 5})),
    ("explain", 5, "POST", "/v1/explain", json.dumps({
        "measures": ["total_events"], "dimensions": ["region"], "grain": "hour",
        "time_range": {"from": "2026-01-05", "to": "2026-01-06"}}).encode()),
    ("meta", 5, "GET", "/v1/meta", None),
    ("readyz", 5, "GET", "/readyz", None),
]

#: raw-table work that takes a while at millions of rows
SLOW = ("slow raw", 1, *_query({
    "measures": ["unique_users", "median_revenue", "total_events"], "dimensions": ["region"],
    "grain": "hour", "force_raw": True, "limit": 100000}))


@dataclass
class Phase:
    name: str
    latencies: dict[str, list[float]] = field(default_factory=dict)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    health_ms: list[float] = field(default_factory=list)
    health_failures: int = 0
    rss_before_kb: int = 0
    rss_after_kb: int = 0
    seconds: float = 0.0


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def worker(port: int, deadline: float, phase: Phase, lock: threading.Lock, seed: int,
           slow: bool) -> None:
    rng = random.Random(seed)
    kinds = [SLOW] if slow else MIX
    weights = [k[1] for k in kinds]
    client = Client(port)
    try:
        while time.monotonic() < deadline:
            kind, _, method, path, body = rng.choices(kinds, weights)[0]
            try:
                reply, elapsed = client.call(method, path, body)
                status = reply.status
            except BenchError as exc:
                with lock:
                    phase.failures.append(f"{kind}: {exc}")
                    phase.statuses[(kind, 0)] += 1
                continue
            with lock:
                phase.statuses[(kind, status)] += 1
                phase.latencies.setdefault(kind, []).append(elapsed)
                if status >= 400 and len(phase.failures) < 20:
                    phase.failures.append(f"{kind}: {status} {reply.body[:200]!r}")
    finally:
        client.close()


def prober(port: int, deadline: float, phase: Phase) -> None:
    client = Client(port)
    try:
        while time.monotonic() < deadline:
            try:
                reply, elapsed = client.call("GET", "/healthz")
                phase.health_ms.append(elapsed)
                if reply.status != 200:
                    phase.health_failures += 1
            except BenchError:
                phase.health_failures += 1
            time.sleep(HEALTH_EVERY_S)
    finally:
        client.close()


def run_phase(name: str, port: int, pid: int, args: argparse.Namespace, slow: int) -> Phase:
    phase = Phase(name)
    phase.rss_before_kb = rss_kb(pid)
    lock = threading.Lock()
    started = time.monotonic()
    deadline = started + args.duration
    threads = [threading.Thread(target=worker, args=(port, deadline, phase, lock, seed,
                                                     seed < slow), daemon=True)
               for seed in range(args.connections)]
    threads.append(threading.Thread(target=prober, args=(port, deadline, phase), daemon=True))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=args.duration + 120)
    phase.seconds = time.monotonic() - started
    phase.rss_after_kb = rss_kb(pid)
    return phase


def report(phase: Phase, slow_kind: str) -> bool:
    mix_kinds = {k for k in phase.latencies if k != slow_kind}
    mix = [v for k in mix_kinds for v in phase.latencies[k]]
    total = sum(phase.statuses.values())
    errors = sum(n for (kind, status), n in phase.statuses.items()
                 if kind != slow_kind and (status == 0 or status >= 400))
    by_status = Counter[int]()
    for (_, status), n in phase.statuses.items():
        by_status[status] += n
    say(f"\n== {phase.name}: {total:,} requests in {phase.seconds:.1f} s "
        f"({total / phase.seconds:,.0f}/s); statuses {dict(sorted(by_status.items()))}")
    say(f"   mix: {len(mix):,} requests, {errors} errors, p50 {percentile(mix, 0.5):.1f} ms, "
        f"p99 {percentile(mix, 0.99):.1f} ms")
    for kind in sorted(phase.latencies, key=lambda k: -len(phase.latencies[k])):
        values = phase.latencies[kind]
        codes = {s: n for (k, s), n in phase.statuses.items() if k == kind}
        say(f"   {kind:<24} {len(values):>7,}  p50 {percentile(values, 0.5):8.1f} ms  "
            f"p99 {percentile(values, 0.99):8.1f} ms  {codes}")
    health = phase.health_ms
    say(f"   /healthz probes: {len(health)} answered, {phase.health_failures} failed, "
        f"p99 {percentile(health, 0.99):.1f} ms, worst {max(health, default=0):.1f} ms")
    say(f"   server RSS: {phase.rss_before_kb / 1024:,.0f} MB -> "
        f"{phase.rss_after_kb / 1024:,.0f} MB")
    for line in phase.failures[:5]:
        say(f"   ! {line}")
    healthy = phase.health_failures == 0 and max(health, default=0) < HEALTH_BUDGET_MS
    return healthy and (errors == 0 or phase.name != "mix")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per phase")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--slow", type=int, default=4, help="connections sending slow raw "
                        "queries in the second phase")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--port", type=int, default=None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data_dir = args.data_dir or ROOT / ".data" / f"bench-{args.rows}"
    env = cli_env(data_dir)
    proc = None
    try:
        prepare(data_dir, args.rows, env)
        port = args.port or free_port()
        log_path = data_dir.parent / f"load-server-{port}.log"
        proc = start_server(port, env, log_path)
        wait_healthy(proc, port, log_path, data_dir)
        warm = Client(port)
        for _, _, method, path, body in MIX:
            warm.call(method, path, body)
        warm.close()
        say(f"load: {args.connections} connections, {args.duration:.0f} s per phase, "
            f"{args.rows:,} rows, server pid {proc.pid}")
        ok = report(run_phase("mix", port, proc.pid, args, slow=0), SLOW[0])
        ok = report(run_phase("mix + slow", port, proc.pid, args, slow=args.slow),
                    SLOW[0]) and ok
        return 0 if ok else 1
    except BenchError as exc:
        say(f"ERROR: {exc}")
        return 2
    finally:
        if proc is not None:
            shut_down(None, proc)


if __name__ == "__main__":
    sys.exit(main())
