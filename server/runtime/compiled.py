"""The compiled model bound to a warehouse: compile at start, route and run queries."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from datetime import time as dt_time
from typing import Any
from zoneinfo import ZoneInfo

from engine.dialect.system import TABLE_KEYS, bucket_bounds, leads_with
from engine.model.compiled import CompiledModel, CompiledRollup
from engine.query.normalize import normalize_query
from engine.query.request import Query, QueryError
from engine.query.security import Access, secure_query
from engine.rollups.migration import READY
from engine.serving.changes import complete
from engine.serving.plan import Plan, RollupStats
from engine.serving.router import plan_query
from engine.time.ranges import add_grains
from semantic.model import Model, default_source
from semantic.suggest import did_you_mean, shown
from server.auth.principal import current_access
from server.observability.metrics import QueryStats
from server.runtime.compile import compile_against
from server.warehouse.catalog import column_sizes, read_catalog, stale_rollups
from server.warehouse.statements import SMALL_READ_SETTINGS, TINY_READ_SETTINGS, Warehouse

logger = logging.getLogger(__name__)

PLAN_CACHE_SIZE = 1024
#: plans bigger than this (SQL text plus bound values) are not cached: a thousand of them,
#: each holding a 1 MB filter value, would otherwise hold a gigabyte
PLAN_CACHE_MAX_BYTES = 64 * 1024


def _weight(plan: Plan) -> int:
    """About how many bytes a cached plan holds beyond its fixed parts."""
    size = len(plan.sql)
    for value in plan.parameters.values():
        for item in value if isinstance(value, list) else (value,):
            size += len(item) if isinstance(item, str) else 8
    return size


#: rows of a granule (the engine's default ``index_granularity``, which rollup tables keep)
GRANULE_ROWS = 8192


def _instant(value: date | datetime, zone: ZoneInfo) -> datetime:
    """A bucket value as a UTC instant: a date starts at midnight in ``zone``; a naive
    DateTime is UTC (clickhouse-connect's convention)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime.combine(value, dt_time(), zone).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Answer:
    plan: Plan
    #: the answer's values column by column, in ``plan.columns`` order (limit applied)
    values: tuple[list[Any], ...]
    truncated: bool
    elapsed_ms: float
    #: what ClickHouse reported for the query (rows and bytes read, its own elapsed time)
    stats: QueryStats | None = None

    @property
    def count(self) -> int:
        return len(self.values[0]) if self.values else 0

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The answer as one dict per row."""
        return [dict(zip(self.plan.columns, row, strict=True)) for row in
                zip(*self.values, strict=True)]


class Runtime:
    """Routes queries to complete rollups; sizes are refreshed by ``refresh``."""

    def __init__(self, compiled: CompiledModel, warehouse: Warehouse) -> None:
        self.compiled = compiled
        self.warehouse = warehouse
        self.ready: dict[str, RollupStats] = {}
        #: rollups storing attributes of a dimension table changed since they were built
        #: (``db.table`` -> why): never served until rebuilt
        self.stale: dict[str, str] = {}
        self._lock = threading.Lock()
        #: Plans are pure functions of the query and of ``ready``: cached until ``ready``
        #: changes, they keep sqlglot off the request path of repeated queries.
        self._plans: dict[Query | None, Plan] = {}
        #: changes whenever ``ready`` does (answers may then be read from other tables)
        self.generation = 0

    @classmethod
    def start(cls, model: Model, warehouse: Warehouse) -> Runtime:
        runtime = cls(compile_against(model, warehouse), warehouse)
        runtime.refresh()
        return runtime

    @property
    def model(self) -> Model:
        return self.compiled.model

    def refresh(self) -> None:
        """Re-read which rollups are complete, how big they are and where their data lies in
        time, and the sizes of the source tables (which price raw-table pieces)."""
        database = self.model.rollup_database
        catalog = read_catalog(self.warehouse, database)
        sources = [s.source for s in self.compiled.sources.values()]
        sizes = column_sizes(self.warehouse, sorted({database} | {s.database for s in sources}))
        ready = {}
        stale = stale_rollups(self.warehouse, self.compiled.rollups, catalog)
        for rollup in self.compiled.rollups:
            name = rollup.qualified_table
            if catalog.get(name) == READY and name not in stale:
                # On a cluster the Distributed table has no parts: this node's shard of the
                # local table stands in for the relative sizes routing compares.
                local = f"{rollup.database}.{rollup.local_table}"
                rows, columns, parts = sizes.get(local, (0, {}, 0))
                first, end = self._time_span(rollup) if rollup.grain else (None, None)
                ready[name] = RollupStats(rows, sum(columns.values()), columns, first, end,
                                          parts=parts)
        keys = self.warehouse.query(TABLE_KEYS, {"dbs": sorted({s.database for s in sources})})
        ordered = {f"{db}.{name}": (sorting, partition) for db, name, sorting, partition, *_
                   in keys.rows}
        for source in sources:
            if source.table in sizes:
                rows, columns, parts = sizes[source.table]
                sorting, partition = ordered.get(source.table, ("", ""))
                time = source.time_column or ""
                time_ordered = bool(time) and (leads_with(sorting, time) or any(
                    leads_with(part, time) for part in partition.split(",")))
                ready[source.table] = RollupStats(rows, sum(columns.values()), columns,
                                                  time_ordered=time_ordered, parts=parts)
        with self._lock:
            if ready != self.ready or stale != self.stale:
                self._plans.clear()
                self.generation += 1
            self.ready = ready
            self.stale = stale

    def _time_span(self, rollup: CompiledRollup) -> tuple[datetime | None, datetime | None]:
        assert rollup.bucket is not None and rollup.grain is not None
        low, high, count = self.warehouse.query(
            bucket_bounds(rollup.qualified_table, rollup.bucket)).rows[0]
        if not count:
            return None, None
        zone = ZoneInfo(self.compiled.sources[rollup.source].timezone)
        first, last = _instant(low, zone), _instant(high, zone)
        return first, add_grains(last, rollup.grain, 1, zone)

    def source_name(self, requested: str | None) -> str:
        names = list(self.compiled.sources)
        if requested is None:
            default = default_source([(s.name, bool(s.measures or s.metrics))
                                      for s in self.compiled.sources.values()])
            if default is not None:
                return default
            raise QueryError("source", f"name a source: one of {', '.join(names)}")
        if requested not in self.compiled.sources:
            raise QueryError("source", f"unknown source '{shown(requested)}'"
                             f"{did_you_mean(requested, names)}; known: {', '.join(names)}")
        return requested

    def plan(self, query: Query, now: datetime | None = None,
             access: Access | None = None, secured: bool = False) -> Plan:
        """Plan a query (relative time ranges resolved against ``now``, default: the clock);
        plans are cached by the query as asked (unless its range is relative to the clock) and
        by the resolved query.

        The caller's row-level security (``access``, default: the authenticated caller of the
        request being handled) is added to the query first, so every route that plans a query
        is restricted, and the cache keys include the restriction; ``secured`` says the query
        already carries it (one derived from a planned query)."""
        access = None if secured else access if access is not None else current_access()
        if access is not None:
            query = secure_query(self.compiled.sources[self.source_name(query.source)], query,
                                 access)
        relative = query.time_range is not None and query.time_range.relative is not None
        asked = None if relative else query
        try:
            cached = self._plans.get(asked) if asked is not None else None
        except TypeError:  # an unhashable filter value, which validation rejects below
            asked, cached = None, None
        if cached is not None:
            return cached
        source = self.compiled.sources[self.source_name(query.source)]
        normalized = normalize_query(source, query, now)
        key = normalized
        with self._lock:
            ready, stale = self.ready, self.stale
            plan = self._plans.get(key)
        if plan is None:
            plan = plan_query(source, normalized, ready, normalized=True, stale=stale)
        if _weight(plan) > PLAN_CACHE_MAX_BYTES:
            return plan
        with self._lock:
            if ready is self.ready:  # not made stale by a refresh meanwhile
                if len(self._plans) >= PLAN_CACHE_SIZE:
                    self._plans.clear()
                self._plans[key] = plan
                if asked is not None:
                    self._plans[asked] = plan
        return plan

    def normalized(self, query: Query, now: datetime | None = None) -> Query:
        """The query as plans and answers are keyed by: restricted by the caller's row-level
        security, then normalized (``plan(query).query``, without planning)."""
        access = current_access()
        source = self.compiled.sources[self.source_name(query.source)]
        if access is not None:
            query = secure_query(source, query, access)
        return normalize_query(source, query, now)

    def cached_plan(self, query: Query,
                    secured: bool = False) -> Plan | None:
        """The plan of a query asked before (absolute range), without planning: a dict
        lookup, cheap enough for the event loop (``secured`` as for ``plan``)."""
        access = None if secured else current_access()
        if access is not None:  # as ``plan`` does: the caller's restriction first
            query = secure_query(self.compiled.sources[self.source_name(query.source)], query,
                                 access)
        try:
            return self._plans.get(query)
        except TypeError:
            return None

    def read_settings(self, plan: Plan) -> dict[str, object] | None:
        """The settings ``plan``'s statement runs with: ``SMALL_READ_SETTINGS`` when it reads
        rollups only and joins nothing (one thread merges a rollup's few rows fastest), and
        ``TINY_READ_SETTINGS`` when each of those holds a granule of rows at most; else the
        engine's defaults (None: the raw table, or a join, whose hash table builds in
        parallel)."""
        if plan.joins:
            return None
        ready = self.ready
        tiny = True
        for piece in plan.pieces:
            if piece.rollup is None:
                return None
            stats = ready.get(piece.rollup.qualified_table)
            tiny = tiny and stats is not None and stats.rows <= GRANULE_ROWS
        return TINY_READ_SETTINGS if tiny else SMALL_READ_SETTINGS

    def run(self, plan: Plan) -> Answer:
        started = time.perf_counter()
        names, values, stats = self.warehouse.query_columns(
            plan.sql, plan.parameters, bounded=True, raw=plan.rollup is None,
            settings=self.read_settings(plan))
        elapsed = (time.perf_counter() - started) * 1000
        if plan.changes:
            values = complete(plan.columns, plan.changes, values or [
                [] for _ in range(len(plan.columns) - len(plan.changes))])
        elif not names:  # no rows: the embedded engine may send no header either
            values = [[] for _ in plan.columns]
        assert plan.query.limit is not None
        limit = plan.query.limit
        truncated = len(values[0]) > limit if values else False
        if truncated:
            values = [column[:limit] for column in values]
        if plan.instant_column is not None:
            zone = ZoneInfo(plan.query.timezone or "UTC")
            index = plan.columns.index(plan.instant_column)
            values[index] = [datetime.fromtimestamp(int(seconds), zone)
                             for seconds in values[index]]
        return Answer(plan, tuple(values), truncated, elapsed, stats)
