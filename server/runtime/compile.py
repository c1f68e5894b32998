"""The model compiled against the warehouse: every source's columns and expression types read,
and every model expression evaluated on a sample of its source, locating what ClickHouse
rejects (the probe statements are built by ``engine.model.probes``; this module runs them).
"""

from __future__ import annotations

import re

from engine.dialect.system import TABLE_KEYS
from engine.model.compiled import CompiledModel, SourceEngine, SourceTypes
from engine.model.compiler import compile_model, type_probe
from engine.model.expressions import check_expressions
from engine.model.joins import join_probe
from engine.model.probes import combined_probe, expression_probes
from semantic.errors import Issue, ModelError
from semantic.joins import join_paths
from semantic.model import Model, Source
from server.warehouse.availability import WarehouseError
from server.warehouse.catalog import describe, table_columns
from server.warehouse.statements import Warehouse

#: noise in ClickHouse's messages that says nothing about the model
_PREFIX = re.compile(r"^.*?DB::Exception: ")
_TAIL = re.compile(r"(: while executing .*|[.:] In scope .*|\. Stack trace.*)$")
_VERSION = re.compile(r"\s*\(version [^)]*\)\.?\s*$")


def rejection(exc: WarehouseError) -> str:
    """ClickHouse's reason, without the code, the executed-plan text and the version.

    >>> rejection(WarehouseError("ClickHouse rejected a query: Code: 46. DB::Exception: "
    ...                          "Unknown function lowerr: In scope SELECT ... (UNKNOWN_FUNCTION)"
    ...                          " (version 25.8.1.1)"))
    'Unknown function lowerr (UNKNOWN_FUNCTION)'
    """
    text = _VERSION.sub("", exc.message)
    code = re.search(r"\(([A-Z_]+)\)\s*$", text)
    text = _PREFIX.sub("", text)
    text = _TAIL.sub("", _VERSION.sub("", re.sub(r"\s*\([A-Z_]+\)\s*$", "", text)))
    return text.rstrip(". ") + (f" ({code.group(1)})" if code else "")


def _locate(model: Model, source: Source, warehouse: Warehouse,
            combined: WarehouseError) -> list[Issue]:
    issues: list[Issue] = []
    failed: set[str] = set()
    for probe in expression_probes(source, join_paths(model, source)):
        if probe.member in failed:  # its aggregate fails because its argument does
            continue
        try:
            warehouse.query(probe.statement)
        except WarehouseError as exc:
            failed.add(probe.member)
            issues.append(Issue(probe.location, f"{probe.what}: ClickHouse rejects "
                                f"{probe.sql!r} on rows of {source.table}: {rejection(exc)}",
                                "rejected-sql"))
    if not issues:
        issues.append(Issue(source.location, f"ClickHouse rejected the expressions of source "
                            f"'{source.name}': {rejection(combined)}", "rejected-sql"))
    return issues


def probe_expressions(model: Model, warehouse: Warehouse) -> list[Issue]:
    """Issues for every expression ClickHouse rejects on a sample of its source's rows."""
    issues: list[Issue] = []
    for source in model.sources:
        try:
            warehouse.query(combined_probe(source, join_paths(model, source)))
        except WarehouseError as exc:
            issues += _locate(model, source, warehouse, exc)
    return issues


def probe_joins(model: Model, warehouse: Warehouse) -> list[Issue]:
    """Issues for joins whose keys ClickHouse cannot compare (no common type)."""
    issues: list[Issue] = []
    failed: set[int] = set()  # joins already reported (a join is reached by several paths)
    for source in model.sources:
        paths = join_paths(model, source)
        for path in sorted(paths, key=len):
            joins = paths[path].joins
            if any(id(j) in failed for j in joins):
                continue
            try:
                warehouse.query(join_probe(source.table, paths, path))
            except WarehouseError as exc:
                join = joins[-1]
                failed.add(id(join))
                issues.append(Issue(join.keys_location or join.location,
                                    f"join '{join.name}': ClickHouse cannot match its keys: "
                                    f"{rejection(exc)}", "key-type-mismatch"))
    return issues


def read_types(model: Model, warehouse: Warehouse) -> dict[str, SourceTypes]:
    """Ask the warehouse for every source's columns and model-expression types.

    Raises ``ModelError`` with located issues for missing tables, unknown columns and
    expressions ClickHouse rejects (each evaluated on a sample of its source's rows).
    """
    columns = {}
    issues: list[Issue] = []
    for source in model.sources:
        found = table_columns(warehouse, source.table)
        if found is None:
            issues.append(Issue(source.location, f"table {source.table} does not exist in the "
                                "warehouse; create it (or `semantic demo` for the reference "
                                "data) before building rollups", "missing-table"))
        columns[source.name] = found
    issues += check_expressions(model, columns)
    if issues:
        raise ModelError(issues)
    issues = probe_expressions(model, warehouse) + probe_joins(model, warehouse)
    if issues:
        raise ModelError(issues)
    types = {}
    keys = warehouse.query(TABLE_KEYS, {"dbs": sorted({s.database for s in model.sources})})
    engines = {f"{db}.{name}": SourceEngine(engine, partition, sorting, primary)
               for db, name, sorting, partition, engine, primary in keys.rows}
    for source in model.sources:
        probe = type_probe(source, join_paths(model, source))
        try:
            found_types = describe(warehouse, probe.statement)
        except WarehouseError as exc:
            raise ModelError([Issue(source.location, f"ClickHouse rejected an expression of "
                                    f"source '{source.name}': {exc.message}",
                                    "invalid-sql")]) from exc
        source_columns = columns[source.name]
        assert source_columns is not None
        types[source.name] = SourceTypes(source_columns, dict(zip(probe.keys, found_types,
                                                                  strict=True)),
                                         engines.get(source.local_table or source.table,
                                                     SourceEngine()))
    return types


def compile_against(model: Model, warehouse: Warehouse) -> CompiledModel:
    return compile_model(model, read_types(model, warehouse))
