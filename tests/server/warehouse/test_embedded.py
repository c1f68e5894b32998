"""SELECTs on the embedded engine go straight to chDB (``EmbeddedClient``) and give what the
driver gives: the same columns, values and Python types (``read_native``), parameters bound
the same way, settings applied, ClickHouse's errors in our words."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.warehouse.availability import WarehouseError
from server.warehouse.embedded import EmbeddedClient, _read_blocks, _read_numbers
from server.warehouse.statements import SMALL_READ_SETTINGS, TINY_READ_SETTINGS, Warehouse

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
    warehouse.pool.give_back(client)
    assert isinstance(client, EmbeddedClient), "the installed driver lost the embedded reads"
    return client._client, client


#: nullable and non-nullable columns of every type read without the driver's readers, and an
#: answer of many blocks
EDGES = """
SELECT number AS n, toInt8(number % 256 - 128) AS i8, toUInt16(number) AS u16,
       toInt64(number) * -1000003 AS i64, number / 7 AS f64, toFloat32(number / 3) AS f32,
       if(number % 3 = 0, NULL, number) AS maybe_n, if(number % 4 = 0, NULL, number / 3) AS maybe_f,
       if(number % 5 = 0, NULL, toString(number)) AS maybe_s, unhex('c328ff') AS not_utf8,
       toDate('1970-01-01') + number % 60000 AS day, if(number % 2, NULL, toDate('2149-06-06'))
       AS maybe_day, repeat('é', number % 7) AS text
FROM numbers(2500) SETTINGS max_block_size = 1000
"""


#: an answer of fixed-width numbers only, which ``read_native`` reads without the driver's
#: buffer: every such type at its extremes, over several blocks
NUMBERS = """
SELECT toUInt8(number % 256) AS u8, toUInt16(65535 - number) AS u16,
       toUInt32(4294967295 - number) AS u32, toUInt64(18446744073709551615 - number) AS u64,
       toInt8(number % 256 - 128) AS i8,
       toInt16(-32768 + number) AS i16, toInt32(-2147483648 + number) AS i32,
       toInt64(-9223372036854775807 + number) AS i64,
       toFloat32(if(number = 5, nan, if(number = 6, inf, number / 3))) AS f32,
       if(number = 7, nan, if(number = 8, -inf, number / 7)) AS f64
