"""Apache Superset, a real BI tool, against the SQL interface: ``make test-superset``.

Run with the Superset venv's Python (``scripts/install-superset.sh`` makes it; Superset pins
SQLAlchemy 1.4, so it cannot share the project's venv). It

1. starts ``semantic serve`` (the project's venv) on demo rows, HTTP and SQL on free ports;
2. starts Superset in this process (its own app factory, a SQLite metadata database, the
   documented ``db upgrade`` / ``init`` / ``fab create-admin`` steps) and, through Superset's
   REST API (Flask's test client, as a browser would call it):
   - registers the server as a PostgreSQL database (``POST /api/v1/database/``; Superset
     tests the connection: psycopg2, its catalog queries),
   - creates a dataset over the ``events`` source (``POST /api/v1/dataset/``: SQLAlchemy
     reflection of the table) and checks the column types it read,
   - runs a chart's data request: revenue by day over a week for one region;
3. compares the chart's rows with ``/v1/query``'s answer to the same question, and checks on
   the server's ``/metrics`` that the answer came from a rollup.

Exits non-zero, saying what differed, when anything fails. Imports live in functions so
pytest's doctest collection of ``tests/`` never imports Superset.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SEMANTIC = ROOT / ".venv" / "bin" / "semantic"
WEEK = ("2026-03-01", "2026-03-08")
REGION = "us-east"


def say(text: str) -> None:
    print(f"superset check: {text}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http(url: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(url, data=json.dumps(body).encode() if body else None,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        text = response.read().decode()
    return json.loads(text) if text.lstrip().startswith(("{", "[")) else text


def start_server(work: Path) -> tuple[subprocess.Popen[bytes], str, int]:
    shutil.copy(ROOT / "metrics.yaml", work / "metrics.yaml")
    env = dict(os.environ, SEMANTIC_DATA_DIR=str(work / "data"))
    for step in (["demo", "--rows", "200000"], ["apply"]):
        subprocess.run([str(SEMANTIC), *step], cwd=work, env=env, check=True,
                       capture_output=True)
    port, sql_port = free_port(), free_port()
    server = subprocess.Popen([str(SEMANTIC), "serve", "--port", str(port), "--sql-port",
                               str(sql_port), "--log-level", "warning"], cwd=work, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            http(f"{url}/readyz")
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("superset check: the server did not start") from None
            time.sleep(0.2)
    return server, url, sql_port


def superset_app(home: Path) -> Any:
    home.mkdir(parents=True, exist_ok=True)
    config = home / "superset_config.py"
    config.write_text(f"""
