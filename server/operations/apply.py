"""Operations the CLI runs against the warehouse: build rollups, load demo data."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime

from sqlglot import exp

from engine.dialect import system as introspection
from engine.dialect.functions import call
from engine.dialect.render import Rendered, render
from engine.dialect.types import data_type
from engine.ingestion.demo import (
    create_demo_table,
    create_users_table,
    demo_insert,
    users_insert,
    users_table,
)
from engine.model.compiled import CompiledModel, CompiledRollup, CompiledSource
from engine.query.request import Query
from engine.rollups import ddl
from engine.rollups.ddl import PART_PARAMETER
from engine.rollups.migration import (
    READY,
    STALE,
    Statement,
    Step,
    plan_migration,
    setup_statements,
)
from engine.serving.plan import Plan
from engine.serving.router import plan_query
from semantic.errors import ModelError, SemanticError
from server.observability.metrics import BACKFILL_PROGRESS, BACKFILL_ROWS
from server.operations.keys import key_issues
from server.runtime.compiled import Runtime
from server.warehouse.catalog import read_catalog_rows, stale_rollups, table_columns, tables
from server.warehouse.statements import Warehouse

logger = logging.getLogger(__name__)

Report = Callable[[str], None]


def migration_steps(compiled: CompiledModel, warehouse: Warehouse,
                    keep_unused: bool = False) -> tuple[Step, ...]:
    database = compiled.model.rollup_database
    rows = read_catalog_rows(warehouse, database)
    catalog = {name: state for name, _, _, state in rows}
    # a rollup whose stored attributes changed since its build is rebuilt like a marked one
    catalog.update(dict.fromkeys(stale_rollups(warehouse, compiled.rollups, catalog), STALE))
    owners = {name: (source, rollup) for name, source, rollup, _ in rows}
    existing = tables(warehouse, [database])
    return plan_migration(compiled, catalog, existing, owners, keep_unused)


def render_steps(compiled: CompiledModel, steps: tuple[Step, ...]) -> str:
    """A readable preview of what ``apply`` would do, with every statement."""
    lines = []
    counts: dict[str, int] = {}
    for step in steps:
        counts[step.action] = counts.get(step.action, 0) + 1
        lines.append(f"-- {step.action}: {step.table} ({step.detail})")
        for statement in step.statements:
            marker = "  -- (ingestion paused)" if statement.locked else ""
            if statement.backfill_from is not None:
                marker = f"  -- backfill, once per part of {statement.backfill_from}"
            elif step.rollup is not None and isinstance(statement.expression, exp.Insert) \
                    and f"'{READY}'" in render(statement.expression):
                marker = "  -- switch: served from here on"
            lines.append(f"{render(statement.expression)};{marker}")
        lines.append("")
    summary = ", ".join(f"{n} {action}" for action, n in sorted(counts.items())) or "no rollups"
    model = compiled.model
    setup = [f"{render(s.expression)};"
             for s in setup_statements(model.rollup_database, model.cluster)]
    return "\n".join([f"-- plan: {summary}", *setup, "", *lines]).rstrip() + "\n"


def _backfill(warehouse: Warehouse, statement: Statement, report: Report) -> None:
    """Run a backfill part by part of its snapshot, partition by partition, reporting rows,
    rows/s and the time left."""
    assert statement.backfill_from is not None
    database, name = statement.backfill_from.split(".", 1)
    parts = warehouse.query(introspection.PARTS, {"db": database, "name": name}).rows
    total = sum(int(rows) for _, _, rows in parts)
    target = statement.expression.this.find(exp.Table)
    table = f"{target.db}.{target.name}" if target is not None else "unknown"
    progress, counted = BACKFILL_PROGRESS.labels(table), BACKFILL_ROWS.labels(table)
    progress.set(0 if total else 1)
    done = 0
    started = time.perf_counter()
    for partition, part, rows in parts:
        warehouse.command(statement.expression, {PART_PARAMETER: part})
        done += int(rows)
        counted.inc(int(rows))
        progress.set(done / total)
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
                report: Report = lambda line: None, keep_unused: bool = False,
                drops_only: bool = False) -> tuple[Step, ...]:
    """Create and backfill every missing rollup, keep complete ones, drop the ones no rollup of
    the model uses (unless ``keep_unused``); report as it goes. New rollups are built before
    anything is dropped. ``drops_only`` runs (and reports) only the drops: the second half of
    an apply whose builds were done first."""
    issues = key_issues(compiled.model, warehouse)
    if issues:  # a repeated key would multiply measures through every join to it
        raise ModelError(issues)
    for statement in setup_statements(compiled.model.rollup_database, compiled.model.cluster):
        warehouse.command(statement.expression)
    steps = migration_steps(compiled, warehouse, keep_unused)
    if drops_only:
        steps = tuple(s for s in steps if s.action == "drop")
    for step in steps:
        if not step.statements:
            report(f"{step.action:8} {step.table}: {step.detail}")
            continue
        started = time.perf_counter()
        report(f"{step.action:8} {step.table}: {step.detail} ...")
        execute(warehouse, step.statements, report)
        report(f"{'':8} done in {time.perf_counter() - started:.2f} s")
    return steps


def apply_summary(steps: Sequence[Step]) -> str:
    """The last line of ``semantic apply``."""
    built = sum(1 for s in steps if s.statements and s.action != "drop")
    dropped = sum(1 for s in steps if s.action == "drop")
    unchanged = len(steps) - built - dropped
    return (f"apply: {built} rollup(s) built, {unchanged} unchanged"
            + (f", {dropped} dropped" if dropped else ""))


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


def fill_demo(warehouse: Warehouse, rows: int, seed: int, table: str, append: bool,
              report: Report = lambda line: None) -> int:
    """``semantic demo``: fill ``table`` with the reference data unless it has rows already
    (``append`` adds ``rows`` more), and its users table unless that has rows; report what was
    done and return the table's rows."""
    existing = row_count(warehouse, table)
    if existing and not append:
        report(f"{table} already has {existing:,} rows; nothing inserted (--append adds more)")
        total = existing
    else:
        total = load_demo(warehouse, rows, seed, table, report)
        report(f"{table}: {total:,} rows (seed {seed})")
    users = users_table(table)
    if not row_count(warehouse, users):
        warehouse.command(create_users_table(users))
        statement, parameters = users_insert(users, seed)
        with warehouse.ingestion_lock:
            warehouse.command(statement, parameters)
        report(f"{users}: {row_count(warehouse, users):,} users (joined to {table} by user_id)")
    return total


