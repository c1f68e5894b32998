"""Rollup DDL: AggregatingMergeTree tables, the materialized views that feed them, backfills.

Every statement is a sqlglot expression; text is generated only at the boundary.
"""

from __future__ import annotations

from sqlglot import exp

from engine.dialect.functions import GRAIN_TYPES, ROLLUP_ENGINE, bucket_call, call
from engine.dialect.system import table_fingerprints
from engine.dialect.types import data_type, is_date_type
from engine.model.compiled import CompiledRollup, CompiledSource
from engine.model.joins import join_clauses, with_joins
from engine.time.ranges import Calendar

CATALOG_TABLE = "_rollups"
INPUTS_TABLE = "_rollup_inputs"
#: a rollup partition's parts are merged into one once all are this old (seconds)
MERGE_AFTER_SECONDS = 30
CATALOG_COLUMNS = ("table_name", "source_name", "rollup_name", "state", "updated_at")


def _column_def(name: str, type_text: str) -> exp.ColumnDef:
    return exp.ColumnDef(this=exp.to_identifier(name), kind=data_type(type_text))


def _table(database: str, name: str) -> exp.Table:
    return exp.table_(name, db=database)


def bucket_expression(source: CompiledSource, grain: str, timezone: str | None = None,
                      calendar: Calendar | None = None) -> exp.Expr:
    """The time column truncated to ``grain`` in a time zone and calendar (the source's by
    default), e.g. ``toDate(event_ts, 'UTC')``. A Date column is already a calendar day: it
    takes no zone."""
    assert source.time is not None
    column = source.time.expression.copy()
    zone = None if is_date_type(source.time.type) else (timezone or source.timezone)
    return bucket_call(grain, column, zone, calendar or source.calendar)


def _key_columns(rollup: CompiledRollup) -> list[str]:
    bucket = [rollup.bucket] if rollup.bucket else []
    constant = [rollup.constant_key] if rollup.constant_key else []
    return (bucket + [column for column, _ in rollup.dimensions]
            + [column for column, _, _ in rollup.keys] + constant)


def _on_cluster(cluster: str | None) -> list[exp.Expr]:
    return [exp.OnCluster(this=exp.to_identifier(cluster))] if cluster else []


def create_database(database: str, cluster: str | None = None) -> exp.Create:
    return exp.Create(this=exp.to_identifier(database), kind="DATABASE", exists=True,
                      properties=exp.Properties(expressions=_on_cluster(cluster))
                      if cluster else None)


def _rollup_columns(rollup: CompiledRollup, local: bool = True) -> list[exp.ColumnDef]:
    columns = []
    if rollup.constant_key and local:
        # MATERIALIZED: never in an INSERT's column list, so views and backfills are unchanged
        constant = _column_def(rollup.constant_key, "UInt8")
        constant.set("constraints", [exp.ColumnConstraint(
            kind=exp.ComputedColumnConstraint(this=exp.Literal.number(0), persisted=True))])
        columns.append(constant)
    if rollup.bucket and rollup.grain:
        columns.append(_column_def(rollup.bucket, GRAIN_TYPES[rollup.grain]))
    columns += [_column_def(column, d.type) for column, d in rollup.dimensions]
    columns += [_column_def(column, type_text) for column, _, type_text in rollup.keys]
    columns += [_column_def(column, c.column_type) for column, c in rollup.components]
    return columns


def _replicated(engine: str, database: str, table: str, *args: exp.Expression,
                shard: bool = True) -> exp.Anonymous:
    """``Replicated<engine>('/clickhouse/tables/{shard}/db/table', '{replica}', ...)``: the
    ``{shard}`` and ``{replica}`` macros come from each server's configuration."""
    path = f"/clickhouse/tables/{{shard}}/{database}/{table}" if shard else \
        f"/clickhouse/tables/{database}/{table}"
    return call(f"Replicated{engine}", exp.Literal.string(path), exp.Literal.string("{replica}"),
                *args)