FROM numbers(2500) SETTINGS max_block_size = 1000
"""


@pytest.mark.parametrize(("sql", "parameters"), [(TYPED, None), (PARAMETERIZED, PARAMETERS),
                                                 (TYPED + " WHERE 0", None), (EDGES, None),
                                                 (NUMBERS, None)])
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
    elif sql is EDGES:
        assert len(found.result_rows) == 2500 and found.result_rows[2499][0] == 2499
        assert found.result_columns[6][:2] == [None, 1] and found.result_columns[12][6] == "é" * 6
    elif sql is NUMBERS:
        assert len(found.result_rows) == 2500 and found.result_columns[3][0] == 2**64 - 1
        columns = found.result_columns
        assert (columns[7][0], columns[4][:2]) == (-2**63 + 1, [-128, -127])
    else:
        assert len(found.result_rows) == 3 and found.result_rows[0][5] == Decimal("-10.05")


def test_answers_of_numbers_read_without_the_drivers_buffer(warehouse: Warehouse) -> None:
    _, ours = _driver_and_ours(warehouse)
    parts = ours._parts
    # several blocks; one row; an empty answer (chDB sends no bytes for it)
    for sql in (NUMBERS, "SELECT count() AS n, sum(number / 2) AS half FROM numbers(10)",
                NUMBERS.replace("FROM numbers(2500)", "FROM numbers(0)")):
        data = ours._conn.query(sql + " FORMAT Native", "Native").bytes()
        numbers = _read_numbers(parts, data)
        assert numbers is not None
        general = _read_blocks(parts, data, ours._context)
        assert (numbers.column_names, numbers._types) == (general.column_names, general._types)
        assert repr(numbers.result_columns) == repr(general.result_columns)
    # an answer of one block cut short anywhere is left to the general reader, which says so
    one = ours._conn.query("SELECT count() AS n, sum(number / 2) AS half FROM numbers(10) "
                           "FORMAT Native", "Native").bytes()
    assert all(_read_numbers(parts, one[:cut]) is None for cut in range(1, len(one)))
    text = ours._conn.query("SELECT 1 AS n, 'a' AS s FORMAT Native", "Native").bytes()
    assert _read_numbers(parts, text) is None  # any other type: the driver's buffer


@settings(max_examples=25)
@given(values=st.lists(st.tuples(
    st.integers(-2**63, 2**63 - 1), st.integers(0, 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
    st.dates(min_value=date(1970, 1, 1), max_value=date(2149, 6, 6)), st.booleans()),
    max_size=40))
def test_decoded_answers_are_the_drivers(warehouse: Warehouse,
                                         values: list[tuple[Any, ...]]) -> None:
    """Any values of the types ``read_native`` reads itself come out as the driver's."""
    driver, ours = _driver_and_ours(warehouse)
    signed, unsigned, floats, texts, days, missing = (list(c) for c in zip(*values, strict=True)) \
        if values else ([], [], [], [], [], [])
    sql = """
        SELECT tupleElement(t, 1) AS signed, tupleElement(t, 2) AS unsigned,
               tupleElement(t, 3) AS real, tupleElement(t, 4) AS text,
               tupleElement(t, 5) AS day,
               if(tupleElement(t, 6), NULL, tupleElement(t, 2)) AS maybe_unsigned,
               if(tupleElement(t, 6), NULL, tupleElement(t, 4)) AS maybe_text
        FROM (SELECT arrayJoin(arrayZip({signed: Array(Int64)}, {unsigned: Array(UInt64)},
                                        {floats: Array(Float64)}, {texts: Array(String)},
                                        {days: Array(Date)}, {missing: Array(Bool)})) AS t)
    """
    parameters = {"signed": signed, "unsigned": unsigned, "floats": floats, "texts": texts,
                  "days": days, "missing": missing}
    expected = driver.query(sql, parameters=parameters)
    found = ours.query(sql, parameters=parameters)
    assert found.column_names == expected.column_names
    assert repr(found.result_columns) == repr(expected.result_columns)
    assert found.result_columns[:5] == [signed, unsigned, floats, texts, days] if values \
        else found.result_columns == [[] for _ in range(7)] or not found.column_names


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
                                   "log_queries": 0, "optimize_move_to_prewhere": 0,
                                   "query_plan_enable_optimizations": 0}
    recording = _Recording(ours._conn)
    ours._conn = recording  # the pool is a stack: each call below takes this client again
    try:
        ours.driver  # noqa: B018 - start from a connection at its defaults
        recording.sent.clear()
        for _ in range(3):  # a request's read on a small rollup: the held settings, none sent
            _, columns, _ = warehouse.query_columns(SETTINGS_SEEN, bounded=True,
                                                    settings=TINY_READ_SETTINGS)
            assert columns == [[1], [seconds]]
        sets = [sql for sql in recording.sent if sql.startswith("SET ")]
        assert len(sets) == 1 and "max_threads = 1" in sets[0]
        assert all("SETTINGS" not in sql for sql in recording.sent if sql.startswith("SELECT"))
        # on a rollup of more than a granule: the plan's optimizations back, one thread still
        _, columns, _ = warehouse.query_columns(
            SETTINGS_SEEN + ", getSetting('query_plan_enable_optimizations') AS optimized",
            bounded=True, settings=SMALL_READ_SETTINGS)
        assert columns == [[1], [seconds], [True]]
        assert "\n SETTINGS query_plan_enable_optimizations = DEFAULT\n" in recording.sent[-1]
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
                                       settings=SMALL_READ_SETTINGS)[1] == [[1], [seconds]]
        assert recording.sent[-2].startswith(f"SET log_queries = 0, max_execution_time = "
                                             f"{seconds}")
    finally:
        ours._conn = recording.conn
