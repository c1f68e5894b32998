"""The SQL interface's protocol under real clients and hostile input: stacked statements,
comments, huge IN lists, deep nesting, oversized and garbage messages (clear errors, and the
listener keeps answering), cancel requests, a query answered while another runs, transactions,
settings, TLS and the connection bound."""

from __future__ import annotations

import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
import sqlglot
from psycopg import errors

from engine.query.limits import QueryLimits
from semantic import Model
from server.auth.settings import AccessSettings
from server.settings import Limits, SqlSettings
from server.sql.catalog import SETTINGS, Catalog, CatalogTimeout
from server.warehouse.statements import Warehouse
from tests.server.sql.conftest import ROWS, Running, serve_sql

COUNT = "SELECT MEASURE(events) FROM events"


def _alive(running: Running) -> None:
    with psycopg.connect(running.dsn()) as conn:
        assert conn.execute(COUNT).fetchone() is not None


def _sqlstate(running: Running, statement: str) -> tuple[str | None, str]:
    with psycopg.connect(running.dsn(), autocommit=True) as conn:
        with pytest.raises(psycopg.Error) as caught:
            conn.execute(statement)
        # the connection goes on after the error
        assert conn.execute(COUNT).fetchone() is not None
    return caught.value.sqlstate, str(caught.value)


def _simple_query(conn: psycopg.Connection[object], text: bytes) -> list[psycopg.pq.abc.PGresult]:
    """Every result of a simple-protocol Query message (several statements in one)."""
    raw = conn.pgconn
    raw.send_query(text)
    raw.flush()
    results = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        raw.consume_input()
        if raw.is_busy():
            time.sleep(0.01)
            continue
        result = raw.get_result()
        if result is None:
            return results
        results.append(result)
    raise AssertionError("no answer in 20 s")


def test_stacked_statements_run_in_order_and_stop_at_the_first_error(running: Running) -> None:
    with psycopg.connect(running.dsn(), autocommit=True) as conn:
        results = _simple_query(conn, f"{COUNT}; DROP TABLE events; {COUNT}".encode())
        assert [r.status for r in results] == [psycopg.pq.ExecStatus.TUPLES_OK,
                                               psycopg.pq.ExecStatus.FATAL_ERROR]
        message = results[1].error_field(psycopg.pq.DiagnosticField.MESSAGE_PRIMARY)
        assert message is not None and b"read-only" in message
    with psycopg.connect(running.dsn(), autocommit=True) as conn:  # one prepared statement
        with pytest.raises(errors.SyntaxError, match="multiple commands"):
            conn.execute(f"{COUNT} WHERE region = %s; {COUNT}", ["eu"])


def test_comments_are_ignored(running: Running) -> None:
    with psycopg.connect(running.dsn()) as conn:
        assert conn.execute(f"-- a comment\n/* another */ {COUNT} -- tail").fetchall() == \
            conn.execute(COUNT).fetchall()


@pytest.mark.parametrize("statement, sqlstate, says", [
    ("SELECT COUNT(*) FROM events WHERE region IN ("
     + ", ".join(f"'r{i}'" for i in range(10_001)) + ")", "22023", "10000"),
    ("SELECT COUNT(*) FROM events WHERE " + "(" * 3000 + "region = 'a'" + ")" * 3000,
     "54001", "nested too deeply"),
    ("SELECT COUNT(*) FROM events WHERE " + " OR ".join(f"region = 'r{i}'" for i in range(400)),
     "22023", "filters"),
    ("SELEKT 1", "42601", "syntax error"),
    ("CREATE TABLE x (a int)", "25006", "read-only"),
    ("SELECT pg_sleep(1) FROM events", "0A000", "cannot be answered"),
    ("SELECT COUNT(*) FROM events; DELETE FROM events", "25006", "read-only"),
    ("SELECT MEASURE(events) FROM events WHERE ts >= 'not a date'", "22023",
     "the lower bound on the time column: cannot read 'not a date'"),
])
def test_hostile_statements_get_errors_and_the_connection_goes_on(
        running: Running, statement: str, sqlstate: str, says: str) -> None:
    state, message = _sqlstate(running, statement)
    assert state == sqlstate, message
    assert says in message


def test_oversized_and_garbage_messages_close_only_their_connection(running: Running) -> None:
    with socket.create_connection(("127.0.0.1", running.port), timeout=10) as sock:
        sock.sendall(b"\x00\x01garbage that is not a start-up packet" * 10)
        reply = sock.recv(4096)  # a FATAL error saying why, then closed
        assert reply.startswith(b"E") and b"08P01" in reply
        assert sock.recv(1024) == b""
    with psycopg.connect(running.dsn()) as conn:
        results = _simple_query(conn, b"SELECT '" + b"x" * (2 * 1024 * 1024) + b"'")
        result = results[0]
        assert result.status == psycopg.pq.ExecStatus.FATAL_ERROR
        message = result.error_field(psycopg.pq.DiagnosticField.MESSAGE_PRIMARY)
        assert message is not None and b"larger than the server accepts" in message
        assert conn.execute(COUNT).fetchone() is not None  # the connection goes on
    with socket.create_connection(("127.0.0.1", running.port), timeout=10) as sock:
        sock.sendall(struct.pack("!ii", 8, 80877103))  # SSLRequest, then hang up
        assert sock.recv(1) == b"N"
    with socket.create_connection(("127.0.0.1", running.port), timeout=10) as sock:
        # protocol 3.2 (a newer libpq): answered with NegotiateProtocolVersion, then 3.0
        packet = b"user\x00analyst\x00_pq_.x\x001\x00\x00"
        sock.sendall(struct.pack("!ii", 8 + len(packet), 196610) + packet)
        reply = sock.recv(64)
        assert reply[:1] == b"v" and struct.unpack("!ii", reply[5:13]) == (0, 1)
        assert b"_pq_.x" in reply
    _alive(running)