def create_rollup_table(source: CompiledSource, rollup: CompiledRollup) -> exp.Create:
    """``CREATE TABLE`` for a rollup: keys, then one state/partial column per component.
    On a cluster this is the per-node ``ReplicatedAggregatingMergeTree`` table."""
    columns = _rollup_columns(rollup)
    keys = [exp.column(name) for name in _key_columns(rollup)]
    engine = call(ROLLUP_ENGINE) if rollup.cluster is None else _replicated(
        ROLLUP_ENGINE, rollup.database, rollup.local_table)
    properties: list[exp.Expr] = [*_on_cluster(rollup.cluster), exp.EngineProperty(this=engine)]
    # Partitioned only like a time-partitioned source (see compiler._rollup_partition): an
    # INSERT spanning more than max_partitions_per_insert_block (100) partitions fails on
    # such a source anyway, so the views add no new failure.
    if rollup.partition is not None:
        properties.append(exp.PartitionedByProperty(this=rollup.partition.copy()))
    order = exp.Tuple(expressions=keys) if len(keys) != 1 else keys[0]
    properties.append(exp.Order(expressions=[exp.Ordered(this=order if keys else call("tuple"))]))
    # Wide parts keep per-column sizes in system.parts_columns (compact parts report 0), which
    # routing needs to weigh a query by the bytes of the columns it reads; a rollup of one row
    # (no dimension, no grain) keeps compact parts, its columns in one file: a query on it
    # opens one file, not one per column (about 0.04 ms of its 1.8), and its size is its
    # whole part's. Parts older than MERGE_AFTER_SECONDS are merged into one per partition,
    # so a rollup read after inserts costs what its merged form costs (one row, one state per
    # group), not one row per part.
    settings: dict[str, int] = {} if rollup.constant_key else {
        "min_bytes_for_wide_part": 0, "min_rows_for_wide_part": 0}
    settings |= {"min_age_to_force_merge_seconds": MERGE_AFTER_SECONDS,
                 "min_age_to_force_merge_on_partition_only": 1}
    if any("Nullable(" in d.type for _, d in rollup.dimensions) or \
            any("Nullable(" in t for _, _, t in rollup.keys):
        settings["allow_nullable_key"] = 1
    properties.append(exp.SettingsProperty(expressions=[
        exp.EQ(this=exp.column(name), expression=exp.Literal.number(value))
        for name, value in settings.items()]))
    return exp.Create(
        this=exp.Schema(this=_table(rollup.database, rollup.local_table), expressions=columns),
        kind="TABLE",
        exists=True,
        properties=exp.Properties(expressions=properties),
    )


def create_distributed_rollup(rollup: CompiledRollup) -> exp.Create:
    """On a cluster: the table queries read, ``Distributed`` over every node's local rollup.
    Serving queries merge states with ``-Merge``/``sum``/``min``/``max`` under GROUP BY, which
    the initiator finishes across shards; ``rand()`` spreads backfill rows over the shards."""
    assert rollup.cluster is not None
    engine = call("Distributed", exp.to_identifier(rollup.cluster),
                  exp.to_identifier(rollup.database), exp.to_identifier(rollup.local_table),
                  call("rand"))
    return exp.Create(
        this=exp.Schema(this=_table(rollup.database, rollup.table),
                        expressions=_rollup_columns(rollup, local=False)),
        kind="TABLE", exists=True,
        properties=exp.Properties(expressions=[*_on_cluster(rollup.cluster),
                                               exp.EngineProperty(this=engine)]))