def row_count(warehouse: Warehouse, table: str) -> int:
    """Rows in ``table``, 0 when it does not exist."""
    if table_columns(warehouse, table) is None:
        return 0
    return int(warehouse.query(introspection.row_count(table)).rows[0][0])


@dataclass(frozen=True, slots=True)
class Drift:
    """Groups where a rollup's answer differs from the raw table's, by time period."""

    rollup: str
    table: str
    groups: int
    differing: int
    periods: dict[str, int]
    example: str
    #: bucket values of the differing groups (time-grained rollups)
    buckets: tuple[object, ...] = ()


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def _unlimited(plan: Plan) -> Rendered:
    statement = plan.statement.copy()
    statement.set("limit", None)
    return render(statement)


def verify_model(compiled: CompiledModel, warehouse: Warehouse,
                 report: Report = lambda line: None) -> list[Drift]:
    """Compare every complete rollup with the raw table, group by group (its dimensions at its
    grain); return the rollups that drifted. T-digest quantiles are approximate by design and
    not compared."""
    issues = key_issues(compiled.model, warehouse)
    if issues:
        raise ModelError(issues)
    runtime = Runtime.start(compiled.model, warehouse)
    drifts = []
    for source in compiled.sources.values():
        for rollup in source.rollups:
            stats = runtime.ready.get(rollup.qualified_table)
            if stats is None:
                why = runtime.stale.get(rollup.qualified_table)
                report(f"skip     {rollup.qualified_table}: "
                       + (f"stale: {why}" if why else "not built"))
                continue
            measures = tuple(m for m in source.measures if all(
                rollup.component_column(k) is not None for k in source.measures[m].components)
                and source.measures[m].aggregation.exact)
            dimensions = tuple(d.name for _, d in rollup.dimensions) + rollup.joined
            if rollup.grain:
                assert source.time is not None
                dimensions += (source.time.name,)
            query = Query(source.name, measures, dimensions, rollup.grain,
                          limit=1, timezone=source.timezone)
            served = plan_query(source, query, {rollup.qualified_table: stats})
            assert served.rollup is rollup, served.candidates
            raw = plan_query(source, replace(query, force_raw=True), {})
            got = warehouse.query(_unlimited(served), served.parameters).rows
            expected = warehouse.query(_unlimited(raw), raw.parameters).rows
            width = len(dimensions)
            have = {tuple(row[:width]): row[width:] for row in got}
            want = {tuple(row[:width]): row[width:] for row in expected}
            periods: dict[str, int] = {}
            buckets: set[object] = set()
            differing = 0
            example = ""
            for key in sorted(set(have) | set(want), key=repr):
                a, b = have.get(key), want.get(key)
                if a is not None and b is not None and all(map(_same, a, b)):
                    continue
                differing += 1
                bucket = key[-1] if rollup.grain else None
                if bucket is not None:
                    buckets.add(bucket)
                if isinstance(bucket, int):  # minute/hour buckets come as epoch seconds
                    bucket = datetime.fromtimestamp(bucket, UTC)
                period = bucket.strftime("%Y-%m") if isinstance(bucket, date) else "all"
                periods[period] = periods.get(period, 0) + 1
                example = example or (f"group {dict(zip(dimensions, key, strict=True))}: "
                                      f"rollup {a}, raw {b}")
            line = (f"{rollup.qualified_table} ({rollup.name}): {len(want):,} groups, "
                    f"{differing:,} differ")
            if differing:
                drifts.append(Drift(rollup.name, rollup.qualified_table, len(want), differing,
                                    periods, example, tuple(sorted(buckets, key=repr))))
                where = ", ".join(f"{p}: {n}" for p, n in sorted(periods.items()))
                report(f"DRIFT    {line} ({where}); e.g. {example}")
            else:
                report(f"ok       {line}")
    return drifts


