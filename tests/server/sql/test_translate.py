"""The translation of SQL over the model's tables into ``/v1/query`` bodies (pure: a schema
built by hand), and the PostgreSQL errors of what cannot be answered exactly."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlglot

from server.sql.schema import DIMENSION, MEASURE, METRIC, TIME, Column, Table
from server.sql.translate import SqlError, bind, translate
from server.sql.types import FLOAT8, INT8, TEXT, TIMESTAMP

EVENTS = Table("events", "One row per event.", (
    Column("region", TEXT, DIMENSION),
    Column("tenant_id", INT8, DIMENSION),
    Column("user.country", TEXT, DIMENSION),
    Column("ts", TIMESTAMP, TIME),
    Column("events", INT8, MEASURE, "count"),
    Column("paying", INT8, MEASURE, "count", filtered=True),
    Column("revenue", FLOAT8, MEASURE, "sum", "amount"),
    Column("users", INT8, MEASURE, "count_distinct", "user_id"),
    Column("biggest", FLOAT8, MEASURE, "max", "amount"),
    Column("share", FLOAT8, METRIC),
))
SCHEMA = {"events": EVENTS}


def body(sql: str, *values: Any) -> dict[str, Any]:
    translated = translate(sqlglot.parse_one(sql, read="postgres"), SCHEMA, 100_000)
    return bind(translated, list(values)).body


def error(sql: str) -> SqlError:
    with pytest.raises(SqlError) as caught:
        body(sql)
    return caught.value


def test_a_grouped_query_becomes_dimensions_grain_measures_filters_order_limit() -> None:
    assert body(
        "SELECT region, date_trunc('DAY', ts) AS day, MEASURE(events), SUM(revenue) AS r "
        "FROM public.events WHERE ts >= '2026-03-01' AND ts < TIMESTAMP '2026-03-08' "
        "AND region IN ('us-east', 'eu') GROUP BY 1, 2 HAVING SUM(revenue) > 5 "
        "ORDER BY 3 DESC, day LIMIT 10 OFFSET 20") == {
        "source": "events", "measures": ["events", "revenue"], "dimensions": ["region"],
        "grain": "day",
        "filters": [{"member": "region", "op": "in", "values": ["us-east", "eu"]},
                    {"member": "revenue", "op": "gt", "values": [5]}],
        "time_range": {"from": "2026-03-01", "to": "2026-03-08"},
        "order": [{"member": "events", "direction": "desc", "nulls": "first"},
                  {"member": "ts", "direction": "asc"}],
        "limit": 10, "offset": 20}


@pytest.mark.parametrize("aggregate, measure", [
    ("COUNT(*)", "events"), ("SUM(events)", "events"), ("SUM(revenue)", "revenue"),
    ("SUM(amount)", "revenue"), ("MAX(biggest)", "biggest"), ("MAX(amount)", "biggest"),
    ("COUNT(DISTINCT user_id)", "users"), ("MEASURE(share)", "share"), ("share", "share"),
    ("MEASURE(users)", "users"),
])
def test_aggregates_matching_a_measure_stand_for_it(aggregate: str, measure: str) -> None:
    assert body(f"SELECT {aggregate} FROM events")["measures"] == [measure]


@pytest.mark.parametrize("condition, filters", [
    ("region = 'a'", [{"member": "region", "op": "eq", "values": ["a"]}]),
    ("'a' <> region", [{"member": "region", "op": "ne", "values": ["a"]}]),
    ("region NOT IN ('a', 'b')", [{"member": "region", "op": "not_in", "values": ["a", "b"]}]),
    ("region LIKE 'us%'", [{"member": "region", "op": "starts_with", "values": ["us"]}]),
    ("region LIKE '%s-e%'", [{"member": "region", "op": "contains", "values": ["s-e"]}]),
    ("region ILIKE 'U_%'", [{"member": "region", "op": "ilike", "values": ["U_%"]}]),
    ("region NOT ILIKE 'u%'", [{"member": "region", "op": "not_ilike", "values": ["u%"]}]),
    ("region IS NULL", [{"member": "region", "op": "is_null"}]),
    ("NOT region IS NULL", [{"member": "region", "op": "is_not_null"}]),
    ("tenant_id BETWEEN 1 AND 3", [{"and": [{"member": "tenant_id", "op": "gte", "values": [1]},
                                            {"member": "tenant_id", "op": "lte",
                                             "values": [3]}]}]),
    ("(region = 'a' OR tenant_id > -2) AND \"user.country\" = 'FR'",
     [{"or": [{"member": "region", "op": "eq", "values": ["a"]},
              {"member": "tenant_id", "op": "gt", "values": [-2]}]},
      {"member": "user.country", "op": "eq", "values": ["FR"]}]),
    ("NOT (region = 'a' AND tenant_id <= 2)",
     [{"or": [{"member": "region", "op": "ne", "values": ["a"]},
              {"member": "tenant_id", "op": "gt", "values": [2]}]}]),
])
def test_conditions_become_filters(condition: str, filters: list[Any]) -> None:
    found = body(f"SELECT region, MEASURE(events) FROM events WHERE {condition} GROUP BY 1")
    assert found["filters"] == filters


@pytest.mark.parametrize("condition, time_range", [
    ("ts >= '2026-03-01' AND ts < '2026-03-08'", {"from": "2026-03-01", "to": "2026-03-08"}),
    ("ts BETWEEN '2026-03-01' AND '2026-03-07 23:59:59'",
     {"from": "2026-03-01", "to": "2026-03-08 00:00:00"}),
    ("ts > '2026-03-01 10:00:00' AND '2026-03-08' >= ts",
     {"from": "2026-03-01 10:00:01", "to": "2026-03-08 00:00:01"}),
    ("ts >= TO_TIMESTAMP('2026-03-01 00:00:00.000000', 'YYYY-MM-DD HH24:MI:SS.US')",
     {"from": "2026-03-01 00:00:00.000000"}),
    ("ts < CAST('2026-03-08' AS DATE)", {"to": "2026-03-08"}),
])
def test_ranges_on_the_time_column_become_the_time_range(condition: str,
                                                          time_range: dict[str, str]) -> None:
    assert body(f"SELECT COUNT(*) FROM events WHERE {condition}")["time_range"] == time_range


@pytest.mark.parametrize("bucket, grain, shown", [
    ("date_trunc('month', ts)", "month", "timestamp"), ("ts::date", "day", "date"),
    ("CAST(ts AS DATE)", "day", "date"), ("DATE(ts)", "day", "date"),
    ("EXTRACT(YEAR FROM ts)", "year", "int8"), ("date_part('year', ts)", "year", "int8"),
])
def test_buckets_of_the_time_column_are_grains(bucket: str, grain: str, shown: str) -> None:
    translated = translate(sqlglot.parse_one(
        f"SELECT {bucket} AS b, COUNT(*) FROM events GROUP BY 1 ORDER BY b", read="postgres"),
        SCHEMA, 100)
    assert translated.body["grain"] == grain and translated.body["dimensions"] == []
    assert translated.body["order"] == [{"member": "ts", "direction": "asc"}]
    assert translated.outputs[0].type.name == shown


def test_parameters_are_bound_into_the_body() -> None:
    found = body("SELECT region, COUNT(*) FROM events WHERE ts >= $1 AND region = $2 "
                 "AND tenant_id IN ($3, $4) GROUP BY 1 LIMIT $5",
                 dt.datetime(2026, 3, 1, 12), "eu", 1, 2, 5)
    assert found["time_range"] == {"from": "2026-03-01 12:00:00"}
    assert found["filters"] == [{"member": "region", "op": "eq", "values": ["eu"]},
                                {"member": "tenant_id", "op": "in", "values": [1, 2]}]
    assert found["limit"] == 5
    translated = translate(sqlglot.parse_one(
        "SELECT COUNT(*) FROM events WHERE ts >= $1 AND region = $2 HAVING COUNT(*) > $3",
        read="postgres"), SCHEMA, 100)
    assert [translated.parameters[i].name for i in range(3)] == ["timestamp", "text", "int8"]


def test_wrapping_subqueries_and_ctes_fold_in() -> None:
    inner = "SELECT region, MEASURE(events) AS n FROM events GROUP BY 1 ORDER BY n DESC"
    assert body(f"SELECT * FROM ({inner}) AS virtual_table LIMIT 1000") == body(
        f"{inner} LIMIT 1000")
    assert body(f"WITH t AS ({inner} LIMIT 5) SELECT n, region FROM t LIMIT 10")["limit"] == 5
    view = body("SELECT region, COUNT(*) FROM (SELECT * FROM events WHERE region = 'a') AS v "
                "GROUP BY region")
    assert view["filters"] == [{"member": "region", "op": "eq", "values": ["a"]}]


@pytest.mark.parametrize("limit, rows, strict, empty", [
    ("", 777, True, False), ("LIMIT ALL", 777, True, False), ("LIMIT NULL", 777, True, False),
    ("LIMIT 5", 5, False, False), ("LIMIT 100000", 777, True, False),
    ("LIMIT 0", 1, False, True), ("FETCH FIRST 3 ROWS ONLY", 3, False, False),
    ("LIMIT $1::INTEGER", 9, False, False), ("LIMIT (4)", 4, False, False),
    ("LIMIT '6'", 6, False, False),
])
def test_limits_ask_the_rows_wanted_and_more_than_allowed_is_all_or_an_error(
        limit: str, rows: int, strict: bool, empty: bool) -> None:
    translated = translate(sqlglot.parse_one(f"SELECT region FROM events GROUP BY 1 {limit}",
                                             read="postgres"), SCHEMA, 777)
    bound = bind(translated, [9])
    assert (bound.body["limit"], bound.strict, bound.empty) == (rows, strict, empty)


@pytest.mark.parametrize("sql, sqlstate, says", [
    ("SELECT SUM(users) FROM events", "0A000", "write MEASURE(users)"),
    ("SELECT AVG(revenue) FROM events", "0A000", "write MEASURE(revenue)"),
    ("SELECT COUNT(region) FROM events", "0A000", "COUNT(*) counts rows"),
    ("SELECT SUM(paying) / COUNT(*) FROM events", "0A000", "cannot be answered exactly"),
    ("SELECT * FROM events", "0A000", "raw rows"),
    ("SELECT region FROM events", "42803", "GROUP BY (or DISTINCT)"),
    ("SELECT region, COUNT(*) FROM events", "42803", "must appear in the GROUP BY"),
    ("SELECT ts, COUNT(*) FROM events GROUP BY 1", "0A000", "date_trunc('day', ts)"),
    ("SELECT COUNT(*) FROM events e JOIN users u ON e.x = u.y", "0A000", "joins between"),
    ("SELECT COUNT(*) FROM nope", "42P01", 'relation "nope" does not exist'),
    ("SELECT COUNT(*) FROM other.events", "42P01", "schema public"),
    ("SELECT nope FROM events GROUP BY 1", "42703", 'column "nope" does not exist'),
    ("SELECT COUNT(*) FROM events WHERE events > 3", "42803", "compare it in HAVING"),
    ("SELECT COUNT(*) FROM events WHERE ts >= '2026-01-01' OR region = 'a'", "0A000",
     "joined with AND"),
    ("SELECT COUNT(*) FROM events WHERE ts = '2026-01-01'", "0A000", "filtered by a range"),
    ("SELECT COUNT(*) FROM events WHERE region LIKE 'a%b'", "0A000", "use ILIKE"),
    ("SELECT COUNT(*) FROM events WHERE region = NULL", "0A000", "IS NULL"),
    ("SELECT COUNT(*) FROM events WHERE region IN (SELECT region FROM events)", "0A000",
     "list the values"),
    ("SELECT region, SUM(revenue) OVER (PARTITION BY region) FROM events", "0A000",
     "cannot be answered exactly"),
    ("SELECT date_trunc('day', ts), date_trunc('month', ts), COUNT(*) FROM events GROUP BY 1, 2",
     "0A000", "one grain"),
    ("SELECT date_trunc('second', ts), COUNT(*) FROM events GROUP BY 1", "0A000", "grains are"),
    ("INSERT INTO events VALUES (1)", "0A000", "read with SELECT"),
    ("SELECT EXTRACT(MONTH FROM ts), COUNT(*) FROM events GROUP BY 1", "0A000",
     "date_trunc('month', ts)"),
])
def test_what_cannot_be_answered_exactly_is_an_error_saying_what_to_write(
        sql: str, sqlstate: str, says: str) -> None:
    found = error(sql)
    assert found.sqlstate == sqlstate
    assert says in found.message + (found.hint or "")
