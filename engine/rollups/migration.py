"""What ``semantic apply`` must do to bring the warehouse in line with the model.

A pure diff between the compiled model and what the warehouse reports (the rollup catalog and
the tables that exist), as ordered statements. Statements flagged ``locked`` run while the
server's ingestion is paused: creating the view and hard-linking the source into a snapshot
happen at one instant, so the backfill (from the snapshot) and the view (from then on) neither
miss nor double-count a row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlglot import exp

from engine.model.compiled import CompiledModel, CompiledRollup
from engine.rollups import ddl

READY = "ready"
BUILDING = "building"
DROPPED = "dropped"
#: stores attributes of a dimension table that changed since it was built: not served
STALE = "stale"


@dataclass(frozen=True, slots=True)
class Statement:
    expression: exp.Expression
    locked: bool = False
    #: ``db.table`` of the snapshot a per-part backfill reads (run once per part)
    backfill_from: str | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """One rollup's action: ``keep``, ``create``, ``rebuild`` (a half-built leftover),
    ``drop`` (in the catalog, no longer in the model) or ``unused`` (the same, kept)."""

    action: str
    table: str
    rollup: CompiledRollup | None
    statements: tuple[Statement, ...]
    detail: str


def _build_statements(model: CompiledModel, rollup: CompiledRollup,
                      leftovers: bool) -> list[Statement]:
    source = model.sources[rollup.source]
    snapshot = ddl.snapshot_name(rollup)
    table = exp.table_(rollup.table, db=rollup.database)
    view = exp.table_(rollup.view, db=rollup.database)
    cluster = rollup.cluster
    local = exp.table_(rollup.local_table, db=rollup.database)
    statements = []
    if leftovers:
        statements += [Statement(ddl.drop_table(view, view=True, cluster=cluster)),
                       Statement(ddl.drop_table(table, cluster=cluster)),
                       Statement(ddl.drop_table(snapshot, cluster=cluster))]
        if cluster:
            statements.append(Statement(ddl.drop_table(local, cluster=cluster)))
    statements += [
        Statement(ddl.record_state(rollup, BUILDING)),
        # what the tables it stores attributes of look like before its backfill reads them
        *([Statement(ddl.record_inputs(rollup))] if rollup.stores_from else []),
        Statement(ddl.create_rollup_table(source, rollup)),
        *([Statement(ddl.create_distributed_rollup(rollup))] if cluster else []),
        Statement(ddl.create_snapshot_table(source, rollup)),
        *([] if cluster else [Statement(ddl.stop_merges(snapshot))]),
        Statement(ddl.create_rollup_view(source, rollup), locked=True),
        Statement(ddl.attach_snapshot(source, rollup), locked=True),
        Statement(ddl.backfill_insert(source, rollup, snapshot, per_part=not cluster),
                  backfill_from=None if cluster else f"{rollup.database}.{snapshot.name}"),
        Statement(ddl.drop_table(snapshot, cluster=cluster)),
        Statement(ddl.optimize_rollup(rollup)),
        Statement(ddl.record_state(rollup, READY)),
    ]
    return statements


def _drop_statements(name: str, owner: tuple[str, str],
                     cluster: str | None) -> tuple[Statement, ...]:
    """Mark the table dropped first (never served again, even if a drop below fails), then
    drop its view (no more feeding), the table and any snapshot left by a crash."""
    database, table = name.split(".", 1)
    statements = [
        Statement(ddl.record_table_state(database, table, *owner, DROPPED)),
        Statement(ddl.drop_table(exp.table_(f"{table}_mv", db=database), view=True,
                                 cluster=cluster)),
        Statement(ddl.drop_table(exp.table_(table, db=database), cluster=cluster)),
        Statement(ddl.drop_table(exp.table_(f"{table}_snapshot", db=database),
                                 cluster=cluster)),
    ]
    if cluster:
        statements.append(Statement(ddl.drop_table(exp.table_(f"{table}_local", db=database),
                                                   cluster=cluster)))
    return tuple(statements)


def plan_migration(model: CompiledModel, catalog: Mapping[str, str],
                   existing: frozenset[str],
                   owners: Mapping[str, tuple[str, str]] | None = None,
                   keep_unused: bool = True) -> tuple[Step, ...]:
    """Steps for every rollup. ``catalog`` maps ``db.table`` -> state; ``existing`` holds the
    ``db.table`` names that exist in the warehouse; ``owners`` maps a catalog table to its
    (source, rollup) names. Tables no rollup of the model uses are dropped unless
    ``keep_unused``."""
    steps = []
    wanted = set()
    for rollup in model.rollups:
        name = rollup.qualified_table
        wanted.add(name)
        state = catalog.get(name)
        if state == READY and name in existing:
            steps.append(Step("keep", name, rollup, (), "complete; served"))
        elif state is None and name not in existing:
            steps.append(Step("create", name, rollup, tuple(_build_statements(model, rollup,
                                                                              False)),
                              "new rollup: create, feed from now on, backfill existing rows"))
        elif state == STALE:
            steps.append(Step("rebuild", name, rollup,
                              tuple(_build_statements(model, rollup, True)),
                              "stores attributes of a dimension table that changed since it "
                              "was built (not served until rebuilt): build it again"))
        elif state == DROPPED:
            steps.append(Step("create", name, rollup,
                              tuple(_build_statements(model, rollup, True)),
                              "dropped by an earlier apply and wanted again: build it anew"))
        else:
            steps.append(Step("rebuild", name, rollup,
                              tuple(_build_statements(model, rollup, True)),
                              "left half-built by an interrupted apply: drop and build again"))
    for name, state in sorted(catalog.items()):
        if name in wanted:
            continue
        leftovers = any(n in existing for n in (name, f"{name}_mv", f"{name}_snapshot"))
        if state == DROPPED and not leftovers:
            continue
        if keep_unused or owners is None or name not in owners:
            if state != DROPPED:
                steps.append(Step("unused", name, None, (), f"no rollup in the model uses it "
                                  f"(state: {state}); kept (feeding it costs every insert)"))
            continue
        steps.append(Step("drop", name, None, _drop_statements(name, owners[name],
                                                               model.model.cluster),
                          f"no rollup in the model uses it (state: {state}): drop its view "
                          "and table"))
    return tuple(steps)


def setup_statements(database: str, cluster: str | None = None) -> tuple[Statement, ...]:
    """The rollup database and its catalog, created before anything else."""
    return (Statement(ddl.create_database(database, cluster)),
            Statement(ddl.create_catalog(database, cluster)),
            Statement(ddl.create_inputs_catalog(database, cluster)))