def repair_model(compiled: CompiledModel, warehouse: Warehouse, everything: bool,
                 report: Report = lambda line: None) -> int:
    """``semantic repair``: verify, then rebuild the drifted rollups (every one with
    ``everything``); return how many were rebuilt."""
    drifts = [] if everything else verify_model(compiled, warehouse, report)
    names = ({r.qualified_table for r in compiled.rollups} if everything
             else {d.table for d in drifts})
    return repair_rollups(compiled, warehouse, names, report, drifts)


def repair_rollups(compiled: CompiledModel, warehouse: Warehouse, names: set[str],
                   report: Report = lambda line: None,
                   drifts: Sequence[Drift] = ()) -> int:
    """Rebuild the named rollups (``db.table``) from the source into a staging table and swap
    it in with ``REPLACE PARTITION``, with ingestion paused so no row is missed or doubled.
    A partitioned rollup with known drift (``drifts``) rebuilds only the partitions holding the
    differing buckets."""
    if compiled.model.cluster is not None:
        raise SemanticError("repair is not supported on a cluster yet: REPLACE PARTITION works "
                            "per node; rebuild a drifted rollup by renaming it in metrics.yaml "
                            "and running apply")
    repaired = 0
    drifted = {d.table: d.buckets for d in drifts}
    for source in compiled.sources.values():
        for rollup in source.rollups:
            if rollup.qualified_table not in names:
                continue
            started = time.perf_counter()
            staging = ddl.staging_name(rollup)
            warehouse.command(ddl.drop_table(staging))
            warehouse.command(ddl.create_staging_copy(rollup))
            buckets = drifted.get(rollup.qualified_table, ())
            partial = rollup.partition is not None and bool(buckets)
            try:
                with warehouse.ingestion_lock:
                    if partial:
                        done = _repair_partitions(source, rollup, staging, buckets, warehouse)
                        what = f"{done} partition(s)"
                    else:
                        warehouse.command(exp.insert(ddl.rollup_select(source, rollup),
                                                     staging.copy()))
                        if rollup.partition is None:
                            warehouse.command(ddl.replace_from_staging(rollup))
                        else:  # every partition the rebuild or the table has, one by one
                            _swap_partitions(rollup, staging, warehouse)
                        what = "every row"
            finally:
                warehouse.command(ddl.drop_table(staging))
            warehouse.command(ddl.optimize_rollup(rollup))  # the swapped-in parts, merged
            repaired += 1
            report(f"repaired {rollup.qualified_table} ({rollup.name}), {what}, in "
                   f"{time.perf_counter() - started:.2f} s")
    return repaired


