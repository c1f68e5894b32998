"""The SQL interface against ``/v1/query``, for bench/compare.py: the same grouped query
(events and revenue by region and day over a week, a region filter) sent through the
PostgreSQL wire protocol by pgbench (PostgreSQL's own load generator: simple protocol, as
psycopg2 and psql send; prepared statements, as psycopg 3, asyncpg and JDBC drivers do) and
through HTTP by wrk, one connection each, side by side in one run, with the result cache on
(as deployed) and off. Answers are checked equal first.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from compare import HOST, Load, _cell, _env, _get, _note_unmeasured, post_line, say, server, wrk

STATEMENT = ("SELECT region, date_trunc('day', event_ts) AS day, MEASURE(total_events), "
             "SUM(total_revenue) FROM events WHERE event_ts >= '2026-03-01' AND "
             "event_ts < '2026-03-08' AND region IN ('us-east', 'eu-central') "
             "GROUP BY 1, 2 ORDER BY 1, 2")
BODY = {"measures": ["total_events", "total_revenue"], "dimensions": ["region"], "grain": "day",
        "filters": [{"member": "region", "op": "in", "values": ["us-east", "eu-central"]}],
        "time_range": {"from": "2026-03-01", "to": "2026-03-08"},
        "order": ["region", "event_ts"]}
#: pgbench's query modes measured, as the clients that send them
MODES = (("simple", "simple protocol (psql, psycopg2, Superset)"),
         ("prepared", "prepared statement (psycopg 3, asyncpg, JDBC)"))


def pgbench(port: int, mode: str, duration: float) -> Load:
    """One client sending the statement for ``duration`` seconds; p50/p99 from pgbench's
    per-transaction log."""
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "statement.sql"
        script.write_text(STATEMENT + ";\n")
        done = subprocess.run(
            ["pgbench", "-n", "-c", "1", "-j", "1", "-T", str(max(1, round(duration))), "-M",
             mode, "-f", str(script), "-l", "--log-prefix", str(Path(folder) / "log"),
             "-h", HOST, "-p", str(port), "-U", "analyst", "semantic"],
            capture_output=True, text=True, check=False, cwd=folder)
        if done.returncode != 0:
            raise SystemExit(f"pgbench failed: {done.stdout}\n{done.stderr}")
        micros = [int(line.split()[2]) for log in Path(folder).glob("log.*")
                  for line in log.read_text().splitlines() if line.strip()]
    if not micros:
        return Load(0, duration, 0.0, 0.0, 0)
    ordered = sorted(micros)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return Load(len(micros), duration, statistics.median(ordered) / 1000, p99 / 1000, 0)


def _check(port: int, sql_port: int) -> None:
    import psycopg

    answer = _get(port, "/v1/query", BODY)
    with psycopg.connect(f"postgresql://analyst@{HOST}:{sql_port}/semantic") as conn:
        rows = conn.execute(STATEMENT).fetchall()
    expected = [(r["region"], r["event_ts"], r["total_events"], r["total_revenue"])
                for r in answer["data"]]
    got = [(r[0], r[1].date().isoformat(), r[2], r[3]) for r in rows]
    if got != expected or not got:
        raise SystemExit(f"SQL interface: {got[:3]} differ from /v1/query's {expected[:3]}")


def run_sql(data_dir: Path, duration: float, port: int) -> list[str]:
    if shutil.which("pgbench") is None:
        return ["", "SQL interface: not measured (pgbench is missing: apt-get install "
                "postgresql-client)."]
    say("== SQL interface")
    sql_port = port + 2
    out = ["", "SQL interface (PostgreSQL wire protocol) against `/v1/query`: events and "
           "revenue by region and day over a week for two regions, 1 connection, p50 / p99 "
           "(ms); pgbench sends the statement, wrk the JSON body.", "",
           "| cache | /v1/query (wrk) | " + " | ".join(f"SQL, {label} (pgbench)"
                                                   for _, label in MODES)
           + " | SQL / HTTP p50 |", "|---|--:|" + "--:|" * len(MODES) + "--:|"]
    loads: list[Load] = []
    for cache in (True, False):
        env = _env(data_dir, SEMANTIC_SQL_PORT=str(sql_port),
                   **({} if cache else {"SEMANTIC_CACHE_BYTES": "0"}))
        with server([sys.executable, "-m", "server.cli", "serve", "--host", HOST, "--port",
                     str(port), "--log-level", "warning"], env, port):
            _check(port, sql_port)
            http = wrk(port, [post_line("/v1/query", BODY)], 1, duration)
            sql = [pgbench(sql_port, mode, duration) for mode, _ in MODES]
        loads += [http, *sql]
        ratios = " / ".join(f"{s.p50_ms / http.p50_ms:.2f}" for s in sql
                            if s.p50_ms and http.p50_ms)
        out.append(f"| {'on' if cache else 'off'} | {_cell(http)} | "
                   + " | ".join(_cell(s) for s in sql) + f" | **{ratios}** |")
        say(f"  cache {'on' if cache else 'off'}: http {http.p50_ms:.2f} ms, "
            + ", ".join(f"{mode} {s.p50_ms:.2f} ms" for (mode, _), s in zip(MODES, sql,
                                                                             strict=True)))
    out += ["", "Target: SQL / HTTP p50 at most 1.5."]
    return [*out, *_note_unmeasured(loads)]
