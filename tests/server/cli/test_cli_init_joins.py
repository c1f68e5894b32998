"""``semantic init`` suggests joins to the other tables of the described table's database, from
an empty data directory: the tables load from Parquet files, ``init`` writes the joins the
names suggest and the data confirms (never to a repeated key, never to a table holding few of
the values), and the model it writes validates, applies and answers by joined dimensions."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow
from pyarrow import parquet

from tests.processes import semantic

TABLES: dict[str, dict[str, list[Any]]] = {
    "airlines": {"carrier": ["AA", "UA", "DL"], "name": ["American", "United", "Delta"]},
    # unique, but holds one of the three carriers flown: not the airlines' table
    "old_airlines": {"carrier": ["AA", "PA", "TW"], "name": ["Old American", "Pan Am", "TWA"]},
    # holds every carrier, but each twice: a join would repeat flights
    "crews": {"carrier": ["AA", "AA", "UA", "UA", "ZZ"], "crew": ["a", "b", "c", "d", "e"]},
    "airports": {"faa": ["JFK", "LGA", "LAX"], "name": ["Kennedy", "LaGuardia", "Los Angeles"],
                 "alt": [13, 22, 125]},
    "planes": {"tailnum": ["N1", "N2", "N3"], "seats": [150, 190, 160]},
}
FLIGHTS: dict[str, list[Any]] = {
    "ts": [datetime(2026, 1, 1, h) for h in range(6)],
    "carrier": ["AA", "AA", "UA", "UA", "ZZ", "AA"],
    "origin_faa": ["JFK", "JFK", "LGA", "JFK", "LAX", "LGA"],
    "dest_faa": ["LAX", "LAX", "LAX", "LGA", "JFK", "JFK"],
    "tailnum": ["N1", "N2", "N1", "N3", "N0", "N2"],
    "distance": [2475, 2475, 2454, 11, 2475, 11],
}
#: each table as the source the loads go into
TABLES_MODEL = "version: 1\nsources:\n" + "".join(
    f"  {name}: {{table: shop.{name}, dimensions: {{{next(iter(columns))}: {{}}}}}}\n"
    for name, columns in TABLES.items())


def _write(path: Path, columns: dict[str, list[Any]]) -> Path:
    parquet.write_table(pyarrow.table(columns), path)
    return path


def _query(data_dir: Path, model: Path, *args: str) -> list[dict[str, Any]]:
    result = semantic(data_dir, "--model", str(model), "query", "--source", "flights", "--json",
                      *args)
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout)["data"])


def test_cli_init_suggests_joins_the_data_confirms(tmp_path: Path) -> None:
    data_dir = tmp_path / "chdb"
    tables_model = tmp_path / "tables.yaml"
    tables_model.write_text(TABLES_MODEL)
    for name, columns in TABLES.items():
        loaded = semantic(data_dir, "--model", str(tables_model), "load", name,
                          str(_write(tmp_path / f"{name}.parquet", columns)), "--create")
        assert loaded.returncode == 0, loaded.stderr

    # a file to be loaded as shop.flights, looked up in the tables already there
    model = tmp_path / "metrics.yaml"
    flights = _write(tmp_path / "flights.parquet", FLIGHTS)
    init = semantic(data_dir, "--model", str(model), "init", "flights", "--file", str(flights),
                    "--table", "shop.flights")
    assert init.returncode == 0, init.stderr
    assert init.stdout.splitlines()[1] == (
        "joins suggested (see the file): carrier -> shop.airlines.carrier, origin_faa -> "
        "shop.airports.faa, dest_faa -> shop.airports.faa, tailnum -> shop.planes.tailnum")
    text = model.read_text()
    for line in (
            '      airline: {source: airlines, keys: {"carrier": "carrier"}}   # 2 of 3 carrier '
            "values are keys of shop.airlines",
            '      origin: {source: airports, keys: {"origin_faa": "faa"}}   # 3 of 3 '
            "origin_faa values are keys of shop.airports",
            "  airports:                      # joined from flights as origin, dest",
            '    primary_key: "faa"   # one row per key in its 3 rows',
            '      alt: {column: "alt"}'):
        assert line in text.splitlines(), line
    assert "old_airlines" not in text and "crews" not in text

    loaded = semantic(data_dir, "--model", str(model), "load", "flights", str(flights),
                      "--create")
    assert loaded.returncode == 0, loaded.stderr
    validated = semantic(data_dir, "--model", str(model), "validate")
    assert validated.returncode == 0, validated.stderr
    assert "ok (4 source(s), 1 rollup(s), 1 endpoint(s);" in validated.stdout
    applied = semantic(data_dir, "--model", str(model), "apply")
    assert applied.returncode == 0, applied.stderr

    names = dict(zip(TABLES["airlines"]["carrier"], TABLES["airlines"]["name"], strict=True))
    by_airline = Counter(names.get(c) for c in FLIGHTS["carrier"])
    rows = _query(data_dir, model, "-m", "row_count", "-d", "airline.name")
    assert {row["airline.name"]: row["row_count"] for row in rows} == by_airline
    airports = dict(zip(TABLES["airports"]["faa"], TABLES["airports"]["alt"], strict=True))
    rows = _query(data_dir, model, "-m", "total_distance", "-d", "dest.alt", "-f",
                  "origin.name=Kennedy")
    expected: Counter[int] = Counter()
    for origin, dest, distance in zip(FLIGHTS["origin_faa"], FLIGHTS["dest_faa"],
                                      FLIGHTS["distance"], strict=True):
        if origin == "JFK":
            expected[airports[dest]] += distance
    assert {row["dest.alt"]: row["total_distance"] for row in rows} == expected

    # the same joins from the table itself
    again = tmp_path / "again.yaml"
    init = semantic(data_dir, "--model", str(again), "init", "flights", "--from-table",
                    "shop.flights")
    assert init.returncode == 0, init.stderr
    joins = [line for line in text.splitlines() if "values are keys of" in line]
    assert [line for line in again.read_text().splitlines() if "values are keys of" in line
            ] == joins
