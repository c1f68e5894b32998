"""End-to-end latency of the generated endpoints, through HTTP, served vs raw.

One run:

1. prepares the reference data in its own embedded data directory with the CLI
   (``semantic demo --rows N`` then ``semantic apply``, each in a subprocess);
2. starts ``semantic serve`` on a free local port and waits for ``/readyz``;
3. times N sequential keep-alive requests to ``GET /api/metrics`` and ``GET /api/breakdown``
   (answered from rollups) and fewer to the same queries forced to the raw table through
   ``POST /v1/query`` with ``force_raw``;
4. checks that the rollup answers equal the raw ones exactly;
5. prints p50/p90/p99/mean per endpoint and the target verdict (served p50 < 10 ms).

Usage (from the repository root)::

    .venv/bin/python bench/endpoints.py [--rows 5000000] [--requests 300]
                                        [--data-dir DIR] [--port P]

Exit status: 0 when the answers are correct (whether or not the latency target is met),
1 on a correctness mismatch, 2 when the data could not be prepared or the server failed.
Only 127.0.0.1 is contacted. The embedded engine's data directory can be opened by one
process at a time, so nothing else may use ``--data-dir`` while this runs.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
TABLE_HEADER = "X-Semantic-Table"
RAW_TABLE = "analytics.events"
ROLLUP_DATABASE = "semantic"
TARGET_P50_MS = 10.0

HEALTH_TIMEOUT_S = 60.0
HTTP_TIMEOUT_S = 120.0
SERVED_BUDGET_S = 120.0  # per served endpoint loop
RAW_BUDGET_S = 300.0  # per raw endpoint loop
CLI_TIMEOUT_S = 3600.0

RAW_METRICS = {"measures": ["total_events", "unique_users", "total_revenue"], "force_raw": True}
RAW_BREAKDOWN = {"measures": ["total_events"], "dimensions": ["region", "event_ts"],
                 "grain": "day", "force_raw": True}


class BenchError(Exception):
    """The server or the data preparation failed (exit 2)."""


class Mismatch(Exception):
    """Served and raw answers differ (exit 1)."""


def say(line: str = "") -> None:
    print(line, flush=True)


# -- preparing the data --------------------------------------------------------------------


def cli_env(data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("CLICKHOUSE_URL", None)  # always the embedded engine in our own directory
    env["SEMANTIC_DATA_DIR"] = str(data_dir)
    env["SEMANTIC_MODEL"] = str(ROOT / "metrics.yaml")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_cli(args: list[str], env: dict[str, str]) -> str:
    command = [sys.executable, "-m", "server.cli", *args]
    began = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=CLI_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"`semantic {' '.join(args)}` did not finish in {CLI_TIMEOUT_S:.0f} s"
                         ) from exc
    elapsed = time.perf_counter() - began
    for line in done.stdout.splitlines():
        say(f"    {line}")
    if done.returncode != 0:
        for line in done.stderr.splitlines()[-20:]:
            say(f"    ! {line}")
        raise BenchError(f"`semantic {' '.join(args)}` exited {done.returncode}")
    say(f"  semantic {' '.join(args)}: {elapsed:.1f} s")
    return done.stdout


def prepare(data_dir: Path, rows: int, env: dict[str, str]) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    say(f"data directory: {data_dir}")
    out = run_cli(["demo", "--rows", str(rows)], env)
    for line in out.splitlines():
        if "already has" in line:
            # "<table> already has 5,000,000 rows; nothing inserted ..."
            existing = int(line.split("already has", 1)[1].split("rows", 1)[0]
                           .strip().replace(",", ""))
            if existing != rows:
                raise BenchError(f"{data_dir} already holds {existing:,} rows, not {rows:,}; "
                                 "pass another --data-dir")
    run_cli(["apply"], env)


# -- the server ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def start_server(port: int, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    log = log_path.open("wb")
    command = [sys.executable, "-m", "server.cli", "serve", "--host", HOST, "--port", str(port),
               "--log-level", "warning"]
    try:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    finally:
        log.close()  # the child keeps its own descriptor


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)


def log_tail(log_path: Path, lines: int = 20) -> str:
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


def wait_healthy(proc: subprocess.Popen[bytes], port: int, log_path: Path,
                 expect: Path) -> dict[str, Any]:
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"the server exited with {proc.returncode} before answering "
                             f"/readyz:\n{log_tail(log_path)}")
        conn = http.client.HTTPConnection(HOST, port, timeout=5)
        try:
            conn.request("GET", "/readyz")
            response = conn.getresponse()
            body = response.read()
            if response.status == 200:
                health = json.loads(body)
                if proc.poll() is not None or str(expect) not in str(health.get("warehouse")):
                    raise BenchError(f"port {port} is answered by another server: {health}")
                return health
            last = f"HTTP {response.status}: {body[:200]!r}"
        except (OSError, http.client.HTTPException) as exc:
            last = f"{type(exc).__name__}: {exc}"
        finally:
            conn.close()
        time.sleep(0.2)
    raise BenchError(f"/readyz not 200 within {HEALTH_TIMEOUT_S:.0f} s (last: {last})\n"
                     f"{log_tail(log_path)}")


# -- HTTP measurements ---------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    table: str
    content_type: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    """One keep-alive connection to the server; reconnects if the server closes it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection(HOST, port, timeout=HTTP_TIMEOUT_S)

    def close(self) -> None:
        self.conn.close()

    def call(self, method: str, path: str, body: bytes | None = None) -> tuple[Reply, float]:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            try:
                began = time.perf_counter()
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                elapsed_ms = (time.perf_counter() - began) * 1000.0
                reply = Reply(response.status, response.getheader(TABLE_HEADER) or "",
                              response.getheader("Content-Type") or "", data)
                return reply, elapsed_ms
            except (ConnectionError, http.client.RemoteDisconnected,
                    http.client.CannotSendRequest, http.client.BadStatusLine) as exc:
                self.conn.close()
                self.conn = http.client.HTTPConnection(HOST, self.port, timeout=HTTP_TIMEOUT_S)
                if attempt == 2:
                    raise BenchError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        raise AssertionError("unreachable")


