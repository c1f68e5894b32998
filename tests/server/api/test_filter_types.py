"""Filter values on dimensions of many ClickHouse types, on the real engine: what the checks
accept binds and matches (from a rollup and from the raw table alike); what they refuse is a
400 naming the value, never an engine error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlglot import parse_one

from server.warehouse.statements import Warehouse
from tests.support import apply_text, assert_error, fresh_database, insert_rows, model_text, serving

COLUMNS = {
    "e": "Enum8('a' = 1, 'b''s' = 2)", "ip": "IPv4", "ip6": "IPv6", "fs": "FixedString(3)",
    "dec": "Decimal(9, 2)", "f32": "Float32", "d32": "Date32", "dt64": "DateTime64(3)",
    "i8": "Int8", "lc": "LowCardinality(Nullable(String))", "flag": "Bool",
}
MODEL = """
version: 1
rollup_database: {db}
sources:
  things:
    table: {db}.things
    time: ts
    dimensions: {{e: {{}}, ip: {{}}, ip6: {{}}, fs: {{}}, dec: {{}}, f32: {{}}, d32: {{}},
                 dt64: {{}}, i8: {{}}, lc: {{}}, flag: {{}}}}
    measures:
      n: {{agg: count}}
    rollups:
      by_types: {{dimensions: [e, ip, fs, dec, i8], measures: [n]}}
"""
ROWS = [
    ("2026-01-01 00:00:00", "a", "10.0.0.1", "::1", "abc", "1.25", 0.5, "1950-06-01",
     "2026-01-01 00:00:00.250", -128, "x", True),
    ("2026-01-02 00:00:00", "b's", "10.0.0.2", "2001:db8::1", "ab", "-99.99", -2.0,
     "2200-01-01", "1901-01-01 00:00:00", 127, None, False),
]


@pytest.fixture(scope="module")
def client(warehouse: Warehouse) -> Iterator[TestClient]:  # type: ignore[type-arg]
    with fresh_database(warehouse, "types") as database:
        columns = ", ".join(f"{name} {kind}" for name, kind in COLUMNS.items())
        warehouse.command(parse_one(f"CREATE TABLE {database}.things (ts DateTime, {columns}) "
                                    "ENGINE = MergeTree ORDER BY ts", dialect="clickhouse"))
        insert_rows(warehouse, f"{database}.things", ROWS)
        model = apply_text(warehouse, model_text(MODEL, db=database))
        with serving(warehouse, model) as test_client:
            yield test_client


def _count(client: Any, member: str, value: object, op: str = "eq",
           force_raw: bool = False) -> Any:
    return client.post("/v1/query", json={
        "measures": ["n"], "filters": [{"member": member, "op": op, "value": value}],
        "force_raw": force_raw})


@pytest.mark.parametrize(("member", "value", "op", "expected"), [
    ("e", "b's", "eq", 1), ("e", ["a", "b's"], "in", 2), ("ip", "10.0.0.2", "eq", 1),
    ("ip6", "2001:db8::1", "eq", 1), ("fs", "abc", "eq", 1), ("fs", "ab", "eq", 1),
    ("dec", 1.25, "eq", 1), ("dec", "-99.99", "eq", 1), ("dec", 0, "gt", 1),
    ("f32", 0.5, "eq", 1), ("f32", "-2", "lt", 0), ("d32", "1950-06-01", "eq", 1),
    ("d32", "2100-01-01", "gt", 1), ("dt64", "1901-01-01 00:00:00", "eq", 1),
    ("dt64", "2026-01-01T00:00:00.250", "eq", 1), ("dt64", "1901-01-01T00:00", "eq", 1),
    ("dt64", "2026-01-01 00:00:00.25000", "eq", 1), ("i8", -128, "eq", 1), ("i8", "127", "eq", 1),
    ("lc", "x", "eq", 1), ("lc", "y", "ne", 1), ("flag", 1, "eq", 1),
])
def test_filter_types_values_bind_and_match(client: TestClient, member: str, value: object,  # type: ignore[type-arg]
                                            op: str, expected: int) -> None:
    for force_raw in (False, True):
        response = _count(client, member, value, op, force_raw)
        assert response.status_code == 200, response.text
        assert response.json()["data"] == [{"n": expected}], (member, value, force_raw)


@pytest.mark.parametrize(("member", "value"), [
    ("e", "c"), ("e", 1), ("ip", "10.0.0.256"), ("ip", "::1"), ("ip6", "nope"),
    ("fs", "abcd"), ("dec", 1e7), ("dec", "1e30"), ("f32", 1e39), ("d32", "1899-12-31"),
    ("d32", "2300-01-01"), ("dt64", "2026-01-01"), ("dt64", "0001-01-01 00:00:00"),
    ("i8", 128), ("i8", "1.5"), ("lc", 3), ("flag", True), ("flag", None),
    # more digits than the type keeps would be cut off, comparing with another value
    ("dec", 1.255), ("dec", 1e-10), ("dt64", "2026-01-01 00:00:00.2501"),
])
def test_filter_types_values_out_of_type_are_400(client: TestClient, member: str,  # type: ignore[type-arg]
                                                 value: object) -> None:
    assert_error(_count(client, member, value), 400, "filters[0].value")
