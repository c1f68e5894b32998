"""Helpers shared by tests: build a model in a test database and run it for real."""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from litestar.testing import TestClient
from sqlglot import exp, parse_one

from engine.model.compiled import CompiledModel
from semantic import Model, load_model_text
from server.app import create_app
from server.operations.apply import apply_model
from server.runtime.compile import compile_against
from server.runtime.compiled import Runtime
from server.warehouse.statements import Warehouse

#: the base URL in-process clients call: a loopback name, as a server without access control
#: answers only those (a foreign Host is refused, against DNS rebinding)
LOOPBACK = "http://app.localhost"

#: where the broken-model corpus finds the demo table its files call ``analytics.events``
CORPUS_DATABASE = "broken_corpus"


def model_text(text: str, **names: str) -> str:
    """Dedent YAML and substitute ``{db}``-style names (test database names)."""
    return textwrap.dedent(text).format(**names)


def build(warehouse: Warehouse, yaml_text: str) -> tuple[Model, CompiledModel, Runtime]:
    """Load the model, compile it against the warehouse, apply rollups, start a runtime."""
    model = load_model_text(yaml_text, "test.yaml")
    compiled = compile_against(model, warehouse)
    apply_model(compiled, warehouse)
    # What Runtime.start does, without compiling against the warehouse a second time (apply
    # changes no source: the same types would be read again).
    runtime = Runtime(compiled, warehouse)
    runtime.refresh()
    return model, compiled, runtime


#: The head most test models share: one source ``events`` over the test database's ``events``
#: table, timed by ``ts``. A module's model goes on from it (``EVENTS_HEAD + """\``) with the
#: source's other keys at four spaces (dimensions, measures, rollups) and endpoints at none.
EVENTS_HEAD = """
version: 1
rollup_database: {db}
sources:
  events:
    table: {db}.events
    time: ts
"""


#: the smallest served model: events by region, a totals rollup and one endpoint
TOTALS_MODEL = EVENTS_HEAD + """\
    dimensions:
      region: {{}}
    measures:
      events: {{agg: count}}
    rollups:
      totals: {{measures: [events]}}
endpoints:
  /api/totals:
    returns: object
    fields: {{n: events}}
"""


def create_events(warehouse: Warehouse, database: str, columns: str,
                  keys: str = "ORDER BY ts") -> str:
    """``{database}.events`` as a MergeTree table with ``columns`` as CREATE TABLE lists them
    (``"ts DateTime, region String"``) and ``keys`` (its PARTITION BY / ORDER BY clauses);
    returns the table's name."""
    table = f"{database}.events"
    warehouse.command(parse_one(f"CREATE TABLE {table} ({columns}) ENGINE = MergeTree {keys}",
                                dialect="clickhouse"))
    return table


def apply_text(warehouse: Warehouse, yaml_text: str) -> Model:
    """Load the model, compile it against the warehouse and apply its rollups."""
    model = load_model_text(yaml_text, "test.yaml")
    apply_model(compile_against(model, warehouse), warehouse)
    return model


@contextmanager
def serving(warehouse: Warehouse, model: Model,
            **options: Any) -> Iterator[TestClient]:  # type: ignore[type-arg]
    """An in-process client of the app serving ``model`` (``options`` go to ``create_app``)."""
    with TestClient(base_url=LOOPBACK, app=create_app(model, warehouse, **options)) as client:
        yield client


@contextmanager
def served_events(warehouse: Warehouse, database: str, columns: str, model: str,
                  *batches: Sequence[Sequence[object]],
                  **options: Any) -> Iterator[TestClient]:  # type: ignore[type-arg]
    """The set-up most server tests share: ``{database}.events`` created with ``columns``, each
    batch of rows inserted (one part each), ``model`` (text with ``{db}``) applied, and an
    in-process client of the app serving it (``options`` go to ``create_app``)."""
    table = create_events(warehouse, database, columns)
    for rows in batches:
        insert_rows(warehouse, table, rows)
    applied = apply_text(warehouse, model_text(model, db=database))
    with serving(warehouse, applied, **options) as client:
        yield client


@contextmanager
def fresh_database(warehouse: Warehouse, prefix: str = "t") -> Iterator[str]:
    """A uniquely named database on the shared engine, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    warehouse.command(exp.Create(this=exp.to_identifier(name), kind="DATABASE", exists=True))
    try:
        yield name
    finally:
        warehouse.command(exp.Drop(tables=[exp.to_table(name)], kind="DATABASE", exists=True))


def _literal(value: object) -> exp.Expression:
    if value is None:
        return exp.null()
    if isinstance(value, datetime):
        return exp.Literal.string(value.strftime("%Y-%m-%d %H:%M:%S"))
    return exp.convert(value)


def insert_rows(warehouse: Warehouse, table: str, rows: Sequence[Sequence[object]],
                columns: Sequence[str] | None = None) -> None:
    """One INSERT (one part, one block through every view) with the values as literals."""
    if not rows:
        return
    values = exp.Values(expressions=[
        exp.Tuple(expressions=[_literal(value) for value in row]) for row in rows
    ])
    target: exp.Expression = exp.to_table(table)
    if columns is not None:
        target = exp.Schema(this=target, expressions=[exp.to_identifier(c) for c in columns])
    with warehouse.ingestion_lock:
        warehouse.command(exp.insert(values, target))


def assert_error(response: Any, status: int, field: str | None,
                 code: str = "invalid_query") -> dict[str, Any]:
    """The one error shape, with the request id of the response's header."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert set(error) >= {"code", "message", "field", "request_id"}, error
    assert error["code"] == code, error
    assert error["field"] == field, error
    assert error["request_id"] == response.headers["X-Request-Id"]
    assert len(response.content) < 4_000
    return dict(error)