def rollup_select(source: CompiledSource, rollup: CompiledRollup,
                  from_table: exp.Table | None = None) -> exp.Select:
    """The aggregation that fills a rollup from source rows (view body and backfill)."""
    selects: list[exp.Expr] = []
    groups: list[exp.Expr] = []
    if rollup.bucket and rollup.grain:
        bucket = bucket_expression(source, rollup.grain)
        selects.append(exp.alias_(bucket, rollup.bucket))
        groups.append(bucket.copy())
    for column, dimension in rollup.dimensions:
        selects.append(exp.alias_(dimension.expression.copy(), column))
        groups.append(dimension.expression.copy())
    for column, own, _ in rollup.keys:
        selects.append(exp.alias_(exp.column(own), column))
        groups.append(exp.column(own))
    for column, component in rollup.components:
        argument = component.argument.copy() if component.argument is not None else None
        condition = component.condition.copy() if component.condition is not None else None
        selects.append(exp.alias_(component.kind.fill(argument, condition), column))
    # measures over joined columns read them through the joins as they are at insert time
    select = with_joins(exp.select(*selects).from_(from_table or source.table),
                        join_clauses(source.paths, rollup.needs, exp.column))
    return select.group_by(*groups) if groups else select


def create_rollup_view(source: CompiledSource, rollup: CompiledRollup) -> exp.Create:
    """``CREATE MATERIALIZED VIEW ... TO rollup``: every insert into the source feeds it. On
    a cluster, every node's view reads inserts into its local source table and feeds its
    local rollup."""
    return exp.Create(
        this=_table(rollup.database, rollup.view),
        kind="VIEW",
        exists=True,
        expression=rollup_select(source, rollup, source.local_table.copy()),
        properties=exp.Properties(expressions=[
            exp.MaterializedProperty(), *_on_cluster(rollup.cluster),
            exp.ToTableProperty(this=_table(rollup.database, rollup.local_table))]),
    )


def snapshot_name(rollup: CompiledRollup) -> exp.Table:
    return _table(rollup.database, f"{rollup.table}_snapshot")


def create_snapshot_table(source: CompiledSource,
                          rollup: CompiledRollup) -> exp.Create | exp.Command:
    """An empty copy of the source's structure and engine, to hard-link its parts into (on
    every node of a cluster, from its local source table). A Replicated source is copied as a
    plain MergeTree with the same keys: a copy of its engine would share its replication
    path."""
    engine = source.engine
    if engine.replicated:
        keys = []
        for clause, key in (("PARTITION BY", engine.partition_key),
                            ("PRIMARY KEY", engine.primary_key),
                            ("ORDER BY", engine.sorting_key)):
            if key:  # keys as ClickHouse reports them, re-rendered through the parser
                keys.append(f"{clause} ({_key_sql(key)})")
        if not engine.sorting_key:
            keys.append("ORDER BY tuple()")
        cluster = (f" ON CLUSTER {exp.to_identifier(rollup.cluster).sql()}"
                   if rollup.cluster else "")
        return exp.Command(this="CREATE", expression=(
            f"TABLE IF NOT EXISTS {snapshot_name(rollup).sql(dialect='clickhouse')}{cluster} "
            f"AS {source.local_table.sql(dialect='clickhouse')} ENGINE = MergeTree "
            + " ".join(keys)))
    return exp.Create(this=snapshot_name(rollup), kind="TABLE", exists=True,
                      expression=source.local_table.copy(),
                      properties=exp.Properties(expressions=_on_cluster(rollup.cluster))
                      if rollup.cluster else None)


def _key_sql(key: str) -> str:
    import sqlglot

    parsed = sqlglot.parse_one(f"SELECT {key}", dialect="clickhouse")
    assert isinstance(parsed, exp.Select)
    return ", ".join(e.sql(dialect="clickhouse") for e in parsed.expressions)


def attach_snapshot(source: CompiledSource, rollup: CompiledRollup) -> exp.Command:
    """Hard-link every part of the source into the snapshot (no data is copied).

    sqlglot has no node for ``ATTACH PARTITION``, so the command is assembled from nodes'
    generated names, never from request input.
    """
    target = snapshot_name(rollup).sql(dialect="clickhouse")
    origin = source.local_table.sql(dialect="clickhouse")
    cluster = f" ON CLUSTER {exp.to_identifier(rollup.cluster).sql()}" if rollup.cluster else ""
    return exp.Command(this="ALTER", expression=f"TABLE {target}{cluster} ATTACH PARTITION ALL "
                                                f"FROM {origin}")


