"""The obvious hand-written fix, to compare against: the scenario's two AggregatingMergeTree
tables fed by materialized views, served by the standard library's ThreadingHTTPServer over
the same embedded engine (a shared pool of clickhouse-connect clients, TCP_NODELAY on).

It also answers the same two questions from the raw table (``/raw/metrics``,
``/raw/breakdown``): the state of the scenario before any fix.

    python bench/baseline_server.py prepare --data-dir DIR --rows N   # data + MVs
    python bench/baseline_server.py serve --data-dir DIR --port P

``/api/breakdown`` and ``/raw/breakdown`` take ``from`` and ``to`` (dates, ``[from, to)``).
"""

from __future__ import annotations

import argparse
import json
import queue
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import clickhouse_connect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SETUP = [
    "CREATE DATABASE IF NOT EXISTS handmade",
    """CREATE TABLE handmade.totals (
         total_events SimpleAggregateFunction(sum, UInt64),
         unique_users AggregateFunction(uniq, String),
         total_revenue SimpleAggregateFunction(sum, Float64))
       ENGINE = AggregatingMergeTree ORDER BY tuple()""",
    """CREATE MATERIALIZED VIEW handmade.totals_mv TO handmade.totals AS
       SELECT count() AS total_events, uniqState(user_id) AS unique_users,
              sum(revenue) AS total_revenue FROM analytics.events""",
    """CREATE TABLE handmade.breakdown (
         region String, day Date, cnt SimpleAggregateFunction(sum, UInt64))
       ENGINE = AggregatingMergeTree ORDER BY (region, day)""",
    """CREATE MATERIALIZED VIEW handmade.breakdown_mv TO handmade.breakdown AS
       SELECT region, toDate(event_ts) AS day, count() AS cnt FROM analytics.events
       GROUP BY region, day""",
    # backfill in one statement each (nothing writes meanwhile), then merge
    """INSERT INTO handmade.totals SELECT count(), uniqState(user_id), sum(revenue)
       FROM analytics.events""",
    """INSERT INTO handmade.breakdown SELECT region, toDate(event_ts) AS day, count()
       FROM analytics.events GROUP BY region, day""",
    "OPTIMIZE TABLE handmade.breakdown FINAL",
]

METRICS = ("SELECT sum(total_events), uniqMerge(unique_users), sum(total_revenue) "
           "FROM handmade.totals")
BREAKDOWN = ("SELECT region, day, sum(cnt) FROM handmade.breakdown {where} "
             "GROUP BY region, day ORDER BY region, day")
RAW_METRICS = "SELECT count(), uniq(user_id), sum(revenue) FROM analytics.events"
RAW_BREAKDOWN = ("SELECT region, toDate(event_ts) AS day, count() FROM analytics.events "
                 "{where} GROUP BY region, day ORDER BY region, day")


def prepare(data_dir: Path, rows: int) -> None:
    from engine.ingestion.demo import create_demo_table, demo_insert

    client = clickhouse_connect.get_client(dsn=f"chdb://{data_dir}")
    for statement in create_demo_table():
        client.command(statement.sql(dialect="clickhouse"))
    have = client.query("SELECT count() FROM analytics.events").result_rows[0][0]
    if have == 0:
        chunk = 10_000_000
        for start in range(0, rows, chunk):
            insert, parameters = demo_insert("analytics.events", start,
                                             min(chunk, rows - start), 1)
            client.command(insert.sql(dialect="clickhouse"), parameters=parameters)
    elif have != rows:
        raise SystemExit(f"{data_dir} holds {have:,} rows, not {rows:,}")
    exists = client.query("SELECT count() FROM system.tables WHERE database = 'handmade'")
    if not exists.result_rows[0][0]:
        for statement in SETUP:
            client.command(statement)
    client.close()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    #: idle clients, shared by the connection threads: a new connection (wrk opens new ones
    #: for every run) reuses a client instead of opening its own
    idle: queue.LifoQueue[Any] = queue.LifoQueue()
    dsn = ""

    def setup(self) -> None:
        super().setup()
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        pass

    def _query(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        try:
            client = self.idle.get_nowait()
        except queue.Empty:
            client = clickhouse_connect.get_client(dsn=self.dsn)
        try:
            return client.query(sql, parameters=parameters).result_rows
        finally:
            self.idle.put(client)

    def _send(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        url = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            if url.path in ("/api/metrics", "/raw/metrics"):
                sql = METRICS if url.path == "/api/metrics" else RAW_METRICS
                events, users, revenue = self._query(sql)[0]
                self._send(200, {"total_events": events, "unique_users": users,
                                 "total_revenue": revenue})
            elif url.path in ("/api/breakdown", "/raw/breakdown"):
                raw = url.path == "/raw/breakdown"
                column = "event_ts" if raw else "day"
                kind = "DateTime" if raw else "Date"
                conditions = []
                if "from" in params:
                    conditions.append(f"{column} >= {{start:{kind}}}")
                if "to" in params:
                    conditions.append(f"{column} < {{end:{kind}}}")
                where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
                bound = {"start": params.get("from"), "end": params.get("to")}
                sql = (RAW_BREAKDOWN if raw else BREAKDOWN).format(where=where)
                rows = self._query(sql, {k: v for k, v in bound.items() if v})
                self._send(200, [{"region": r, "day": str(d), "cnt": c} for r, d, c in rows])
            elif url.path == "/healthz":
                self._send(200, {"status": "ok"})
            else:
                self._send(404, {"error": "not found"})
        except Exception as exc:  # noqa: BLE001 - a minimal server answers 500
            self._send(500, {"error": str(exc).splitlines()[0]})


def serve(data_dir: Path, host: str, port: int) -> None:
    Handler.dsn = f"chdb://{data_dir}"
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    print(f"listening on http://{host}:{port}", flush=True)
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("prepare", "serve"))
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3001)
    args = parser.parse_args()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    if args.command == "prepare":
        prepare(args.data_dir.resolve(), args.rows)
    else:
        serve(args.data_dir.resolve(), args.host, args.port)


if __name__ == "__main__":
    main()