@dataclass
class Case:
    name: str
    kind: str  # "served" or "raw"
    method: str
    path: str
    body: bytes | None
    check_table: Callable[[str], bool]
    expected_table: str
    latencies: list[float] = field(default_factory=list)
    first: Reply | None = None
    stopped_early: bool = False


def served_table(table: str) -> bool:
    return table.startswith(ROLLUP_DATABASE + ".")


def raw_table(table: str) -> bool:
    return table == RAW_TABLE


def answer(reply: Reply) -> Any:
    """What must not change between identical requests (``/v1/query`` meta holds timings)."""
    if reply.body.startswith(b"{\"data\""):
        return reply.json()["data"]
    return reply.body


def measure(client: Client, case: Case, warmup: int, count: int, budget_s: float) -> None:
    def one() -> tuple[Reply, float]:
        reply, ms = client.call(case.method, case.path, case.body)
        if reply.status != 200:
            raise BenchError(f"{case.method} {case.path} -> HTTP {reply.status}: "
                             f"{reply.body[:300]!r}")
        if not reply.content_type.startswith("application/json"):
            raise BenchError(f"{case.method} {case.path}: Content-Type {reply.content_type!r}")
        if not case.check_table(reply.table):
            raise Mismatch(f"{case.method} {case.path} ({case.kind}): {TABLE_HEADER} is "
                           f"{reply.table!r}, expected {case.expected_table}")
        if case.first is None:
            case.first = reply
        elif answer(reply) != answer(case.first):
            raise Mismatch(f"{case.method} {case.path} ({case.kind}): the answer changed "
                           "between identical requests")
        return reply, ms

    for _ in range(warmup):
        one()
    deadline = time.monotonic() + budget_s
    for _ in range(count):
        if time.monotonic() > deadline:
            case.stopped_early = True
            break
        case.latencies.append(one()[1])


# -- correctness ---------------------------------------------------------------------------


def check_metrics(served: Reply, raw: Reply) -> str:
    got = served.json()
    payload = raw.json()
    data = payload["data"]
    if len(data) != 1:
        raise Mismatch(f"raw metrics: expected one row, got {len(data)}")
    want = {k: data[0][k] for k in RAW_METRICS["measures"]}
    if got != want:
        raise Mismatch(f"/api/metrics differs from the raw table:\n  served {got}\n  raw    {want}")
    return ", ".join(f"{k}={v}" for k, v in got.items())


def check_breakdown(served: Reply, raw: Reply) -> str:
    got = [(r["region"], r["day"], r["cnt"]) for r in served.json()]
    payload = raw.json()
    if payload["meta"].get("truncated"):
        raise Mismatch("raw breakdown was truncated by the row limit")
    want = sorted((r["region"], r["event_ts"], r["total_events"]) for r in payload["data"])
    if got != sorted(got):
        raise Mismatch("/api/breakdown is not ordered by region, day")
    if got != want:
        diff = [(g, w) for g, w in zip(got, want, strict=False) if g != w][:5]
        raise Mismatch(f"/api/breakdown differs from the raw table: {len(got)} vs {len(want)} "
                       f"rows; first differences (served, raw): {diff}")
    total = sum(r[2] for r in got)
    return f"{len(got)} rows (region, day, cnt) equal, sum(cnt)={total}"


# -- report --------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def stats(values: list[float]) -> dict[str, float]:
    return {
        "p50": percentile(values, 0.50),
        "p90": percentile(values, 0.90),
        "p99": percentile(values, 0.99),
        "mean": sum(values) / len(values) if values else float("nan"),
    }