def stop_merges(table: exp.Table) -> exp.Command:
    """``SYSTEM STOP MERGES db.table``: a snapshot is backfilled part by part, by the names of
    the parts it held when the backfill began; a background merge in between would retire
    parts not yet read (their rows never reaching the rollup). The snapshot is dropped after
    the backfill, so it never needs merging."""
    return exp.Command(this="SYSTEM",
                       expression=f"STOP MERGES {table.sql(dialect='clickhouse')}")


#: the query parameter naming the snapshot part a backfill statement reads
PART_PARAMETER = "part"


def backfill_insert(source: CompiledSource, rollup: CompiledRollup,
                    from_table: exp.Table, per_part: bool = False) -> exp.Insert:
    """``INSERT INTO rollup SELECT ...`` over ``from_table`` (the snapshot); ``per_part``
    restricts it to the part named by the ``{part:String}`` parameter, so a backfill runs
    part by part and reports progress."""
    if rollup.cluster is not None:
        # Each node's snapshot holds its shard: read them all through cluster() and insert
        # through the Distributed table (one statement, run once).
        from_table = exp.Table(this=call("cluster", exp.Literal.string(rollup.cluster),
                                         exp.to_identifier(rollup.database),
                                         exp.to_identifier(from_table.name)))
        per_part = False
    select = rollup_select(source, rollup, from_table)
    if per_part:
        select = select.where(exp.EQ(this=exp.column("_part"), expression=exp.Placeholder(
            this=PART_PARAMETER, kind=data_type("String"))))
    return exp.insert(select, _table(rollup.database, rollup.table))


def optimize_rollup(rollup: CompiledRollup) -> exp.Command:
    """``OPTIMIZE TABLE rollup FINAL``: merge every partition's parts into one, so each group
    is one row with one state (a backfill writes a part per source part).

    sqlglot has no node for ``OPTIMIZE``: the command is assembled from nodes' names.
    """
    target = _table(rollup.database, rollup.local_table).sql(dialect="clickhouse")
    cluster = f" ON CLUSTER {exp.to_identifier(rollup.cluster).sql()}" if rollup.cluster else ""
    return exp.Command(this="OPTIMIZE", expression=f"TABLE {target}{cluster} FINAL")


def drop_table(table: exp.Table, view: bool = False, cluster: str | None = None) -> exp.Drop:
    if cluster is None:
        return exp.Drop(tables=[table], kind="VIEW" if view else "TABLE", exists=True)
    return exp.Drop(tables=[table], kind="VIEW" if view else "TABLE", exists=True,
                    cluster=exp.OnCluster(this=exp.to_identifier(cluster)), sync=True)


def create_catalog(database: str, cluster: str | None = None) -> exp.Create:
    """The catalog records which rollup tables are complete; only those are ever served. On a
    cluster it is one replicated table (no ``{shard}``): every node sees every state."""
    columns = [
        _column_def("table_name", "String"),
        _column_def("source_name", "String"),
        _column_def("rollup_name", "String"),
        _column_def("state", "String"),
        _column_def("updated_at", "DateTime64(6)"),
    ]
    engine = call("ReplacingMergeTree", exp.column("updated_at")) if cluster is None else \
        _replicated("ReplacingMergeTree", database, CATALOG_TABLE, exp.column("updated_at"),
                    shard=False)
    properties: list[exp.Expr] = [
        *_on_cluster(cluster), exp.EngineProperty(this=engine),
        exp.Order(expressions=[exp.Ordered(this=exp.column("table_name"))]),
    ]
    return exp.Create(
        this=exp.Schema(this=_table(database, CATALOG_TABLE), expressions=columns),
        kind="TABLE",
        exists=True,
        properties=exp.Properties(expressions=properties),
    )


def record_state(rollup: CompiledRollup, state: str) -> exp.Insert:
    """Record a rollup's state (``building`` or ``ready``) in the catalog."""
    return record_table_state(rollup.database, rollup.table, rollup.source, rollup.name, state)


