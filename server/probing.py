"""Evaluate every model expression on a sample of its source, locating what ClickHouse rejects.

The probe statements are built by ``engine.probes``; this module only runs them.
"""

from __future__ import annotations

import re

from engine.probes import combined_probe, expression_probes
from semantic.errors import Issue
from semantic.model import Model, Source
from server.warehouse import Warehouse, WarehouseError

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


def _locate(source: Source, warehouse: Warehouse, combined: WarehouseError) -> list[Issue]:
    issues: list[Issue] = []
    failed: set[str] = set()
    for probe in expression_probes(source):
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
            warehouse.query(combined_probe(source))
        except WarehouseError as exc:
            issues += _locate(source, warehouse, exc)
    return issues
