"""Routing: answer a query from the cheapest complete rollups that answer it exactly, else the
raw table, and build the serving SQL for the choice.

A query over a time range may be cut into *pieces*: the middle of the range that whole rollup
buckets cover, and the ragged edges, each from a finer rollup or the raw table. The pieces'
partial aggregates are merged in one query, so the answer is exact, never approximated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlglot import exp

from engine.dialect.clickhouse import DERIVABLE_GRAINS, GROUP_ROW_NS, PART_NS, PLAIN_BYTE_NS
from engine.dialect.render import Rendered, RenderMemo, render
from engine.model.compiler import CompiledRollup, CompiledSource
from engine.query.request import Interval, Query, normalize_query
from engine.serving.sql import SqlBuilder
from engine.time.ranges import ceil_instant, floor_instant, is_boundary
from engine.time.zones import aligned_runs


@dataclass(frozen=True, slots=True)
class RollupStats:
    """Size of a complete rollup table (or of a source table), from ``system.parts``."""

    rows: int
    bytes: int
    column_bytes: Mapping[str, int] = field(default_factory=dict)
    #: the data's time span ``[first, end)`` (UTC), for rollups with a grain
    first: datetime | None = None
    end: datetime | None = None
    #: whether a time range prunes the table (its sort or partition key leads with time);
    #: when not, any range of a source table reads the whole table
    time_ordered: bool = True
    #: active parts (each part read has a fixed cost)
    parts: int = 1

    def read_bytes(self, columns: Iterable[str]) -> int:
        """Bytes a query reading ``columns`` scans (whole table when sizes are unknown)."""
        if not any(self.column_bytes.values()):
            return self.bytes
        return sum(self.column_bytes.get(column, 0) for column in columns)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A rollup considered for a query; ``reason`` says why it cannot answer (None if it can).

    Reasons: ``not_built``, ``missing_dimension``, ``security_filter_not_covered``,
    ``filter_not_covered``,
    ``measure_not_derivable``, ``grain_not_derivable``, ``timezone``, ``range_not_aligned``.
    """

    rollup: str
    table: str
    reason: str | None
    detail: str
    rows: int | None = None
    bytes: int | None = None
    #: bytes the plan built around this rollup would read (usable rollups only)
    cost: int | None = None
    chosen: bool = False
    #: that plan's estimated engine time in ms, what routing compares (usable rollups only)
    estimate: float | None = None

    def to_dict(self) -> dict[str, object]:
        return {"rollup": self.rollup, "table": self.table, "usable": self.reason is None,
                "chosen": self.chosen, "reason": self.reason, "detail": self.detail,
                "rows": self.rows, "bytes": self.bytes, "read_bytes": self.cost,
                "estimated_ms": self.estimate}


@dataclass(frozen=True, slots=True)
class Piece:
    """Part of the answer: rows of ``[start, end)`` (None: open) from a rollup or the raw
    table (``rollup`` None)."""

    rollup: CompiledRollup | None
    start: datetime | None = None
    end: datetime | None = None

    def to_dict(self, raw_table: str) -> dict[str, object]:
        return {"table": self.rollup.qualified_table if self.rollup else raw_table,
                "rollup": self.rollup.name if self.rollup else None,
                "from": self.start.isoformat() if self.start else None,
                "to": self.end.isoformat() if self.end else None}


@dataclass(frozen=True, slots=True)
class Plan:
    query: Query
    #: the rollup serving the piece with most of the data (None: the raw table)
    rollup: CompiledRollup | None
    table: str
    pieces: tuple[Piece, ...]
    candidates: tuple[Candidate, ...]
    statement: exp.Select
    sql: Rendered
    parameters: dict[str, object]
    columns: tuple[str, ...]
    raw_table: str
    #: the column holding epoch seconds to show as instants in ``query.timezone``, if any
    instant_column: str | None = None

    @property
    def tables(self) -> tuple[str, ...]:
        """Every table the answer reads, in piece order."""
        names = [p.rollup.qualified_table if p.rollup else self.raw_table for p in self.pieces]
        return tuple(dict.fromkeys(names))


Rejection = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Span:
    """What a rollup serves of a query's range: the aligned ``middle`` and the ``edges`` left."""

    middle: Interval
    edges: tuple[Interval, ...] = ()