def _repair_partitions(source: CompiledSource, rollup: CompiledRollup, staging: exp.Table,
                       buckets: tuple[object, ...], warehouse: Warehouse) -> int:
    """Rebuild the partitions holding ``buckets``: source rows whose bucket falls in them go
    to staging; each partition is then replaced from staging (or dropped if now empty)."""
    assert rollup.partition is not None and rollup.bucket is not None and rollup.grain
    instants = rollup.grain in ("minute", "hour")
    values = [datetime.fromtimestamp(int(str(b)), UTC).strftime("%Y-%m-%d %H:%M:%S") if instants
              else (b.isoformat() if isinstance(b, date) else str(b)) for b in buckets]
    kind = "DateTime('UTC')" if instants else "Date"
    placeholder = exp.Placeholder(this="buckets", kind=data_type(f"Array({kind})"))
    wanted = exp.select(rollup.partition.copy().transform(
        lambda n: exp.column("b") if isinstance(n, exp.Column) else n)).distinct().from_(
        exp.select(exp.alias_(call("arrayJoin", placeholder), "b")).subquery())

    def in_partitions(bucket: exp.Expr) -> exp.Expression:
        key = rollup.partition.copy().transform(  # type: ignore[union-attr]
            lambda n: bucket.copy() if isinstance(n, exp.Column) else n)
        return exp.In(this=key, query=wanted.copy().subquery())

    parameters = {"buckets": values}
    select = ddl.rollup_select(source, rollup).where(
        in_partitions(ddl.bucket_expression(source, rollup.grain)))
    warehouse.command(exp.insert(select, staging.copy()), parameters)
    return _swap_partitions(rollup, staging, warehouse,
                            in_partitions(exp.column(rollup.bucket)), parameters)


def _swap_partitions(rollup: CompiledRollup, staging: exp.Table, warehouse: Warehouse,
                     where: exp.Expression | None = None,
                     parameters: Mapping[str, object] | None = None) -> int:
    """Replace each partition the staging table holds, and drop each partition of the rollup
    (those matching ``where``) that staging does not hold; return how many were touched.
    Each swap is atomic, so a reader sees a partition either before or after."""
    ids = exp.select(exp.column("_partition_id")).distinct()
    rebuilt = {row[0] for row in warehouse.query(ids.copy().from_(staging.copy())).rows}
    current = ids.copy().from_(exp.table_(rollup.table, db=rollup.database))
    if where is not None:
        current = current.where(where)
    touched = {row[0] for row in warehouse.query(current, parameters).rows}
    for partition_id in sorted(rebuilt | touched):
        warehouse.command(ddl.swap_partition(rollup, partition_id, partition_id in rebuilt))
    return len(rebuilt | touched)
