"""Operations the CLI runs against the warehouse: build rollups, load demo data."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from engine import introspection
from engine.compiler import CompiledModel
from engine.ddl import PART_PARAMETER
from engine.demo import create_demo_table, demo_insert
from engine.migration import Statement, Step, plan_migration, setup_statements
from engine.render import render
from server.runtime import read_catalog, read_owners
from server.warehouse import Warehouse

logger = logging.getLogger(__name__)

Report = Callable[[str], None]


def migration_steps(compiled: CompiledModel, warehouse: Warehouse,
                    keep_unused: bool = False) -> tuple[Step, ...]:
    database = compiled.model.rollup_database
    catalog = read_catalog(warehouse, database)
    existing = warehouse.tables([database])
    return plan_migration(compiled, catalog, existing, read_owners(warehouse, database),
                          keep_unused)


def render_steps(compiled: CompiledModel, steps: tuple[Step, ...]) -> str:
    """A readable preview of what ``apply`` would do, with every statement."""
    lines = []
    counts: dict[str, int] = {}
    for step in steps:
        counts[step.action] = counts.get(step.action, 0) + 1
        lines.append(f"-- {step.action}: {step.table} ({step.detail})")
        for statement in step.statements:
            marker = "  -- (ingestion paused)" if statement.locked else ""
            lines.append(f"{render(statement.expression)};{marker}")
        lines.append("")
    summary = ", ".join(f"{n} {action}" for action, n in sorted(counts.items())) or "no rollups"
    setup = [f"{render(s.expression)};" for s in setup_statements(compiled.model.rollup_database)]
    return "\n".join([f"-- plan: {summary}", *setup, "", *lines]).rstrip() + "\n"


def _backfill(warehouse: Warehouse, statement: Statement, report: Report) -> None:
    """Run a backfill part by part of its snapshot, partition by partition, reporting rows,
    rows/s and the time left."""
    assert statement.backfill_from is not None
    database, name = statement.backfill_from.split(".", 1)
    parts = warehouse.query(introspection.PARTS, {"db": database, "name": name}).rows
    total = sum(int(rows) for _, _, rows in parts)
    done = 0
    started = time.perf_counter()
    for partition, part, rows in parts:
        warehouse.command(statement.expression, {PART_PARAMETER: part})
        done += int(rows)
        elapsed = max(time.perf_counter() - started, 1e-9)
        rate = done / elapsed
        left = (total - done) / rate if rate else 0.0
        report(f"{'':8} backfill {done:,}/{total:,} rows ({100 * done / max(total, 1):.0f} %), "
               f"{rate:,.0f} rows/s, {left:.1f} s left (partition {partition}, part {part})")


def execute(warehouse: Warehouse, statements: tuple[Statement, ...],
             report: Report = lambda line: None) -> None:
    index = 0
    while index < len(statements):
        statement = statements[index]
        if statement.backfill_from is not None:
            _backfill(warehouse, statement, report)
            index += 1
            continue
        if not statement.locked:
            warehouse.command(statement.expression)
            index += 1
            continue
        # Consecutive locked statements run as one pause of ingestion: the view starts
        # feeding and the snapshot is taken at the same instant.
        with warehouse.ingestion_lock:
            while index < len(statements) and statements[index].locked:
                warehouse.command(statements[index].expression)
                index += 1


def apply_model(compiled: CompiledModel, warehouse: Warehouse,
                report: Report = lambda line: None, keep_unused: bool = False) -> tuple[Step, ...]:
    """Create and backfill every missing rollup, keep complete ones, drop the ones no rollup of
    the model uses (unless ``keep_unused``); report as it goes. New rollups are built before
    anything is dropped."""
    for statement in setup_statements(compiled.model.rollup_database):
        warehouse.command(statement.expression)
    steps = migration_steps(compiled, warehouse, keep_unused)
    for step in steps:
        if not step.statements:
            report(f"{step.action:8} {step.table}: {step.detail}")
            continue
        started = time.perf_counter()
        report(f"{step.action:8} {step.table}: {step.detail} ...")
        execute(warehouse, step.statements, report)
        report(f"{'':8} done in {time.perf_counter() - started:.2f} s")
    return steps


def load_demo(warehouse: Warehouse, rows: int, seed: int, table: str,
              report: Report = lambda line: None, chunk: int = 10_000_000) -> int:
    """Create the reference table and append ``rows`` generated rows; return the new total."""
    for statement in create_demo_table(table):
        warehouse.command(statement)
    start = row_count(warehouse, table)
    done = 0
    began = time.perf_counter()
    while done < rows:
        count = min(chunk, rows - done)
        statement, parameters = demo_insert(table, start + done, count, seed)
        with warehouse.ingestion_lock:
            warehouse.command(statement, parameters)
        done += count
        rate = done / max(time.perf_counter() - began, 1e-9)
        report(f"inserted {done:,}/{rows:,} rows ({rate:,.0f} rows/s)")
    return start + done


def row_count(warehouse: Warehouse, table: str) -> int:
    """Rows in ``table``, 0 when it does not exist."""
    if warehouse.columns(table) is None:
        return 0
    return int(warehouse.query(introspection.row_count(table)).rows[0][0])