SECRET_KEY = "superset-check-secret-not-for-production-0123456789"
SQLALCHEMY_DATABASE_URI = "sqlite:///{home}/superset.db"
WTF_CSRF_ENABLED = False
TALISMAN_ENABLED = False
RATELIMIT_ENABLED = False
LOG_LEVEL = "WARNING"
CONTENT_SECURITY_POLICY_WARNING = False
CACHE_CONFIG = {{"CACHE_TYPE": "NullCache"}}
DATA_CACHE_CONFIG = {{"CACHE_TYPE": "NullCache"}}
""")
    os.environ["SUPERSET_CONFIG_PATH"] = str(config)
    logging.disable(logging.INFO)  # Superset and its migrations say much at INFO
    os.environ["SUPERSET_HOME"] = str(home)
    import superset
    from flask_migrate import upgrade
    from superset.app import create_app
    from superset.extensions import db

    app = create_app()
    with app.app_context():
        # superset db upgrade; superset init; superset fab create-admin
        upgrade(directory=str(Path(superset.__file__).parent / "migrations"))
        app.appbuilder.add_permissions(update_perms=True)
        security = app.appbuilder.sm
        security.sync_role_definitions()
        db.session.commit()
        security.add_user("admin", "A", "D", "admin@example.com", security.find_role("Admin"),
                          password="admin")
        db.session.commit()
    return app


class Api:
    """Superset's REST API through Flask's test client, logged in as the admin."""

    def __init__(self, app: Any) -> None:
        self.client = app.test_client()
        self.headers: dict[str, str] = {}
        login = self.call("POST", "/api/v1/security/login", {
            "username": "admin", "password": "admin", "provider": "db", "refresh": True})
        self.headers["Authorization"] = f"Bearer {login['access_token']}"

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.client.open(path, method=method, json=body, headers=self.headers)
        if response.status_code not in (200, 201):
            raise SystemExit(f"superset check: {method} {path} -> {response.status_code}: "
                             f"{response.data[:2000]!r}")
        return response.get_json()


def answers_from(url: str, rollup: str) -> float:
    """The server's count of answers served by ``rollup`` (Prometheus text)."""
    text = http(f"{url}/metrics")
    found = re.search(r'semantic_answers_total\{rollup="' + rollup +
                      r'",source="events"\} ([0-9.e+]+)', text)
    return float(found.group(1)) if found else 0.0


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="superset-check-"))
    server, url, sql_port = start_server(work)
    try:
        say(f"server at {url}, SQL interface on port {sql_port}")
        started = time.monotonic()
        app = superset_app(work / "superset")
        api = Api(app)
        say(f"Superset ready in {time.monotonic() - started:.1f} s")
        database = api.call("POST", "/api/v1/database/", {
            "database_name": "semantic",
            "sqlalchemy_uri": f"postgresql+psycopg2://analyst@127.0.0.1:{sql_port}/semantic",
            "expose_in_sqllab": True})
        say(f"database registered (id {database['id']})")
        # what the dataset screen lists before a dataset is created
        base = f"/api/v1/database/{database['id']}"
        schemas = api.call("GET", f"{base}/schemas/?q=(force:!t)")["result"]
        tables = [t["value"] for t in api.call(
            "GET", f"{base}/tables/?q=(force:!t,schema_name:public)")["result"]]
        metadata = api.call("GET", f"{base}/table_metadata/?name=events&schema=public")
        described = {c["name"]: c.get("comment") for c in metadata["columns"]}
        if "public" not in schemas or "events" not in tables or \
                described.get("total_events") != "measure: Number of events.":
            raise SystemExit(f"superset check: the dataset screen read schemas {schemas}, "
                             f"tables {tables}, columns {described}")
        say(f"dataset screen: schemas {schemas}, tables {tables}, {len(described)} columns "
            "with their descriptions")
        dataset = api.call("POST", "/api/v1/dataset/", {
            "database": database["id"], "schema": "public", "table_name": "events"})
        columns = {c["column_name"]: c for c in
                   api.call("GET", f"/api/v1/dataset/{dataset['id']}")["result"]["columns"]}
        checks = {"event_ts": ("TIMESTAMP WITHOUT TIME ZONE", True),
                  "region": ("TEXT", False), "total_revenue": ("DOUBLE PRECISION", False),
                  "total_events": ("BIGINT", False)}
        for name, (kind, temporal) in checks.items():
            column = columns[name]
            if (column["type"], column["is_dttm"]) != (kind, temporal):
                raise SystemExit(f"superset check: column {name} read as {column['type']} "
                                 f"(temporal: {column['is_dttm']}), expected {kind}")
        say(f"dataset created (id {dataset['id']}) with {len(columns)} columns, types read")

        expected_body = {"measures": ["total_revenue"], "grain": "day",
                         "filters": [{"member": "region", "op": "eq", "value": REGION}],
                         "time_range": {"from": WEEK[0], "to": WEEK[1]}, "order": ["event_ts"]}
        expected = http(f"{url}/v1/query", expected_body)
        rollup = expected["meta"]["rollup"]
        before = answers_from(url, rollup)
        chart = api.call("POST", "/api/v1/chart/data", {
            "datasource": {"id": dataset["id"], "type": "table"}, "force": True,
            "queries": [{
                "columns": [{"timeGrain": "P1D", "columnType": "BASE_AXIS",
                             "sqlExpression": "event_ts", "label": "event_ts",
                             "expressionType": "SQL"}],
                "metrics": [{"expressionType": "SIMPLE",
                             "column": {"column_name": "total_revenue"}, "aggregate": "SUM",
                             "label": "SUM(total_revenue)"}],
                "filters": [{"col": "region", "op": "IN", "val": [REGION]}],
                "orderby": [], "time_range": f"{WEEK[0]} : {WEEK[1]}",
                "granularity": "event_ts", "row_limit": 1000}],
            "result_format": "json", "result_type": "full"})["result"][0]
        got = sorted((dt.datetime.fromtimestamp(row["event_ts"] / 1000, dt.UTC).date()
                      .isoformat(), row["SUM(total_revenue)"]) for row in chart["data"])
        want = [(row["event_ts"], row["total_revenue"]) for row in expected["data"]]
        say(f"chart SQL: {' '.join(chart['query'].split())}")
        if got != want or len(want) != 7:
            raise SystemExit(f"superset check: the chart's rows {got} differ from /v1/query's "
                             f"{want}")
        if answers_from(url, rollup) <= before:
            raise SystemExit(f"superset check: the chart was not answered from {rollup}")
        say(f"chart data: {len(got)} daily rows equal to /v1/query, served by rollup {rollup}")
        say("OK")
        return 0
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
