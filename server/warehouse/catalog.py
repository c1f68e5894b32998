"""What the warehouse holds: tables, their columns and sizes, the types of a statement's
result, and the rollup catalog, read from ClickHouse's ``system`` tables and ours."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from sqlglot import exp

from engine.dialect import system
from engine.dialect.types import fixed_width
from engine.model.compiled import CompiledRollup
from engine.rollups.ddl import CATALOG_TABLE, catalog_query, inputs_query
from engine.rollups.migration import READY
from server.warehouse.statements import Warehouse


def table_columns(warehouse: Warehouse, table: str) -> dict[str, str] | None:
    """Column name -> type of ``db.table``, or None when it does not exist."""
    database, name = table.split(".", 1)
    result = warehouse.query(system.COLUMNS, {"db": database, "name": name})
    return {row[0]: row[1] for row in result.rows} or None


def describe(warehouse: Warehouse, statement: exp.Expression) -> list[str]:
    """Types of the result columns of a ``DESCRIBE (SELECT ...)``, in order."""
    return [row[1] for row in warehouse.query(statement).rows]


def tables(warehouse: Warehouse, databases: Sequence[str]) -> frozenset[str]:
    """``db.table`` names that exist in the given databases."""
    result = warehouse.query(system.TABLES, {"dbs": list(databases)})
    return frozenset(f"{db}.{name}" for db, name in result.rows)


def column_sizes(warehouse: Warehouse, databases: Sequence[str]
                 ) -> dict[str, tuple[int, dict[str, int], int]]:
    """``db.table`` -> (rows, column -> uncompressed bytes, active parts) over active parts.

    A table of compact parts (small ones, a rollup of one row) reports only its whole size:
    its columns are estimated, a fixed-width one at its width per row, the others sharing
    what is left evenly."""
    result = warehouse.query(system.COLUMN_SIZES, {"dbs": list(databases)})
    sizes: dict[str, tuple[int, dict[str, int], int]] = {}
    wholes: dict[str, tuple[int, dict[str, str]]] = {}
    for db, table, column, rows, size, parts, total, type_name in result.rows:
        name = f"{db}.{table}"
        _, columns, _ = sizes.setdefault(name, (int(rows), {}, int(parts)))
        columns[column] = int(size)
        wholes.setdefault(name, (int(total), {}))[1][column] = type_name
    for name, (total, types) in wholes.items():
        rows, columns, parts = sizes[name]
        if total and not any(columns.values()):
            sizes[name] = (rows, _estimated(rows, types, total), parts)
    return sizes


def _estimated(rows: int, types: Mapping[str, str], total: int) -> dict[str, int]:
    """Column sizes of a table of ``rows`` rows and ``total`` bytes, by column type."""
    fixed = {column: rows * width for column, type_name in types.items()
             if (width := fixed_width(type_name)) is not None}
    varying = [column for column in types if column not in fixed]
    share = max(0, total - sum(fixed.values())) // len(varying) if varying else 0
    return {column: fixed.get(column, share) for column in types}


def read_catalog_rows(warehouse: Warehouse,
                      database: str) -> list[tuple[str, str, str, str]]:
    """(``db.table``, source, rollup, latest state) of every rollup table in the catalog."""
    if f"{database}.{CATALOG_TABLE}" not in tables(warehouse, [database]):
        return []
    rows = warehouse.query(catalog_query(database)).rows
    return [(f"{database}.{table}", source, rollup, state)
            for table, source, rollup, state in rows]


def read_catalog(warehouse: Warehouse, database: str) -> dict[str, str]:
    """``db.table`` -> latest state of every rollup table in the catalog (empty if none)."""
    return {name: state for name, _, _, state in read_catalog_rows(warehouse, database)}


def stale_rollups(warehouse: Warehouse, rollups: Iterable[CompiledRollup],
                  catalog: Mapping[str, str]) -> dict[str, str]:
    """``db.table`` -> why, for complete rollups storing attributes read through joins whose
    tables changed since the rollup's build began (their fingerprints differ: an insert, a
    mutation, a table swapped in by a replacing load)."""
    storing = [r for r in rollups if r.stores_from and catalog.get(r.qualified_table) == READY]
    if not storing:
        return {}
    recorded = {(table, name): fingerprint for table, name, fingerprint in
                warehouse.query(inputs_query(storing[0].database)).rows}
    current = dict(warehouse.query(system.table_fingerprints(
        sorted({t for r in storing for t in r.stores_from}))).rows)
    stale = {}
    for rollup in storing:
        changed = [t for t in rollup.stores_from
                   if recorded.get((rollup.table, t)) != current.get(t)]
        if changed:
            stale[rollup.qualified_table] = (
                f"stores attributes of {', '.join(changed)}, changed since it was built; "
                "`semantic apply` rebuilds it")
    return stale
