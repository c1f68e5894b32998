"""SELECTs on the embedded engine go straight to chDB (``EmbeddedClient``) and give what the
driver gives: the same columns, values and Python types, parameters bound the same way,
settings applied, ClickHouse's errors in our words."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest

from server.warehouse.availability import WarehouseError
from server.warehouse.pool import EmbeddedClient
from server.warehouse.statements import Warehouse

#: one value of most types an answer can hold, nulls and an empty answer's types included
TYPED = """
SELECT toUInt64(18446744073709551615) AS big, toInt8(-3) AS small, toFloat32(1.1) AS f32,
       nan AS not_a_number, -inf AS minus_inf, toDecimal128('-10.05', 2) AS money,
       toDecimal32('1.5', 1) AS short_money, toDate('2013-03-31') AS day,
       toDate32('1960-01-01') AS old_day, toDateTime('2013-03-10 01:59:59', 'UTC') AS instant,
       toDateTime64('2013-03-10 03:00:00.125', 3, 'America/New_York') AS zoned,
       CAST(NULL, 'Nullable(Float64)') AS missing, toLowCardinality('us-east') AS region,
       'quote '' and \\\\ slash' AS text, [1, 2, 3] AS numbers, ['a', NULL] AS names,
       toUUID('5b6fe1c6-77ef-4f8d-a4ec-3f4de5dbd8c2') AS id, (1, 'x') AS pair,
       map('a', 1) AS mapping, true AS yes
FROM numbers(3)
"""

PARAMETERIZED = """
SELECT {day: Date} AS day, {instant: DateTime64(3, 'UTC')} AS instant, {text: String} AS text,
       {names: Array(String)} AS names, {missing: Nullable(String)} AS missing,
       {count: UInt64} AS count, {share: Float64} AS share
"""

PARAMETERS: dict[str, Any] = {
    "day": date(2013, 2, 28), "instant": datetime(2013, 3, 10, 7, 0, 0, 125000),
    "text": "it's a \\ and a\ttab", "names": ["a'b", "c"], "missing": None,
    "count": 2**63, "share": 0.1}


def _driver_and_ours(warehouse: Warehouse) -> tuple[Any, EmbeddedClient]:
    client = warehouse.pool._acquire()
    warehouse.pool._pool.put(client)
    assert isinstance(client, EmbeddedClient), "the installed driver lost the embedded reads"
    return client._client, client


@pytest.mark.parametrize(("sql", "parameters"), [(TYPED, None), (PARAMETERIZED, PARAMETERS),
                                                 (TYPED + " WHERE 0", None)])
def test_embedded_reads_match_the_driver(warehouse: Warehouse, sql: str,
                                         parameters: dict[str, Any] | None) -> None:
    driver, ours = _driver_and_ours(warehouse)
    expected = driver.query(sql, parameters=parameters)
    found = ours.query(sql, parameters=parameters)
    assert found.column_names == expected.column_names
    assert [t.name for t in found.column_types] == [t.name for t in expected.column_types]
    assert repr(found.result_rows) == repr(expected.result_rows)  # NaN, types and zones too
    if parameters:
        row = found.result_rows[0]
        assert row[:3] == (PARAMETERS["day"], PARAMETERS["instant"].replace(
            tzinfo=row[1].tzinfo), PARAMETERS["text"])
        assert row[3:] == (["a'b", "c"], None, 2**63, 0.1)
    elif "WHERE 0" in sql:
        assert found.result_rows == []
    else:
        assert len(found.result_rows) == 3 and found.result_rows[0][5] == Decimal("-10.05")


def test_embedded_reads_apply_settings_and_report_statistics(warehouse: Warehouse) -> None:
    names, columns, stats = warehouse.query_columns(
        "SELECT getSetting('max_threads') AS t, count() AS n FROM numbers(1000)",
        bounded=True, settings={"max_threads": 1})
    assert names == ("t", "n") and columns == [[1], [1000]]
    assert stats.read_rows == 1000


def test_embedded_reads_report_clickhouse_errors(warehouse: Warehouse) -> None:
    with pytest.raises(WarehouseError, match=r"ClickHouse rejected a query: Code: 47\."):
        warehouse.query("SELECT nope")
    with pytest.raises(WarehouseError, match="max_result_rows|TOO_MANY_ROWS"):
        warehouse.query_columns("SELECT number FROM numbers(10)", bounded=True,
                                settings={"max_result_rows": 1, "result_overflow_mode": "throw"})
    assert warehouse.query("SELECT 1 AS one").rows == [(1,)]  # the client is still good


SETTINGS_SEEN = ("SELECT getSetting('max_threads') AS threads, "
                 "getSetting('max_execution_time') AS seconds")


class _Recording:
    """The client's chDB connection, with the SQL it is sent written down."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.sent: list[str] = []

    def query(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        self.sent.append(sql)
        return self.conn.query(sql, *args, **kwargs)


def test_held_settings_are_set_once_and_apply_to_bounded_reads_only(
        warehouse: Warehouse) -> None:
    _, ours = _driver_and_ours(warehouse)
    seconds = int(warehouse.limits.query_timeout)
    assert warehouse.pool.held == {"max_execution_time": seconds, "max_threads": 1,
                                   "max_memory_usage": warehouse.limits.query_max_memory,
                                   "log_queries": 0}
    recording = _Recording(ours._conn)
    ours._conn = recording  # the pool is a stack: each call below takes this client again
    try:
        ours.driver  # noqa: B018 - start from a connection at its defaults
        recording.sent.clear()
        for _ in range(3):  # a request's read on a rollup: the held settings, none sent
            _, columns, _ = warehouse.query_columns(SETTINGS_SEEN, bounded=True,
                                                        settings={"max_threads": 1})
            assert columns == [[1], [seconds]]
        sets = [sql for sql in recording.sent if sql.startswith("SET ")]
        assert len(sets) == 1 and "max_threads = 1" in sets[0]
        assert all("SETTINGS" not in sql for sql in recording.sent if sql.startswith("SELECT"))
        # a read on the raw table: the default thread count, still bounded
        _, columns, _ = warehouse.query_columns(SETTINGS_SEEN, bounded=True)
        assert columns[1] == [seconds] and columns[0] != [1]
        assert "max_threads = DEFAULT" in recording.sent[-1]
        # another value of a held setting
        _, columns, _ = warehouse.query_columns(SETTINGS_SEEN, bounded=True,
                                                settings={"max_threads": 2})
        assert columns == [[2], [seconds]]
        # an unbounded statement of the service: no bound, no thread limit
        assert warehouse.query(SETTINGS_SEEN).rows[0][1] == 0
        # the driver (commands, inserts, streams) finds the connection at its defaults
        assert ours.command("SELECT getSetting('max_execution_time')") == 0
        assert recording.sent[-1].startswith("SET ") and "DEFAULT" in recording.sent[-1]
        assert warehouse.query_columns(SETTINGS_SEEN, bounded=True,
                                       settings={"max_threads": 1})[1] == [[1], [seconds]]
        assert recording.sent[-2].startswith(f"SET log_queries = 0, max_execution_time = "
                                             f"{seconds}")
    finally:
        ours._conn = recording.conn