def record_table_state(database: str, table: str, source: str, rollup: str,
                       state: str) -> exp.Insert:
    """Record the state of a rollup table (``building``, ``ready``, ``dropped``)."""
    row = exp.Tuple(expressions=[
        exp.Literal.string(table),
        exp.Literal.string(source),
        exp.Literal.string(rollup),
        exp.Literal.string(state),
        call("now64", exp.Literal.number(6)),
    ])
    target = exp.Schema(
        this=_table(database, CATALOG_TABLE),
        expressions=[exp.to_identifier(c) for c in CATALOG_COLUMNS],
    )
    return exp.Insert(this=target, expression=exp.Values(expressions=[row]))


def create_inputs_catalog(database: str, cluster: str | None = None) -> exp.Create:
    """What the tables a rollup stores attributes of looked like when its build began (their
    fingerprints, ``engine.dialect.system.table_fingerprints``): once one differs, the
    rollup is stale and not served until rebuilt."""
    columns = [_column_def("table_name", "String"), _column_def("input", "String"),
               _column_def("fingerprint", "String"), _column_def("updated_at", "DateTime64(6)")]
    engine = call("ReplacingMergeTree", exp.column("updated_at")) if cluster is None else \
        _replicated("ReplacingMergeTree", database, INPUTS_TABLE, exp.column("updated_at"),
                    shard=False)
    return exp.Create(
        this=exp.Schema(this=_table(database, INPUTS_TABLE), expressions=columns),
        kind="TABLE", exists=True,
        properties=exp.Properties(expressions=[
            *_on_cluster(cluster), exp.EngineProperty(this=engine),
            exp.Order(expressions=[exp.Ordered(this=exp.Tuple(expressions=[
                exp.column("table_name"), exp.column("input")]))])]))


def record_inputs(rollup: CompiledRollup) -> exp.Insert:
    """Record the fingerprints of the tables the rollup stores attributes of (before its
    backfill reads them)."""
    found = table_fingerprints(list(rollup.stores_from))
    select = exp.select(exp.Literal.string(rollup.table), exp.column("input"),
                        exp.column("fingerprint"), call("now64", exp.Literal.number(6))).from_(
        found.subquery("found"))
    target = exp.Schema(this=_table(rollup.database, INPUTS_TABLE), expressions=[
        exp.to_identifier(c) for c in ("table_name", "input", "fingerprint", "updated_at")])
    return exp.Insert(this=target, expression=select)


def inputs_query(database: str) -> exp.Select:
    """The latest recorded fingerprint of each (rollup table, input table)."""
    keys = [exp.column("table_name"), exp.column("input")]
    return (exp.select(*keys, exp.alias_(call("argMax", exp.column("fingerprint"),
                                               exp.column("updated_at")), "fingerprint"))
            .from_(_table(database, INPUTS_TABLE)).group_by(*(k.copy() for k in keys)))


def catalog_query(database: str) -> exp.Select:
    """Latest state of every rollup table in the catalog."""
    keys = [exp.column(c) for c in CATALOG_COLUMNS[:3]]
    latest = call("argMax", exp.column("state"), exp.column("updated_at"))
    return (
        exp.select(*keys, exp.alias_(latest, "state"))
        .from_(_table(database, CATALOG_TABLE))
        .group_by(*(k.copy() for k in keys))
    )


def create_staging_table(table: exp.Table, columns: dict[str, str]) -> exp.Create:
    """A Memory table with every column Nullable, to decode a typed file (Parquet) into before
    its rows are checked: a column the file lacks comes back NULL, not a silent default."""
    definitions = [_column_def(name, type_text if type_text.startswith(("Nullable(",
                                                                        "LowCardinality("))
                                else f"Nullable({type_text})")
                   for name, type_text in columns.items()]
    return exp.Create(this=exp.Schema(this=table, expressions=definitions), kind="TABLE",
                      properties=exp.Properties(expressions=[
                          exp.EngineProperty(this=call("Memory"))]))


def create_like(table: exp.Table, like: exp.Table) -> exp.Create:
    """``CREATE TABLE table AS like``: an empty table with ``like``'s columns and engine."""
    return exp.Create(this=table, kind="TABLE", expression=like.copy())


