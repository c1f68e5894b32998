"""A comparison's changes computed from the rows equal ClickHouse's ``m - c`` and
``m / nullIf(c, 0) - 1`` for every kind of value a measure has: integers, floats (NaN,
infinities, signed zeros, Float32), decimals of several scales and signs, nulls."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from sqlglot import exp

from engine.dialect.render import render
from engine.query.request import Order, Query, QueryError, TimeRange
from engine.serving.changes import change_sql, change_value, changes, complete
from engine.serving.plan import RollupStats
from engine.serving.router import plan_query
from server.warehouse.statements import Warehouse
from tests.reference import compiled_reference

#: (ClickHouse type, pairs of (current, compared) values)
CASES: list[tuple[str, list[tuple[str, str]]]] = [
    ("UInt64", [("7", "10"), ("10", "7"), ("0", "0"), ("5", "0"),
                ("18446744073709551615", "3"), ("9007199254740993", "3")]),
    ("Int64", [("-7", "10"), ("-9223372036854775807", "-1")]),
    ("Float64", [("0.1", "0.3"), ("nan", "1"), ("1", "nan"), ("inf", "2"), ("1", "-0"),
                 ("-0", "5"), ("1e308", "1e-308"), ("2.5", "-inf")]),
    ("Float32", [("1.1", "0.3"), ("3.4e38", "1e-38")]),
    ("Decimal(38, 2)", [("-10", "3"), ("10", "3"), ("2", "3"), ("0", "7.77"), ("5", "0"),
                        ("99999999999999999999999999999999.99", "0.01")]),
    ("Decimal(38, 4)", [("2", "3"), ("-2", "3"), ("1.0001", "-1.0001")]),
    ("Decimal(9, 1)", [("10.5", "3"), ("-0.1", "0.3")]),
    ("Nullable(Float64)", [("NULL", "1"), ("1", "NULL"), ("NULL", "NULL")]),
]


def _same(ours: object, theirs: object) -> bool:
    if isinstance(ours, float) and isinstance(theirs, float) and math.isnan(theirs):
        return math.isnan(ours)
    return type(ours) is type(theirs) and ours == theirs or \
        isinstance(ours, float) and isinstance(theirs, float) and ours == theirs


@pytest.mark.parametrize(("kind", "pairs"), CASES, ids=[kind for kind, _ in CASES])
def test_changes_equal_clickhouse(warehouse: Warehouse, kind: str,
                                  pairs: list[tuple[str, str]]) -> None:
    difference, ratio = changes(["m"])
    for current, before in pairs:
        m, c = ("NULL" if v == "NULL" else f"CAST('{v}', '{kind}')" for v in (current, before))
        d, r = (render(change_sql(change, exp.column("m"), exp.column("c")))
                for change in (difference, ratio))
        row = warehouse.query(f"SELECT {m} AS m, {c} AS c, {d} AS d, {r} AS r").rows[0]
        found = (change_value(difference, row[0], row[1]), change_value(ratio, row[0], row[1]))
        assert _same(found[0], row[2]) and _same(found[1], row[3]), (kind, current, before,
                                                                      row, found)


def test_changes_need_numbers() -> None:
    difference, _ = changes(["m"])
    with pytest.raises(QueryError, match="'m__change' needs numbers"):
        change_value(difference, "a", "b")


def test_complete_puts_every_column_in_place() -> None:
    columns = ["region", "m", "m__compare", "m__change", "m__change_ratio"]
    later = tuple(c for c in changes(["m"]) if c.column == "m__change_ratio")
    found = complete(columns, later, [["a", "b"], [3, 1], [2, 0], [1, 1]])
    assert found == [["a", "b"], [3, 1], [2, 0], [1, 1], [0.5, None]]
    assert isinstance(found[4][0], float)


def test_plans_leave_changes_to_the_rows_unless_ordered_by() -> None:
    compiled = compiled_reference()
    source = compiled.sources["events"]
    ready = {r.qualified_table: RollupStats(1000, 100_000) for r in compiled.rollups}
    asked = Query("events", ("total_events",), ("region",), "month", compare="1 month",
                  time_range=TimeRange("2026-02-01", "2026-04-01"))
    plan = plan_query(source, asked, ready)
    assert [c.column for c in plan.changes] == ["total_events__change",
                                                "total_events__change_ratio"]
    assert "__change" not in plan.sql and plan.columns[-2:] == (
        "total_events__change", "total_events__change_ratio")
    assert plan.windows[-1]["detail"].endswith("the changes are computed from the answer's rows")
    ordered = plan_query(source, replace(asked, order=(Order("total_events__change"),)), ready)
    assert [c.column for c in ordered.changes] == ["total_events__change_ratio"]
    assert "AS total_events__change" in ordered.sql
    assert "(total_events__change in SQL, for the order)" in str(ordered.windows[-1]["detail"])