def _static_reject(source: CompiledSource, query: Query,
                   rollup: CompiledRollup) -> Rejection | None:
    """Checks that do not depend on the time range."""
    time = source.time.name if source.time else None
    covered = {d.name for _, d in rollup.dimensions}
    for name in query.dimensions:
        if name != time and name not in covered:
            return "missing_dimension", f"dimension '{name}' is not in the rollup"
    for name in sorted(query.security_members()):
        if name not in covered:
            return "security_filter_not_covered", (f"the caller's row-level security filter on "
                                                   f"'{name}' needs it as a rollup dimension")
    for name in sorted(query.filter_members()):
        if name not in covered:
            return "filter_not_covered", f"filter on '{name}' needs it as a rollup dimension"
    if query.grain is not None:
        if rollup.grain is None:
            return "grain_not_derivable", "the rollup has no time grain"
        if query.grain not in DERIVABLE_GRAINS[rollup.grain]:
            return "grain_not_derivable", (f"grain '{query.grain}' cannot be derived from the "
                                           f"rollup's '{rollup.grain}'")
    keys = {c.key for _, c in rollup.components}
    for name in (*query.measures, *sorted(query.having_members() - set(query.measures))):
        missing = [k for k in source.components_of(name) if k not in keys]
        if missing:
            kind, argument, condition = missing[0]
            what = f"{kind}({argument})" + (f" where {condition}" if condition else "")
            return "measure_not_derivable", (f"measure '{name}' needs {what}, which the rollup "
                                             "does not store")
    return None


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


