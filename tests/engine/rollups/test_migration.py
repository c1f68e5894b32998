"""What ``apply`` plans for each rollup table: keep, create, rebuild, drop or keep unused."""

from __future__ import annotations

from engine.dialect.render import render
from engine.rollups.migration import BUILDING, DROPPED, READY, plan_migration
from tests.reference import compiled_reference

COMPILED = compiled_reference()
TABLES = [r.qualified_table for r in COMPILED.rollups]
OLD = "semantic.events_old_0123456789"
OWNERS = {OLD: ("events", "old")}


def _actions(catalog: dict[str, str], existing: set[str],
             keep_unused: bool = False) -> dict[str, str]:
    steps = plan_migration(COMPILED, catalog, frozenset(existing), OWNERS, keep_unused)
    return {step.table: step.action for step in steps}


def test_migration_builds_missing_and_keeps_complete() -> None:
    ready = {name: READY for name in TABLES}
    assert set(_actions(ready, set(TABLES)).values()) == {"keep"}
    half = {**ready, TABLES[0]: BUILDING}
    assert _actions(half, set(TABLES))[TABLES[0]] == "rebuild"
    assert _actions({}, set())[TABLES[1]] == "create"


def test_migration_drops_unused_tables_after_building() -> None:
    catalog = {OLD: READY}
    existing = {OLD, f"{OLD}_mv"}
    steps = plan_migration(COMPILED, catalog, frozenset(existing), OWNERS, keep_unused=False)
    assert [s.action for s in steps][-1] == "drop"  # new rollups are built first
    drop = steps[-1]
    assert [render(s.expression) for s in drop.statements] == [
        "INSERT INTO semantic._rollups (table_name, source_name, rollup_name, state, "
        "updated_at) VALUES ('events_old_0123456789', 'events', 'old', 'dropped', now64(6))",
        "DROP VIEW IF EXISTS semantic.events_old_0123456789_mv",
        "DROP TABLE IF EXISTS semantic.events_old_0123456789",
        "DROP TABLE IF EXISTS semantic.events_old_0123456789_snapshot",
    ]


def test_migration_keeps_unused_with_the_flag() -> None:
    assert _actions({OLD: READY}, {OLD}, keep_unused=True)[OLD] == "unused"


def test_migration_finishes_an_interrupted_drop() -> None:
    # Marked dropped, but the process died before the tables went: drop them again.
    assert _actions({OLD: DROPPED}, {OLD})[OLD] == "drop"
    assert OLD not in _actions({OLD: DROPPED}, set())
    assert OLD not in _actions({OLD: DROPPED}, set(), keep_unused=True)


def test_migration_builds_a_dropped_rollup_wanted_again_as_new() -> None:
    ready = {name: READY for name in TABLES}
    steps = plan_migration(COMPILED, {**ready, TABLES[0]: DROPPED}, frozenset(TABLES[1:]),
                           OWNERS, False)
    step = next(s for s in steps if s.table == TABLES[0])
    assert (step.action, step.detail) == (
        "create", "dropped by an earlier apply and wanted again: build it anew")