def exchange_tables(a: exp.Table, b: exp.Table) -> exp.Command:
    """``EXCHANGE TABLES a AND b``: both names swap atomically (Atomic databases).

    sqlglot has no node for it: the command is assembled from the nodes' generated names."""
    return exp.Command(this="EXCHANGE", expression=f"TABLES {a.sql(dialect='clickhouse')} "
                                                   f"AND {b.sql(dialect='clickhouse')}")


def create_load_table(table: exp.Table, columns: dict[str, str]) -> exp.Create:
    """A MergeTree table with the source's columns (no views attached) that a multi-request
    load stages its checked rows in, before they go into the source in one statement.

    >>> print(create_load_table(exp.table_("_load_events_ab12", db="semantic"),
    ...                         {"ts": "DateTime", "n": "Int64"}).sql(dialect="clickhouse"))
    CREATE TABLE IF NOT EXISTS semantic._load_events_ab12 (ts DateTime, n Int64)
    ENGINE=MergeTree() ORDER BY tuple()
    """
    return exp.Create(
        this=exp.Schema(this=table, expressions=[_column_def(n, t) for n, t in columns.items()]),
        kind="TABLE", exists=True,
        properties=exp.Properties(expressions=[
            exp.EngineProperty(this=call("MergeTree")),
            exp.Order(expressions=[exp.Ordered(this=call("tuple"))])]))


def insert_load(target: str, table: exp.Table, columns: list[str]) -> exp.Insert:
    """``INSERT INTO target (columns) SELECT columns FROM load_table``: a staged load in one
    statement.

    >>> insert_load("analytics.events", exp.table_("_load_x", db="semantic"),
    ...             ["ts", "n"]).sql(dialect="clickhouse")
    'INSERT INTO analytics.events (ts, n) SELECT ts, n FROM semantic._load_x'
    """
    select = exp.select(*[exp.column(c) for c in columns]).from_(table.copy())
    return exp.insert(select, exp.to_table(target), columns=columns)


def staging_name(rollup: CompiledRollup) -> exp.Table:
    return _table(rollup.database, f"{rollup.table}_repair")


def create_staging_copy(rollup: CompiledRollup) -> exp.Create:
    """An empty table shaped like the rollup, to rebuild it into before swapping it in."""
    return exp.Create(this=staging_name(rollup), kind="TABLE", exists=True,
                      expression=_table(rollup.database, rollup.table))


def replace_from_staging(rollup: CompiledRollup) -> exp.Command:
    """Swap the rebuilt data in: ``ALTER TABLE rollup REPLACE PARTITION tuple() FROM staging``
    (atomic; for an unpartitioned rollup, whose one partition is the whole table).

    sqlglot has no node for ``REPLACE PARTITION``: the command is assembled from nodes' names.
    """
    target = _table(rollup.database, rollup.table).sql(dialect="clickhouse")
    staging = staging_name(rollup).sql(dialect="clickhouse")
    return exp.Command(this="ALTER",
                       expression=f"TABLE {target} REPLACE PARTITION tuple() FROM {staging}")


def swap_partition(rollup: CompiledRollup, partition_id: str, rebuilt: bool) -> exp.Command:
    """``REPLACE PARTITION ID 'x' FROM staging`` for a rebuilt partition, ``DROP PARTITION ID
    'x'`` for one the source no longer has rows for. The id comes from ``_partition_id``."""
    target = _table(rollup.database, rollup.table).sql(dialect="clickhouse")
    quoted = exp.Literal.string(partition_id).sql(dialect="clickhouse")
    if rebuilt:
        staging = staging_name(rollup).sql(dialect="clickhouse")
        return exp.Command(this="ALTER", expression=f"TABLE {target} REPLACE PARTITION ID "
                                                    f"{quoted} FROM {staging}")
    return exp.Command(this="ALTER", expression=f"TABLE {target} DROP PARTITION ID {quoted}")
