"""Real PostgreSQL clients against a live server's SQL interface: psql (Debian's
postgresql-client, installed by scripts/install-psql.sh), psycopg 3 (text and binary results,
server-side parameters, prepared statements), asyncpg (binary, prepared statements), and
SQLAlchemy's inspector with ``pandas.read_sql``. Answers are compared with ``/v1/query``'s for
the same question, and come from the rollup (the server's answer counter says so)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import subprocess
from typing import Any

import asyncpg
import pandas as pd
import psycopg
import pytest
import sqlalchemy

from server.observability.metrics import ANSWERS
from tests.server.sql.conftest import Running, token

GROUPED = ("SELECT region, date_trunc('day', ts) AS day, MEASURE(events) AS events, "
           "SUM(revenue) AS revenue FROM events WHERE ts >= '2026-01-03' AND ts < '2026-01-07' "
           "AND region IN ('eu', 'us') GROUP BY 1, 2 ORDER BY 1, 2")
GROUPED_BODY = {"measures": ["events", "revenue"], "dimensions": ["region"], "grain": "day",
                "filters": [{"member": "region", "op": "in", "values": ["eu", "us"]}],
                "time_range": {"from": "2026-01-03", "to": "2026-01-07"},
                "order": ["region", "ts"]}


ROLLUP = "by_tenant_region_day"


def _served_by_rollup() -> float:
    """How many answers the rollup has served in this process (the server runs in it)."""
    return float(ANSWERS.labels("events", ROLLUP)._value.get())


def _expected(running: Running, body: dict[str, Any],
              password: str | None = None) -> list[tuple[Any, ...]]:
    rows = running.query(body, password)
    return [tuple(row.values()) for row in rows]


def _days(rows: list[tuple[Any, ...]], index: int) -> list[tuple[Any, ...]]:
    """Rows with the bucket at ``index`` as the ``YYYY-MM-DD`` text /v1/query returns."""
    return [(*row[:index], row[index].date().isoformat(), *row[index + 1:]) for row in rows]


# -- psql -----------------------------------------------------------------------------------

def _psql(running: Running, *args: str,
          password: str | None = None) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("psql")
    assert binary is not None, "psql is required (scripts/install-psql.sh installs it)"
    env = dict(os.environ, PGPASSWORD=password or running.key, PGCONNECT_TIMEOUT="10")
    return subprocess.run([binary, "-h", "127.0.0.1", "-p", str(running.port), "-U", "analyst",
                           "-d", "semantic", "-X", "-v", "ON_ERROR_STOP=1", *args],
                          capture_output=True, text=True, env=env, timeout=60)


def test_psql_lists_and_describes_the_model_tables(running: Running) -> None:
    listed = _psql(running, "-c", r"\dt")
    assert listed.returncode == 0, listed.stderr
    assert "public | events | table | analyst" in listed.stdout
    described = _psql(running, "-c", r"\d+ events")
    assert described.returncode == 0, described.stderr
    lines = {line.split("|")[0].strip(): line for line in described.stdout.splitlines()
             if "|" in line}
    assert "text" in lines["region"] and "Where the event happened." in lines["region"]
    assert "timestamp without time zone" in lines["ts"]
    assert "bigint" in lines["events"] and "Number of events." in lines["events"]
    assert "double precision" in lines["revenue_per_event"]


def test_psql_answers_a_grouped_query_as_the_http_api(running: Running) -> None:
    before = _served_by_rollup()
    done = _psql(running, "-A", "-t", "-F", ",", "-c", GROUPED)
    assert done.returncode == 0, done.stderr
    assert _served_by_rollup() == before + 1
    rows = [line.split(",") for line in done.stdout.strip().splitlines()]
    expected = _expected(running, GROUPED_BODY)
    assert len(rows) == len(expected) > 0
    for got, want in zip(rows, expected, strict=True):
        assert got == [want[0], f"{want[1]} 00:00:00", str(want[2]), str(want[3])]


def test_psql_shows_the_error_of_an_unanswerable_query(running: Running) -> None:
    done = _psql(running, "-c", "SELECT SUM(users) FROM events")
    assert done.returncode != 0
    assert "SUM(users) cannot be answered exactly" in done.stderr
    assert "MEASURE(users)" in done.stderr


# -- psycopg --------------------------------------------------------------------------------

def test_psycopg_text_and_binary_results_equal_the_http_api(running: Running) -> None:
    expected = _expected(running, GROUPED_BODY)
    with psycopg.connect(running.dsn()) as conn:
        for binary in (False, True):
            before = _served_by_rollup()
            rows = conn.cursor(binary=binary).execute(GROUPED).fetchall()
            assert _served_by_rollup() == before + 1
            assert _days(rows, 1) == expected
            assert isinstance(rows[0][2], int)


def test_psycopg_binds_parameters_and_prepares_statements(running: Running) -> None:
    statement = ("SELECT region, COUNT(*) AS events FROM events WHERE ts >= %s AND ts < %s "
                 "AND tenant_id = %s GROUP BY region HAVING COUNT(*) > %s ORDER BY region")
    body = {"measures": ["events"], "dimensions": ["region"],
            "filters": [{"member": "tenant_id", "op": "eq", "value": 2},
                        {"member": "events", "op": "gt", "value": 3}],
            "time_range": {"from": "2026-01-02", "to": "2026-01-09"}, "order": ["region"]}
    expected = _expected(running, body)
    with psycopg.connect(running.dsn()) as conn:
        for _ in range(3):  # the third run uses the prepared statement (prepare_threshold)
            params = (dt.datetime(2026, 1, 2), dt.date(2026, 1, 9), 2, 3)
            assert conn.execute(statement, params, prepare=True).fetchall() == expected


def test_psycopg_answers_year_and_day_buckets(running: Running) -> None:
    with psycopg.connect(running.dsn()) as conn:
        years = conn.execute("SELECT EXTRACT(YEAR FROM ts) AS y, COUNT(*) FROM events "
                             "GROUP BY 1").fetchall()
        days = conn.execute("SELECT ts::date AS d, COUNT(*) FROM events WHERE region = 'eu' "
                            "GROUP BY 1 ORDER BY 1 LIMIT 3").fetchall()
    assert years == [(2026, running.query({"measures": ["events"]})[0]["events"])]
    expected = running.query({"measures": ["events"], "grain": "day", "order": ["ts"],
                              "filters": [{"member": "region", "op": "eq", "value": "eu"}],
                              "limit": 3})
    assert days == [(dt.date.fromisoformat(r["ts"]), r["events"]) for r in expected]


# -- asyncpg --------------------------------------------------------------------------------

def test_asyncpg_prepared_statements_in_binary(running: Running) -> None:
    body = {"measures": ["events", "biggest", "revenue_per_event"], "dimensions": ["region"],
            "grain": "month", "filters": [{"member": "region", "op": "eq", "value": "asia"}],
            "order": ["ts"]}
    expected = running.query(body)

    async def fetch() -> list[Any]:
        conn = await asyncpg.connect(running.dsn())
        try:
            prepared = await conn.prepare(
                "SELECT region, date_trunc('month', ts) AS month, MEASURE(events), "
                "MAX(biggest), MEASURE(revenue_per_event) FROM events WHERE region = $1 "
                "GROUP BY 1, 2 ORDER BY 2")
            assert [a.name for a in prepared.get_attributes()] == [
                "region", "month", "measure", "max", "measure"]
            return list(await prepared.fetch("asia"))
        finally:
            await conn.close()

    before = _served_by_rollup()
    rows = asyncio.run(fetch())
    assert _served_by_rollup() == before + 1
    assert [(r[0], r[1].date().isoformat(), r[2], r[3], r[4]) for r in rows] == [
        (e["region"], e["ts"], e["events"], e["biggest"], e["revenue_per_event"])
        for e in expected]


def test_asyncpg_cursor_fetches_an_answer_in_parts(running: Running) -> None:
    """A cursor executes its portal a few rows at a time (PortalSuspended in between)."""
    statement = ("SELECT region, date_trunc('day', ts) AS day, COUNT(*) FROM events "
                 "GROUP BY 1, 2 ORDER BY 1, 2")

    async def fetch() -> tuple[list[Any], list[Any]]:
        conn = await asyncpg.connect(running.dsn())
        try:
            async with conn.transaction():
                parts = [tuple(r) async for r in conn.cursor(statement, prefetch=4)]
            return parts, [tuple(r) for r in await conn.fetch(statement)]
        finally:
            await conn.close()

    parts, whole = asyncio.run(fetch())
    assert parts == whole and len(whole) > 4


# -- SQLAlchemy and pandas ------------------------------------------------------------------

def test_sqlalchemy_inspects_the_tables_and_pandas_reads_an_answer(running: Running) -> None:
    engine = sqlalchemy.create_engine(running.dsn().replace("postgresql://",
                                                            "postgresql+psycopg://"))
    try:
        inspector = sqlalchemy.inspect(engine)
        assert inspector.get_table_names() == ["events"]
        assert inspector.has_table("events") and not inspector.has_table("nope")
        columns = {c["name"]: c for c in inspector.get_columns("events")}
        assert str(columns["region"]["type"]) == "TEXT"
        assert str(columns["ts"]["type"]) == "TIMESTAMP"
        assert str(columns["events"]["type"]) == "BIGINT"
        assert columns["events"]["comment"] == "measure: Number of events."
        assert inspector.get_pk_constraint("events")["constrained_columns"] == []
        assert inspector.get_foreign_keys("events") == []
        assert inspector.get_indexes("events") == []
        assert inspector.get_table_comment("events")["text"] == "One row per event."
        before = _served_by_rollup()
        frame = pd.read_sql("SELECT region, MEASURE(events) AS events FROM events "
                            "GROUP BY region ORDER BY events DESC", engine)
        assert _served_by_rollup() == before + 1
    finally:
        engine.dispose()
    expected = running.query({"measures": ["events"], "dimensions": ["region"],
                              "order": [{"member": "events", "direction": "desc"}]})
    assert frame.to_dict("records") == expected


# -- access control -------------------------------------------------------------------------

def test_a_tenant_sees_only_its_rows_also_through_the_cache(running: Running) -> None:
    statement = "SELECT region, MEASURE(events), SUM(revenue) FROM events GROUP BY 1 ORDER BY 1"
    body = {"measures": ["events", "revenue"], "dimensions": ["region"], "order": ["region"]}
    answers = {}
    for tenant in (1, 2, 1, 2):  # the second round is answered from the result cache
        password = token(tenant)
        with psycopg.connect(running.dsn(password)) as conn:
            rows = conn.execute(statement).fetchall()
        assert rows == _expected(running, body, password)
        answers.setdefault(tenant, rows)
        assert rows == answers[tenant]
    assert answers[1] != answers[2]
    with psycopg.connect(running.dsn(token(1))) as conn:
        assert conn.execute("SELECT DISTINCT tenant_id FROM events").fetchall() == [(1,)]


@pytest.mark.parametrize("password, message", [
    ("not-a-key", "password authentication failed"),
    ("sk_0123456789ab_bogus", "password authentication failed"),
])
def test_a_wrong_password_is_refused(running: Running, password: str, message: str) -> None:
    with pytest.raises(psycopg.OperationalError, match=message):
        psycopg.connect(running.dsn(password))


def test_a_token_without_the_read_scope_is_refused(running: Running) -> None:
    with pytest.raises(psycopg.OperationalError, match="lacks the 'read' scope"):
        psycopg.connect(running.dsn(token(1, scope="ingest")))
