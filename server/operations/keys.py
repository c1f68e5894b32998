"""Primary keys checked against the data: a dimension table whose key repeats would match a
fact row more than once, so ``apply``, ``verify`` and a replacing load refuse it, naming keys."""

from __future__ import annotations

from engine.model.joins import duplicate_keys
from semantic.errors import Issue
from semantic.model import Model, Source
from server.warehouse.statements import Warehouse


def joined_sources(model: Model) -> list[Source]:
    """Sources that some join reaches (their keys must be unique)."""
    targets = {j.source.name for s in model.sources for j in s.joins}
    return [s for s in model.sources if s.name in targets and s.primary_key]


def duplicate_issue(warehouse: Warehouse, source: Source, table: str | None = None,
                    what: str | None = None) -> Issue | None:
    """An issue naming the repeated keys of ``source`` (read from ``table``, by default its
    own, and called ``what`` in the message), or None when every key is unique."""
    rows = warehouse.query(duplicate_keys(table or source.table, source.primary_key)).rows
    if not rows:
        return None
    width = len(source.primary_key)
    examples = "; ".join(
        ", ".join(f"{c}={v!r}" for c, v in zip(source.primary_key, row[:width], strict=True))
        + f" ({row[width]} rows)" for row in rows)
    count = rows[0][width + 1]
    return Issue(source.primary_key_location or source.location,
                 f"source '{source.name}': {count} primary key value(s) of {what or source.table} "
                 f"repeat, e.g. {examples}; a join would match such rows more than once and "
                 f"multiply measures: make ({', '.join(source.primary_key)}) unique",
                 "duplicate-key")


def key_issues(model: Model, warehouse: Warehouse) -> list[Issue]:
    issues = []
    for source in joined_sources(model):
        found = duplicate_issue(warehouse, source)
        if found is not None:
            issues.append(found)
    return issues
