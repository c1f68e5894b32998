"""Where an uncached answer's time goes: the engine's floor against our server, same SQL.

Runs on a data directory prepared by ``semantic demo`` + ``semantic apply`` (the reference
model), with nothing else using it:

    SEMANTIC_DATA_DIR=.data/chdb .venv/bin/python bench/floor.py [--seconds 8] [--profile]

1. In this process (the embedded engine open here), for the SQL our plans give the reference
   endpoints, times interleaved rounds of: ``SELECT 1`` (the engine's fixed cost per query),
   the plan's SQL through chDB alone (``chdb.connect(...).query(sql, "Native")``: parse,
   analyze, read, aggregate, encode; nothing of ours), the same through clickhouse-connect
   (the driver we use), and ``Runtime.run`` (our call: pool, bounds, driver, columns).
2. Closes the engine, starts ``semantic serve`` with the result cache off and measures each
   endpoint's latency over one keep-alive connection (sequential requests).
3. With ``--profile`` (needs ``py-spy``, ``pip install py-spy``), samples the server while it
   answers and reports the share of its busy time spent inside the engine's query call.

Prints a markdown table: per endpoint, p50 (ms) of each layer and what is left for HTTP and
our Python code.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.query.request import Query, TimeRange  # noqa: E402
from engine.serving.plan import Plan  # noqa: E402
from semantic import load_model  # noqa: E402
from server.runtime.compiled import Runtime  # noqa: E402
from server.settings import load_settings  # noqa: E402
from server.warehouse.statements import Warehouse  # noqa: E402

PORT = 3999
#: (name, path, the query the endpoint asks) of each reference endpoint measured
CASES: list[tuple[str, str, Query]] = [
    ("/api/metrics", "/api/metrics",
     Query("events", ("total_events", "unique_users", "total_revenue"))),
    ("/api/breakdown", "/api/breakdown",
     Query("events", ("total_events",), ("region",), "day")),
    ("/api/breakdown, one range", "/api/breakdown?from=2026-02-01&to=2026-02-15",
     Query("events", ("total_events",), ("region",), "day",
           time_range=TimeRange("2026-02-01", "2026-02-15"))),
]


def say(line: str = "") -> None:
    print(line, file=sys.stderr, flush=True)


def p50(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def timed(calls: dict[str, Callable[[], object]], seconds: float) -> dict[str, float]:
    """p50 (ms) of each call, in interleaved rounds for about ``seconds`` (machine noise
    falls on every call alike)."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():
        for _ in range(10):
            call()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for name, call in calls.items():
            for _ in range(20):
                started = time.perf_counter()
                call()
                samples[name].append(time.perf_counter() - started)
    return {name: p50(found) for name, found in samples.items()}


def in_process(data_dir: Path, seconds: float) -> dict[str, dict[str, float]]:
    import chdb

    settings = load_settings()
    warehouse = Warehouse(settings.dsn, settings.location)
    runtime = Runtime.start(load_model(settings.model_path), warehouse)
    engine = chdb.connect(str(data_dir))
    client = warehouse.pool._acquire()
    found: dict[str, dict[str, float]] = {}
    try:
        for name, _, query in CASES:
            found[name] = _layers(engine, client, runtime, runtime.plan(query), name, seconds)
    finally:
        warehouse.pool.give_back(client)
        engine.close()
        warehouse.close()
    return found


def _layers(engine: Any, client: Any, runtime: Runtime, plan: Plan, name: str,
            seconds: float) -> dict[str, float]:
    bounds = {**runtime.warehouse._bounds(), **(runtime.read_settings(plan) or {})}
    with_settings = plan.sql + " SETTINGS " + ", ".join(f"{k} = {v}" for k, v in bounds.items())
    parameters = {k: str(v) for k, v in plan.parameters.items()}
    say(f"  {name}: {plan.sql}")
    return timed({
        "select 1": lambda: engine.query("SELECT 1", "Native"),
        "engine": lambda: engine.query(with_settings, "Native", params=parameters),
        "driver": lambda: client.driver.query(plan.sql, parameters=plan.parameters,
                                              settings=bounds),
        "ours": lambda: runtime.run(plan),
    }, seconds)


def latency(path: str, seconds: float) -> float:
    connection = http.client.HTTPConnection("127.0.0.1", PORT)
    samples: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        samples.append(time.perf_counter() - started)
        if response.status != 200:
            raise SystemExit(f"{path} answered {response.status}")
    connection.close()
    return p50(samples[10:])


def engine_share(profile: Path) -> float:
    """The share of the server's sampled stacks (any thread, idle waits left out) that are in
    chDB's query call."""
    total = inside = 0
    idle = ("Condition.wait", "select (selectors", "Runner.run (asyncio/runners.py")
    for line in profile.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        leaf = stack.rsplit(";", 1)[-1]
        if not stack or any(leaf.startswith(word) for word in idle):
            continue
        total += int(count)
        if "Connection.query (chdb/" in stack:
            inside += int(count)
    return inside / total if total else 0.0


def served(seconds: float, profile: bool) -> dict[str, tuple[float, float | None]]:
    env = {**os.environ, "SEMANTIC_CACHE_BYTES": "0", "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--host",
                               "127.0.0.1", "--port", str(PORT), "--log-level", "warning"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    found: dict[str, tuple[float, float | None]] = {}
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                latency("/healthz", 0.1)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the server did not start") from None
                time.sleep(0.2)
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        for name, path, _ in CASES:
            share = None
            if profile and Path(spy).exists():
                with tempfile.TemporaryDirectory() as folder:
                    out = Path(folder) / "profile.txt"
                    sampler = subprocess.Popen(
                        [spy, "record", "--pid", str(server.pid), "--format", "raw",
                         "--rate", "500", "--duration", str(int(seconds)), "--nonblocking",
                         "--output", str(out)], stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL)
                    found_p50 = latency(path, seconds)
                    sampler.wait()
                    share = engine_share(out) if out.exists() else None
            else:
                found_p50 = latency(path, seconds)
            found[name] = (found_p50, share)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0, help="per measurement")
    parser.add_argument("--profile", action="store_true",
                        help="sample the server with py-spy for the engine's share")
    parser.add_argument("--layers", action="store_true",
                        help="only step 1, printed as JSON (the engine stays open in a "
                             "process until it exits, so step 1 runs in one of its own)")
    args = parser.parse_args(argv)
    data_dir = Path(os.environ.get("SEMANTIC_DATA_DIR", ".data/chdb")).resolve()
    if args.layers:
        print(json.dumps(in_process(data_dir, args.seconds)))
        return 0
    say(f"in a process of its own, {data_dir}:")
    step = subprocess.run([sys.executable, __file__, "--layers", "--seconds",
                           str(args.seconds)], capture_output=True, text=True, check=False)
    sys.stderr.write(step.stderr)
    if step.returncode != 0:
        raise SystemExit("measuring in process failed")
    layers = json.loads(step.stdout)
    say("through HTTP, cache off:")
    http_p50 = served(args.seconds, args.profile)
    lines = ["| endpoint | SELECT 1 | chDB alone | + driver | + our call | through HTTP "
             "| HTTP and the rest | engine share of server CPU |", "|---|" + "--:|" * 7]
    for name, _, _ in CASES:
        layer = layers[name]
        total, share = http_p50[name]
        shown = f"{share:.0%}" if share is not None else "-"
        lines.append(f"| {name} | {layer['select 1']:.2f} | {layer['engine']:.2f} | "
                     f"{layer['driver']:.2f} | {layer['ours']:.2f} | {total:.2f} | "
                     f"{total - layer['ours']:.2f} | {shown} |")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