#: A small star schema: ``flights`` (the fact source) joins airlines, two airports and planes,
#: and planes join their makers (``plane.maker.country`` is two hops). One flight's carrier
#: (ZZ) and one's plane (N0) match nothing, so their joined dimensions are null; Delta flies
#: nothing. American flies 3 flights (490 seats), United 1 (160). One endpoint shows a joined
#: dimension.
STAR_MODEL = """
version: 1
rollup_database: {db}
sources:
  airlines:
    table: {db}.airlines
    primary_key: carrier
    dimensions:
      carrier: {{}}
      name: {{description: The airline's full name.}}
  airports:
    table: {db}.airports
    primary_key: faa
    dimensions: {{name: {{}}, tz: {{}}}}
  makers:
    table: {db}.makers
    primary_key: id
    dimensions: {{country: {{}}}}
  planes:
    table: {db}.planes
    primary_key: tailnum
    joins:
      maker: {{source: makers, keys: {{maker_id: id}}}}
    dimensions: {{model: {{}}, seats: {{}}}}
  flights:
    table: {db}.flights
    time: ts
    joins:
      airline: {{source: airlines, keys: {{carrier: carrier}}}}
      origin_airport: {{source: airports, keys: {{origin: faa}}}}
      dest_airport: {{source: airports, keys: {{dest: faa}}, relationship: many_to_one}}
      plane: {{source: planes, keys: {{tailnum: tailnum}}}}
    dimensions:
      carrier: {{}}
      origin: {{}}
    measures:
      flights: {{agg: count}}
      seats_flown: {{agg: sum, column: plane.seats}}
    rollups:
      by_airline_day: {{dimensions: [airline.name, origin], grain: day,
                       measures: [flights, seats_flown]}}
endpoints:
  /api/by-airline:
    source: flights
    fields: {{airline: airline.name, n: flights, seats: seats_flown}}
    order: [airline]
"""

#: the flights source's dimensions as the model lists them: its own (carrier, origin and the join
#: keys dest and tailnum), then those reached through joins (planes' key maker_id included)
STAR_DIMENSIONS = [
    "carrier", "origin", "dest", "tailnum", "airline.carrier", "airline.name",
    "origin_airport.name", "origin_airport.tz", "dest_airport.name", "dest_airport.tz",
    "plane.model", "plane.seats", "plane.maker_id", "plane.maker.country"]

STAR_TABLES = {
    "airlines": ("carrier String, name String",
                 [("AA", "American"), ("UA", "United"), ("DL", "Delta")]),
    "airports": ("faa String, name String, tz String",
                 [("JFK", "Kennedy", "America/New_York"), ("LGA", "LaGuardia", "America/New_York"),
                  ("LAX", "Los Angeles", "America/Los_Angeles")]),
    "makers": ("id UInt32, country String", [(1, "France"), (2, "USA")]),
    "planes": ("tailnum String, model String, seats UInt16, maker_id UInt32",
               [("N1", "A320", 150, 1), ("N2", "A321", 190, 1), ("N3", "737", 160, 2)]),
    "flights": ("ts DateTime, carrier String, origin String, dest String, tailnum String",
                [("2026-01-01 08:00:00", "AA", "JFK", "LAX", "N1"),
                 ("2026-01-01 09:00:00", "AA", "JFK", "LAX", "N2"),
                 ("2026-01-01 10:00:00", "AA", "LGA", "LAX", "N1"),
                 ("2026-01-02 08:00:00", "UA", "JFK", "LGA", "N3"),
                 ("2026-01-02 11:00:00", "ZZ", "LAX", "JFK", "N0")]),
}


def create_star(warehouse: Warehouse, database: str) -> Model:
    """The tables of ``STAR_MODEL`` in ``database``, filled, and the model applied."""
    for name, (columns, rows) in STAR_TABLES.items():
        warehouse.command(parse_one(f"CREATE TABLE {database}.{name} ({columns}) "
                                    "ENGINE = MergeTree ORDER BY tuple()", dialect="clickhouse"))
        insert_rows(warehouse, f"{database}.{name}", rows)
    return apply_text(warehouse, model_text(STAR_MODEL, db=database))


#: a secured source's rows: 10 days x 3 regions x 2 tenants, a different count and amount in
#: each cell, some notes null (the Cube API's and the SQL interface's tests)
TENANT_ROWS = [(f"2026-01-{1 + day:02d} {hour:02d}:30:00", tenant, region,
                None if hour % 3 == 0 else f"n{hour}", day * 10 + hour + tenant)
               for day in range(10) for tenant in (1, 2)
               for r, region in enumerate(("asia", "eu", "us"))
               for hour in range(1 + (day + r + tenant) % 4)]


@contextmanager
def tenant_events(warehouse: Warehouse, prefix: str, model: str) -> Iterator[Model]:
    """``TENANT_ROWS`` in a fresh ``events`` table (ts, tenant_id, region, note, amount) and
    ``model`` (with ``{db}`` for its database) applied over it."""
    with fresh_database(warehouse, prefix) as database:
        warehouse.command(parse_one(
            f"CREATE TABLE {database}.events (ts DateTime, tenant_id UInt32, region String, "
            "note Nullable(String), amount Int64) ENGINE = MergeTree ORDER BY ts",
            dialect="clickhouse"))
        insert_rows(warehouse, f"{database}.events", TENANT_ROWS)
        loaded = load_model_text(model_text(model, db=database), "test.yaml")
        apply_model(compile_against(loaded, warehouse), warehouse)
        yield loaded