def _earlier(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _span(source: CompiledSource, query: Query, rollup: CompiledRollup,
          data: Interval | None = None) -> Span | Rejection:
    """The part of the query's range a rollup serves exactly (its *middle*) and the edges left
    over, or why it serves none of it."""
    start, end = query.interval or (None, None)
    grain = rollup.grain
    if grain is None:
        if query.interval is not None:
            return "range_not_aligned", "the rollup has no time grain, so it cannot cut a range"
        return Span((None, None))
    rollup_zone = ZoneInfo(source.timezone)
    assert query.timezone is not None
    if query.grain is not None and query.timezone != source.timezone:
        unit = {"minute": 60, "hour": 3600}.get(grain)
        runs = aligned_runs(query.timezone, source.timezone, unit,
                            lambda t: is_boundary(t, grain, rollup_zone))
    else:
        runs = ((None, None),)
    chosen: Interval | None = None
    best_share = -1.0
    for run_start, run_end in runs:
        low = _later(start, datetime.fromtimestamp(run_start, UTC) if run_start is not None
                     else None)
        high = _earlier(end, datetime.fromtimestamp(run_end, UTC) if run_end is not None
                        else None)
        if low is None or high is None or low < high:
            # The run holding most of the data wins; among equals the latest (recent data).
            share = _fraction((low, high), data) if data is not None else 0.0
            if share >= best_share:
                chosen, best_share = (low, high), share
    if chosen is None:
        step = {"minute": "minute", "hour": "hour"}.get(grain, "day")
        return "timezone", (f"{query.grain} buckets in {query.timezone} cannot be cut from "
                            f"{grain} buckets in {source.timezone} over this range: the zones' "
                            f"offsets differ by a fraction of a{'n' if step == 'hour' else ''} "
                            f"{step} (a finer rollup or the raw table is needed)")
    low, high = chosen
    middle_start = ceil_instant(low, grain, rollup_zone) if low is not None else None
    middle_end = floor_instant(high, grain, rollup_zone) if high is not None else None
    if middle_start is not None and middle_end is not None and middle_start >= middle_end:
        return "range_not_aligned", (f"no whole {grain} bucket ({source.timezone}) lies inside "
                                     "the range")
    edges: list[Interval] = []
    if middle_start is not None and (start is None or start < middle_start):
        edges.append((start, middle_start))
    if middle_end is not None and (end is None or middle_end < end):
        edges.append((middle_end, end))
    return Span((middle_start, middle_end), tuple(edges))


def _columns_read(source: CompiledSource, query: Query,
                  rollup: CompiledRollup) -> dict[str, float]:
    """The rollup columns a query reads (its dimensions, filters, bucket and partials), each
    with its cost per byte: plain values, or states to merge."""
    names = set(query.dimensions) | query.filter_members()
    columns = {c: PLAIN_BYTE_NS for c, d in rollup.dimensions if d.name in names}
    if rollup.bucket and (query.grain is not None or query.interval is not None):
        columns[rollup.bucket] = PLAIN_BYTE_NS
    keys = {k for m in (*query.measures, *query.having_members()) for k in source.components_of(m)}
    columns.update({c: p.kind.read_ns for c, p in rollup.components if p.key in keys})
    return columns


#: cost of a raw-table piece when the source's size is unknown: far above any rollup
UNKNOWN_RAW_BYTES = 10**15
#: the raw table replaces a rollup plan only when estimated cheaper by more than the cost
#: model's precision (about 20 %, and at least the engine's per-query floor, ~1 ms): closer
#: estimates are ties, which keep the rollup, so a query is not routed back and forth as
#: the raw table's parts merge
RAW_MARGIN = 0.8
RAW_MIN_SAVING_NS = 1_000_000.0
#: how many times the edges of a range may be cut again into finer rollups
EDGE_DEPTH = 3


def _raw_columns(source: CompiledSource, query: Query) -> dict[str, float]:
    """Source columns a raw-table piece reads, each with its cost per byte (the dearest
    aggregation that reads it)."""
    columns: dict[str, float] = {}

    def read(expression: exp.Expression, cost: float) -> None:
        for column in expression.find_all(exp.Column):
            columns[column.name] = max(cost, columns.get(column.name, 0.0))

    for name in set(query.dimensions) | query.filter_members():
        if name in source.dimensions:
            read(source.dimensions[name].expression, PLAIN_BYTE_NS)
    keys = {k for m in (*query.measures, *query.having_members()) for k in source.components_of(m)}
    for key in keys:
        component = source.components[key]
        if component.argument is not None:
            read(component.argument, component.kind.raw_ns)
        if component.condition is not None:
            read(component.condition, PLAIN_BYTE_NS)
    if source.time is not None and (query.grain is not None or query.interval is not None):
        columns.setdefault(source.time.name, PLAIN_BYTE_NS)
    return columns


def _work(stats: RollupStats, columns: Mapping[str, float], share: float) -> float:
    """Estimated engine time (ns) to read and group ``columns`` of ``share`` of a table:
    each part read has a fixed cost, each row read is grouped, each byte read costs its
    column's rate (the whole table at the plain rate when per-column sizes are unknown)."""
    if not any(stats.column_bytes.values()):
        size = stats.bytes * PLAIN_BYTE_NS
    else:
        size = sum(stats.column_bytes.get(column, 0) * cost for column, cost in columns.items())
    parts = max(1.0, stats.parts * share) if share > 0 else 0.0
    return parts * PART_NS + share * (stats.rows * GROUP_ROW_NS + size)


def _data_span(source: CompiledSource, ready: Mapping[str, RollupStats]) -> Interval | None:
    """When the data lies, from the time-grained rollups' first and last buckets."""
    stats = [ready[r.qualified_table] for r in source.rollups if r.qualified_table in ready]
    firsts = [s.first for s in stats if s.first is not None]
    ends = [s.end for s in stats if s.end is not None]
    return (min(firsts), max(ends)) if firsts and ends else None


def _fraction(interval: Interval, data: Interval | None) -> float:
    """The share of the data an interval covers (1 when unknown)."""
    if data is None or data[0] is None or data[1] is None:
        return 1.0
    low, high = _later(interval[0], data[0]), _earlier(interval[1], data[1])
    assert low is not None and high is not None
    whole = (data[1] - data[0]).total_seconds()
    if whole <= 0:
        return 1.0 if (interval[0] is None or interval[0] <= data[0]) and (
            interval[1] is None or data[0] < interval[1]) else 0.0
    return max(0.0, (high - low).total_seconds() / whole)


@dataclass(frozen=True, slots=True)
class _Costing:
    """What costing a plan needs: sizes, the data's time span, the query. ``weighted``
    prices estimated engine time (routing); otherwise bytes read (what ``explain`` shows)."""

    source: CompiledSource
    query: Query
    usable: tuple[tuple[CompiledRollup, RollupStats], ...]
    data: Interval | None
    raw: RollupStats | None
    weighted: bool = True

    def _share(self, rollup: CompiledRollup | None, interval: Interval) -> float:
        # Rollups are ordered by bucket first, so a range reads its share of the table; so
        # does the raw table when ordered (or partitioned) by time, else it is read whole.
        if rollup is None:
            return _fraction(interval, self.data) if self.raw_time_ordered else 1.0
        return _fraction(interval, self.data) if rollup.grain else 1.0

    def _rollup_at(self, rollup: CompiledRollup, stats: RollupStats, share: float) -> float:
        columns = _columns_read(self.source, self.query, rollup)
        if self.weighted:
            return _work(stats, columns, share)
        return stats.read_bytes(columns) * share

    def _raw_at(self, share: float) -> float:
        if self.raw is None:
            return UNKNOWN_RAW_BYTES * share
        columns = _raw_columns(self.source, self.query)
        if self.weighted:
            return _work(self.raw, columns, share)
        return self.raw.read_bytes(columns) * share

    def rollup_cost(self, rollup: CompiledRollup, stats: RollupStats,
                    interval: Interval) -> float:
        return self._rollup_at(rollup, stats, self._share(rollup, interval))

    @property
    def raw_time_ordered(self) -> bool:
        return self.raw.time_ordered if self.raw is not None else True

    def raw_cost(self, interval: Interval) -> float:
        return self._raw_at(self._share(None, interval))

    def priced(self, pieces: list[Piece]) -> float:
        """A whole plan's cost. The pieces of one table share one branch of the query (one
        read of its parts); the raw table's read it whole when the source is not ordered by
        time."""
        stats = dict(self.usable)
        shares: dict[str, float] = {}
        rollups = {}
        for piece in pieces:
            name = piece.rollup.name if piece.rollup else ""
            if piece.rollup is not None:
                rollups[name] = piece.rollup
            shares[name] = shares.get(name, 0.0) + self._share(piece.rollup,
                                                                (piece.start, piece.end))
        total = sum(self._rollup_at(rollup, stats[rollup], min(1.0, shares[name]))
                    for name, rollup in rollups.items())
        if "" in shares:
            total += self._raw_at(min(1.0, shares[""]))
        return total

    def option(self, rollup: CompiledRollup, stats: RollupStats, span: Span,
               depth: int) -> tuple[float, list[Piece]]:
        """Serve the span's middle from ``rollup`` and each edge the cheapest way."""
        cost = self.rollup_cost(rollup, stats, span.middle)
        pieces = [Piece(rollup, *span.middle)]
        for edge in span.edges:
            edge_cost, edge_pieces = self.cover(edge, depth - 1)
            cost += edge_cost
            pieces += edge_pieces
        return cost, pieces

    def cover(self, interval: Interval, depth: int) -> tuple[float, list[Piece]]:
        """The cheapest exact way to serve ``[start, end)``: raw, or a rollup and edges."""
        best = (self.raw_cost(interval), [Piece(None, *interval)])
        if depth <= 0:
            return best
        sub = replace(self.query, interval=interval)
        for rollup, stats in self.usable:
            span = _span(self.source, sub, rollup, self.data)
            if isinstance(span, Span):
                found = self.option(rollup, stats, span, depth)
                if found[0] < best[0]:
                    best = found
        return best


def choose_pieces(source: CompiledSource, query: Query,
                  ready: Mapping[str, RollupStats]) -> tuple[tuple[Piece, ...],
                                                             tuple[Candidate, ...]]:
    """Evaluate every rollup and return the cheapest exact way to answer, with the reasons.

    Each usable rollup serves the aligned middle of the range; its edges go, recursively, to
    the cheapest finer rollup or the raw table. Cost is estimated engine time: rows grouped
    plus bytes read, each column at its rate (merging a `uniq` state costs far more per byte
    than reading a count; see ``engine.dialect.clickhouse.PLAIN_BYTE_NS``), scaled by the share of
    the data's time span a piece covers; raw pieces price the raw table's columns alike. A
    plan estimated dearer than reading the raw table alone is never chosen.
    """
    candidates: list[Candidate] = []
    usable: list[tuple[CompiledRollup, RollupStats]] = []
    spans: dict[str, Span] = {}
    data = _data_span(source, ready)
    if data is None and query.interval is not None and None not in query.interval:
        data = query.interval  # sizes unknown: weigh pieces by the time they span
    for rollup in source.rollups:
        stats = ready.get(rollup.qualified_table)
        rejection = _static_reject(source, query, rollup)
        if rejection is None and stats is None:
            rejection = ("not_built", "the rollup table is not built yet; run `semantic apply`")
        span = _span(source, query, rollup, data) if rejection is None else None
        if span is not None and not isinstance(span, Span):
            rejection = span
        if rejection is not None or not isinstance(span, Span):
            assert rejection is not None
            candidates.append(Candidate(rollup.name, rollup.qualified_table, *rejection,
                                        stats.rows if stats else None,
                                        stats.bytes if stats else None))
            continue
        assert stats is not None
        usable.append((rollup, stats))
        spans[rollup.name] = span
    raw_stats = ready.get(source.source.table)
    costing = _Costing(source, query, tuple(usable), data, raw_stats)
    in_bytes = replace(costing, weighted=False)
    options: dict[str, tuple[float, list[Piece]]] = {}
    best: tuple[tuple[float, int, int], list[Piece]] | None = None
    for rollup, stats in usable:
        pieces = costing.option(rollup, stats, spans[rollup.name], EDGE_DEPTH)[1]
        options[rollup.name] = (costing.priced(pieces), pieces)
        key = (options[rollup.name][0], stats.rows, len(rollup.dimensions))
        if best is None or key < best[0]:
            best = (key, options[rollup.name][1])
    raw_only = [Piece(None, *(query.interval or (None, None)))]
    cheaper_raw = False
    if best is not None and raw_stats is not None:
        # a plan reading an unordered source reads all of it anyway: raw alone then wins
        # outright when cheaper; otherwise it must win by more than the model's precision
        whole = not raw_stats.time_ordered and any(p.rollup is None for p in best[1])
        raw_cost, plan_cost = costing.priced(raw_only), best[0][0]
        cheaper_raw = raw_cost < plan_cost if whole else (
            raw_cost < RAW_MARGIN * plan_cost and plan_cost - raw_cost > RAW_MIN_SAVING_NS)
    if cheaper_raw:  # never a plan estimated dearer than reading the raw table
        best = None
    chosen = max(best[1], key=lambda p: _fraction((p.start, p.end), data)).rollup \
        if best else None
    for rollup, stats in usable:
        detail = "can answer" if not spans[rollup.name].edges else \
            "can answer the aligned middle of the range; the edges come from elsewhere"
        if cheaper_raw:
            detail += ("; reading the raw table is estimated cheaper "
                       f"({costing.priced(raw_only) / 1e6:.3g} ms)")
        cost, pieces = options[rollup.name]
        candidates.append(Candidate(rollup.name, rollup.qualified_table, None, detail,
                                    stats.rows, stats.bytes, round(in_bytes.priced(pieces)),
                                    rollup is chosen, round(cost / 1e6, 3)))
    order = {r.name: i for i, r in enumerate(source.rollups)}
    candidates.sort(key=lambda c: order[c.rollup])
    if best is None:
        return (Piece(None, *(query.interval or (None, None))),), tuple(candidates)
    # The piece holding most of the data comes first: it names the answer's main table.
    pieces = sorted(best[1], key=lambda p: -_fraction((p.start, p.end), data))
    return tuple(pieces), tuple(candidates)


#: serving SQL rendered so far, by the query's shape: a query asked again with other values
#: (another date range, another region) is rendered once per shape, not once per query
RENDERED = RenderMemo()


def plan_query(source: CompiledSource, query: Query, ready: Mapping[str, RollupStats],
               force_raw: bool = False, now: datetime | None = None,
               memo: RenderMemo | None = RENDERED) -> Plan:
    """Plan a query: validate it, pick the tables, build the SQL.

    ``ready`` maps complete rollup tables (``db.table``) to their size; rollups missing from it
    are never used. It may also give the source table's size, which prices raw pieces.
    ``force_raw`` skips rollups (for comparisons and benchmarks). ``now`` anchors relative
    time ranges. ``memo`` holds the text of statements rendered before, by shape (None:
    render every time).
    """
    query = normalize_query(source, query, now)
    pieces, candidates = choose_pieces(source, query, {} if force_raw else ready)
    assert query.limit is not None
    fetch_limit = query.limit + 1  # one extra row tells the caller the answer was truncated
    builder = SqlBuilder(source, query)
    statement, parameters, columns = builder.build(pieces, fetch_limit)
    sql = render(statement) if memo is None else \
        memo.render(statement, builder.shape(pieces, fetch_limit), owner=source)
    instant_column = builder.time if builder.instant_output() else None
    rollup = pieces[0].rollup
    table = rollup.qualified_table if rollup else source.source.table
    return Plan(query, rollup, table, pieces, candidates, statement, sql, parameters, columns,
                source.source.table, instant_column)