def report(cases: dict[tuple[str, str], Case], rows: int) -> bool:
    say()
    say(f"latency through HTTP (ms), {rows:,} rows, sequential keep-alive requests on {HOST}")
    header = (f"{'endpoint':<16}{'answered':<12}{'n':>5}{'p50':>10}{'p90':>10}"
              f"{'p99':>10}{'mean':>10}  table")
    say(header)
    say("-" * (len(header) + 34))
    met = True
    for name in ("/api/metrics", "/api/breakdown"):
        figures = {}
        for kind in ("served", "raw"):
            case = cases[(name, kind)]
            s = stats(case.latencies)
            figures[kind] = s
            table = case.first.table if case.first else "?"
            note = " (time budget hit)" if case.stopped_early else ""
            say(f"{name:<16}{kind:<12}{len(case.latencies):>5}{s['p50']:>10.2f}"
                f"{s['p90']:>10.2f}{s['p99']:>10.2f}{s['mean']:>10.2f}  {table}{note}")
        p50_ratio = figures["raw"]["p50"] / figures["served"]["p50"]
        p99_ratio = figures["raw"]["p99"] / figures["served"]["p99"]
        say(f"{name:<16}{'raw/served':<12}{'':>5}{p50_ratio:>9.1f}x{'':>10}{p99_ratio:>9.1f}x")
        met = met and figures["served"]["p50"] < TARGET_P50_MS
    say()
    for name in ("/api/metrics", "/api/breakdown"):
        p50 = stats(cases[(name, "served")].latencies)["p50"]
        verdict = "PASS" if p50 < TARGET_P50_MS else "FAIL"
        say(f"target served p50 < {TARGET_P50_MS:g} ms through HTTP: {name}: {verdict} "
            f"(p50 {p50:.2f} ms)")
    say(f"target overall: {'PASS' if met else 'FAIL'}")
    return met


# -- main ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000,
                        help="rows of reference data (default 5,000,000)")
    parser.add_argument("--requests", type=int, default=300,
                        help="timed requests per served endpoint (default 300); raw endpoints "
                        "get max(30, N // 10)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="embedded data directory (default bench/.data/rows-N)")
    parser.add_argument("--port", type=int, default=None, help="server port (default: a free "
                        "port)")
    parser.add_argument("--warmup", type=int, default=10,
                        help="untimed requests per served endpoint first (default 10; raw 2)")
    args = parser.parse_args(argv)
    if args.rows <= 0 or args.requests <= 0:
        parser.error("--rows and --requests must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data_dir = (args.data_dir or Path(__file__).resolve().parent / ".data" / f"rows-{args.rows}")
    data_dir = data_dir.resolve()
    env = cli_env(data_dir)
    raw_requests = max(30, args.requests // 10)
    try:
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
        health = wait_healthy(proc, port, log_path, data_dir)
        say(f"  healthy in {time.perf_counter() - began:.1f} s: {json.dumps(health)}")
        client = Client(port)
        cases = {
            ("/api/metrics", "served"): Case("/api/metrics", "served", "GET", "/api/metrics",
                                             None, served_table, f"{ROLLUP_DATABASE}.*"),
            ("/api/breakdown", "served"): Case("/api/breakdown", "served", "GET",
                                               "/api/breakdown", None, served_table,
                                               f"{ROLLUP_DATABASE}.*"),
            ("/api/metrics", "raw"): Case("/api/metrics", "raw", "POST", "/v1/query",
                                          json.dumps(RAW_METRICS).encode(), raw_table, RAW_TABLE),
            ("/api/breakdown", "raw"): Case("/api/breakdown", "raw", "POST", "/v1/query",
                                            json.dumps(RAW_BREAKDOWN).encode(), raw_table,
                                            RAW_TABLE),
        }
        for (name, kind), case in cases.items():
            served = kind == "served"
            count = args.requests if served else raw_requests
            say(f"  {name} {kind}: {count} requests ({case.method} {case.path})")
            measure(client, case, warmup=args.warmup if served else 2, count=count,
                    budget_s=SERVED_BUDGET_S if served else RAW_BUDGET_S)
        if proc.poll() is not None:
            raise BenchError(f"the server exited with {proc.returncode} during the run")

        say()
        say("correctness (served from rollups == forced raw):")
        m = cases[("/api/metrics", "served")].first
        mr = cases[("/api/metrics", "raw")].first
        b = cases[("/api/breakdown", "served")].first
        br = cases[("/api/breakdown", "raw")].first
        assert m and mr and b and br
        say(f"  /api/metrics: equal ({check_metrics(m, mr)})")
        say(f"  /api/breakdown: {check_breakdown(b, br)}")

        report(cases, args.rows)
        return 0
    except Mismatch as exc:
        say(f"CORRECTNESS FAILURE: {exc}")
        return 1
    except BenchError as exc:
        say(f"ERROR: {exc}")
        return 2
    finally:
        shut_down(client, proc)


def shut_down(client: Any, proc: subprocess.Popen[bytes]) -> None:
    """Close the HTTP client and stop the server, saying how it ended."""
    if client is not None:
        client.close()
    stop_server(proc)
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it: -15 is a clean stop.
    how = "SIGTERM, clean" if proc.returncode == -15 else f"exit {proc.returncode}"
    say(f"server stopped ({how})")


if __name__ == "__main__":
    sys.exit(main())