def test_a_cancel_request_stops_a_statement_while_others_are_answered(running: Running) -> None:
    slow = "SELECT MEASURE(slow) FROM events WHERE region = 'eu'"
    with psycopg.connect(running.dsn(), autocommit=True) as conn:
        failure: list[BaseException] = []

        def run() -> None:
            try:
                conn.execute(slow)
            except BaseException as exc:  # noqa: BLE001 - kept for the assertion
                failure.append(exc)

        thread = threading.Thread(target=run)
        started = time.monotonic()
        thread.start()
        time.sleep(0.3)
        # another connection is answered while the slow statement runs
        with psycopg.connect(running.dsn()) as other:
            assert other.execute(COUNT).fetchone() is not None
        assert time.monotonic() - started < 1.2
        conn.cancel_safe()
        thread.join(10)
        assert failure and isinstance(failure[0], errors.QueryCanceled), failure
        assert time.monotonic() - started < 1.2  # before the statement would have ended
        assert conn.execute(COUNT).fetchone() is not None


def test_transactions_settings_and_show(running: Running) -> None:
    with psycopg.connect(running.dsn()) as conn:  # psycopg opens a transaction (BEGIN)
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        conn.execute(COUNT)
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        with pytest.raises(errors.FeatureNotSupported):
            conn.execute("SELECT SUM(users) FROM events")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
        with pytest.raises(errors.InFailedSqlTransaction):
            conn.execute(COUNT)
        conn.rollback()
        conn.execute("SET application_name = 'report'")
        assert conn.execute("SHOW application_name").fetchone() == ("report",)
        assert conn.execute("SHOW transaction isolation level").fetchone() == (
            "read committed",)
        assert conn.execute("SELECT current_setting('application_name')").fetchone() == (
            "report",)
        assert conn.execute("SELECT version()").fetchone()[0].startswith("PostgreSQL 14")


def test_the_session_chooses_the_zone_of_buckets(running: Running) -> None:
    statement = ("SELECT date_trunc('day', ts) AS day, COUNT(*) FROM events "
                 "WHERE ts >= '2026-01-02' AND ts < '2026-01-04' GROUP BY 1 ORDER BY 1")
    body = {"measures": ["events"], "grain": "day", "order": ["ts"],
            "time_range": {"from": "2026-01-02", "to": "2026-01-04"}}
    with psycopg.connect(running.dsn(), autocommit=True) as conn:
        utc = conn.execute(statement).fetchall()
        conn.execute("SET TIME ZONE 'America/Los_Angeles'")  # PostgreSQL's own: buckets unchanged
        assert conn.execute(statement).fetchall() == utc
        conn.execute("SET semantic.timezone = 'America/Los_Angeles'")
        pacific = conn.execute(statement).fetchall()
    expected = running.query({**body, "timezone": "America/Los_Angeles"})
    assert [(d.date().isoformat(), n) for d, n in pacific] == [
        (r["ts"], r["events"]) for r in expected]
    assert pacific != utc
    with psycopg.connect(running.dsn(options="-c%20semantic.timezone%3DAmerica/Los_Angeles"),
                         autocommit=True) as conn:
        assert conn.execute(statement).fetchall() == pacific


def _certificate(folder: Path) -> tuple[str, str]:
    cert, key = folder / "server.crt", folder / "server.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return str(cert), str(key)


@pytest.fixture(scope="module")
def tls_server(sql_model: Model, warehouse: Warehouse,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    cert, key = _certificate(tmp_path_factory.mktemp("tls"))
    server, port = serve_sql(sql_model, warehouse, AccessSettings(),
                             SqlSettings(tls_cert=cert, tls_key=key, max_connections=2))
    with server:
        yield port


def test_tls_when_a_certificate_is_configured(tls_server: int) -> None:
    dsn = f"postgresql://analyst@127.0.0.1:{tls_server}/semantic"
    with psycopg.connect(dsn + "?sslmode=require") as conn:
        assert conn.pgconn.ssl_in_use
        # access control off: no password, every row
        assert conn.execute(COUNT).fetchone() == (len(ROWS),)


def test_connections_beyond_the_bound_are_refused(tls_server: int) -> None:
    dsn = f"postgresql://analyst@127.0.0.1:{tls_server}/semantic"  # sslmode=prefer: TLS
    with psycopg.connect(dsn), psycopg.connect(dsn):
        with pytest.raises(psycopg.OperationalError, match="too many clients already"):
            psycopg.connect(dsn)
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_what_tools_send_is_answered_as_postgresql_would(running: Running) -> None:
    notes = {"measures": ["events"], "dimensions": ["note"]}
    with psycopg.connect(running.dsn(), autocommit=True) as conn:
        # IS NOT NULL, unquoted upper-case names, PostgreSQL's NULL order (first, descending)
        got = conn.execute("SELECT NOTE, COUNT(*) FROM EVENTS WHERE NOTE IS NOT NULL "
                           "GROUP BY NOTE ORDER BY 1").fetchall()
        assert got == [(r["note"], r["events"]) for r in running.query(
            {**notes, "filters": [{"member": "note", "op": "is_not_null"}], "order": ["note"]})]
        first = conn.execute("SELECT note, COUNT(*) FROM events GROUP BY 1 ORDER BY 1 DESC "
                             "LIMIT 1").fetchone()
        assert first is not None and first[0] is None
        # LIMIT 0: the columns, no rows
        cursor = conn.execute("SELECT region, COUNT(*) AS n FROM events GROUP BY 1 LIMIT 0")
        assert cursor.fetchall() == [] and [d.name for d in cursor.description] == ["region", "n"]
        # a list parameter, a LIKE pattern parameter, a Decimal against a measure
        assert conn.execute("SELECT COUNT(*) FROM events WHERE region = ANY(%s)",
                            [["eu", "us"]]).fetchone() == conn.execute(
            "SELECT COUNT(*) FROM events WHERE region IN ('eu', 'us')").fetchone()
        assert conn.execute("SELECT region FROM events WHERE region LIKE %s GROUP BY 1",
                            ["e%"]).fetchall() == [("eu",)]
        assert conn.execute("SELECT region FROM events GROUP BY 1 HAVING COUNT(*) > %s "
                            "ORDER BY 1", [Decimal("0")]).fetchall() == [
            ("asia",), ("eu",), ("us",)]


def test_relative_dates_as_metabase_writes_them(running: Running) -> None:
    everything = running.query({"measures": ["events"]})[0]["events"]
    with psycopg.connect(running.dsn(), autocommit=True) as conn:
        assert conn.execute("SELECT COUNT(*) FROM events WHERE ts >= DATE_TRUNC('day', (NOW() "
                            "+ INTERVAL '-36500 day')) AND ts < CURRENT_DATE + 1"
                            ).fetchone() == (everything,)
        assert conn.execute("SELECT COUNT(*) FROM events WHERE ts >= now() - interval '1 day'"
                            ).fetchone() == (0,)  # the rows are of January 2026


def test_statements_without_a_table_are_not_answered_by_guesswork(running: Running) -> None:
    assert _sqlstate(running, "SELECT region")[0] == "42703"
    assert _sqlstate(running, "SELECT nonexistent_function(1)")[0] == "42883"
    assert _sqlstate(running, "SELECT 'unterminated")[0] == "42601"
    assert _sqlstate(running, "SELECT 1/0")[0] == "22012"
    assert _sqlstate(running, "SELECT 'abc'::int")[0] == "22P02"


def test_server_side_cursors_fetch_an_answer_in_parts(running: Running) -> None:
    statement = "SELECT region, date_trunc('day', ts), COUNT(*) FROM events GROUP BY 1, 2 " \
                "ORDER BY 1, 2"
    with psycopg.connect(running.dsn()) as conn:
        whole = conn.execute(statement).fetchall()
        with conn.cursor(name="parts") as cursor:  # DECLARE ... CURSOR, FETCH FORWARD n
            cursor.itersize = 7
            cursor.execute(statement)
            assert cursor.fetchmany(5) == whole[:5]
            assert cursor.fetchall() == whole[5:]
    assert len(whole) > 12


def test_the_row_limit_is_never_hidden_by_the_cache(sql_model: Model,
                                                    warehouse: Warehouse) -> None:
    """An answer cut at the row limit for a statement that asked for it is not served to the
    same statement without LIMIT (which is refused: more rows than an answer may have)."""
    server, port = serve_sql(sql_model, warehouse, AccessSettings(),
                             limits=Limits(query=QueryLimits(rows=2)))
    statement = "SELECT region, COUNT(*) FROM events GROUP BY 1 ORDER BY 1"
    with server, psycopg.connect(f"postgresql://a@127.0.0.1:{port}/s", autocommit=True) as conn:
        for _ in range(2):
            with pytest.raises(errors.ProgramLimitExceeded, match="more than 2 rows"):
                conn.execute(statement)
            assert len(conn.execute(statement + " LIMIT 2").fetchall()) == 2


def test_a_long_catalog_statement_is_stopped_and_the_server_goes_on(running: Running) -> None:
    catalog = Catalog({}, "u", "d", SETTINGS.get)
    endless = sqlglot.parse_one("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 "
                                "FROM r) SELECT count(*) FROM r", read="postgres")
    started = time.monotonic()
    with pytest.raises(CatalogTimeout):
        catalog.answer(endless, timeout=0.3)
    assert time.monotonic() - started < 3
    _alive(running)
