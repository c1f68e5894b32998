"""Routing: answer a query from the cheapest complete rollups that answer it exactly, else the
raw table, and build the serving SQL for the choice.

A query over a time range may be cut into *pieces*: the middle of the range that whole rollup
buckets cover, and the ragged edges, each from a finer rollup or the raw table. The pieces'
partial aggregates are merged in one query, so the answer is exact, never approximated.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import NamedTuple

from sqlglot import exp

from engine.dialect.render import RenderMemo, render
from engine.model.compiled import CompiledRollup, CompiledSource
from engine.query.normalize import normalize_query
from engine.query.request import Query, QueryError
from engine.serving.costs import (
    EDGE_DEPTH,
    RAW_MARGIN,
    RAW_MIN_SAVING_NS,
    Costing,
    reading,
)
from engine.serving.coverage import data_span, fraction, rollup_span
from engine.serving.plan import Candidate, Piece, Plan, RollupStats, Span
from engine.serving.reads import describe, is_windowed, window_reads
from engine.serving.sql import SqlBuilder
from engine.serving.windows import WindowedSqlBuilder


def choose_pieces(source: CompiledSource, query: Query,
                  ready: Mapping[str, RollupStats],
                  stale: Mapping[str, str] | None = None) -> tuple[tuple[Piece, ...],
                                                             tuple[Candidate, ...]]:
    """Evaluate every rollup and return the cheapest exact way to answer, with the reasons.

    Each usable rollup serves the aligned middle of the range; its edges go, recursively, to
    the cheapest finer rollup or the raw table. Cost is estimated engine time: rows grouped
    plus bytes read, each column at its rate (merging a `uniq` state costs far more per byte
    than reading a count; see ``engine.serving.costs.PLAIN_BYTE_NS``), scaled by the share of
    the data's time span a piece covers; raw pieces price the raw table's columns alike. A
    plan estimated dearer than reading the raw table alone is never chosen.
    """
    candidates: list[Candidate] = []
    usable: list[tuple[CompiledRollup, RollupStats]] = []
    spans: dict[str, Span] = {}
    data = data_span(source, ready)
    if data is None and query.interval is not None and None not in query.interval:
        data = query.interval  # sizes unknown: weigh pieces by the time they span
    found = reading(source, query)
    for rollup, rejection in zip(source.rollups, found.rejections, strict=True):
        stats = ready.get(rollup.qualified_table)
        if rejection is None and stale and rollup.qualified_table in stale:
            rejection = ("stale", stale[rollup.qualified_table])
        if rejection is None and stats is None:
            rejection = ("not_built", "the rollup table is not built yet; run `semantic apply`")
        span = rollup_span(source, query, rollup, data) if rejection is None else None
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
    costing = Costing(source, query, tuple(usable), data, raw_stats, found)
    options: dict[str, tuple[float, float, list[Piece]]] = {}
    best: tuple[tuple[float, int, int], list[Piece]] | None = None
    for rollup, stats in usable:
        pieces = costing.option(rollup, spans[rollup.name], EDGE_DEPTH)[1]
        cost, read = costing.prices(pieces)
        options[rollup.name] = (cost, read, pieces)
        key = (cost, stats.rows, len(rollup.dimensions))
        if best is None or key < best[0]:
            best = (key, pieces)
    raw_only = [Piece(None, *(query.interval or (None, None)))]
    cheaper_raw = False
    if best is not None and raw_stats is not None:
        # a plan reading an unordered source reads all of it anyway: raw alone then wins
        # outright when cheaper; otherwise it must win by more than the model's precision
        whole = not raw_stats.time_ordered and any(p.rollup is None for p in best[1])
        raw_cost, plan_cost = costing.prices(raw_only)[0], best[0][0]
        cheaper_raw = raw_cost < plan_cost if whole else (
            raw_cost < RAW_MARGIN * plan_cost and plan_cost - raw_cost > RAW_MIN_SAVING_NS)
    if cheaper_raw:  # never a plan estimated dearer than reading the raw table
        best = None
    # The piece holding most of the data comes first: it names the answer's main table.
    ordered = None if best is None else best[1] if len(best[1]) == 1 else \
        sorted(best[1], key=lambda p: -fraction((p.start, p.end), data))
    chosen = ordered[0].rollup if ordered else None
    for rollup, stats in usable:
        detail = "can answer" if not spans[rollup.name].edges else \
            "can answer the aligned middle of the range; the edges come from elsewhere"
        detail += found.joins[rollup.name]
        if cheaper_raw:
            detail += f"; reading the raw table is estimated cheaper ({raw_cost / 1e6:.3g} ms)"
        cost, read, pieces = options[rollup.name]
        candidates.append(Candidate(rollup.name, rollup.qualified_table, None, detail,
                                    stats.rows, stats.bytes, round(read), rollup is chosen,
                                    round(cost / 1e6, 3)))
    order = {r.name: i for i, r in enumerate(source.rollups)}
    candidates.sort(key=lambda c: order[c.rollup])
    if ordered is None:
        return (Piece(None, *(query.interval or (None, None))),), tuple(candidates)
    return tuple(ordered), tuple(candidates)


#: serving SQL rendered so far, by the query's shape: a query asked again with other values
#: (another date range, another region) is rendered once per shape, not once per query
RENDERED = RenderMemo()


def plan_query(source: CompiledSource, query: Query, ready: Mapping[str, RollupStats],
               now: datetime | None = None,
               memo: RenderMemo | None = RENDERED, normalized: bool = False,
               stale: Mapping[str, str] | None = None) -> Plan:
    """Plan a query: validate it, pick the tables, build the SQL.

    ``ready`` maps complete rollup tables (``db.table``) to their size; rollups missing from it
    are never used. It may also give the source table's size, which prices raw pieces.
    ``query.force_raw`` skips rollups (for comparisons and benchmarks). ``now`` anchors relative
    time ranges. ``stale`` names rollups not to use and why (they store attributes of a
    dimension table that changed since they were built). ``memo`` holds the text of
    statements rendered before, by shape (None: render every time). ``normalized``: the
    query is ``normalize_query``'s answer already (the runtime normalizes once, for its plan
    cache's key).
    """
    if not normalized:
        query = normalize_query(source, query, now)
    assert query.limit is not None
    fetch_limit = query.limit + 1  # one extra row tells the caller the answer was truncated
    if is_windowed(source, query):
        return _plan_windowed(source, query, {} if query.force_raw else ready, memo, stale,
                              fetch_limit)
    pieces, candidates = choose_pieces(source, query, {} if query.force_raw else ready, stale)
    builder = SqlBuilder(source, query)
    held = held_rows(source, query, pieces, ready)
    limit = None if held is not None and held < fetch_limit else fetch_limit  # cuts nothing
    shape = builder.shape(pieces, limit) if memo is not None else None
    known = memo.get(shape, source) if memo is not None else None
    if known is not None and isinstance(known[1], _Built):
        # a shape built before: the same statement and text, only the values are new
        sql, (statement, columns, joins) = known[0], known[1]
        parameters = builder.values(pieces)
    else:
        statement, parameters, columns = builder.build(pieces, limit)
        joins = builder.joins
        sql = render(statement) if memo is None else \
            memo.render(statement, shape, owner=source, keep=_Built(statement, columns, joins))
    instant_column = builder.time if builder.instant_output() else None
    rollup = pieces[0].rollup
    table = rollup.qualified_table if rollup else source.source.table
    return Plan(query, rollup, table, pieces, candidates, statement, sql, parameters, columns,
                source.source.table, instant_column, joins)


def held_rows(source: CompiledSource, query: Query, pieces: tuple[Piece, ...],
              ready: Mapping[str, RollupStats]) -> int | None:
    """The most rows the answer to ``query`` read from ``pieces`` can have, from the sizes of
    the rollups they read: each answer row groups stored rows, so there are no more than the
    rollups hold. None when no bound is known: a piece reads the raw table, the answer is
    filled or paged, it groups or filters through a join (which may repeat rows), or a
    rollup's size is not its whole size (on a cluster, one node's share) or was read empty
    (it may have been filled since).

    A LIMIT is then left out when it could cut nothing (the answer is cut to the limit after
    reading, as before): ClickHouse plans a step less, about 0.03 ms of a 2 ms query. Sizes
    are those of the last refresh: a rollup grown since gives the same answer, read whole."""
    if query.fill is not None or query.offset or any(p.rollup is None for p in pieces):
        return None
    members = (*query.dimensions, *query.filter_members())
    if any(source.dimensions[name].path for name in members if name in source.dimensions):
        return None
    total = 0
    for rollup in {piece.rollup.qualified_table: piece.rollup for piece in pieces
                   if piece.rollup}.values():
        stats = ready.get(rollup.qualified_table)
        if stats is None or not stats.rows or rollup.cluster is not None:
            return None
        total += stats.rows
    return total


class _Built(NamedTuple):
    """What a plan of a shape keeps besides its text, for the next query of the shape: the
    statement (its values are placeholders), the answer's columns and whether it joins."""

    statement: exp.Select
    columns: tuple[str, ...]
    joins: bool


def _plan_windowed(source: CompiledSource, query: Query, ready: Mapping[str, RollupStats],
                   memo: RenderMemo | None, stale: Mapping[str, str] | None,
                   fetch_limit: int) -> Plan:
    """A query with time functions or a comparison: each range it reads (the answer's and
    its lookback) routed like any query, combined by ``engine.serving.windows``."""
    try:
        reads = window_reads(source, query)
    except ValueError as exc:  # a lookback past year 1
        raise QueryError("time_range", str(exc)) from None
    routed = []
    candidates: tuple[Candidate, ...] = ()
    for read in reads:
        pieces, found = choose_pieces(source, read.query, ready, stale)
        routed.append((read, pieces))
        candidates = candidates or found
    builder = WindowedSqlBuilder(source, query)
    chosen = tuple(routed)
    statement, parameters, columns = builder.build_windowed(chosen, fetch_limit)
    sql = render(statement) if memo is None else \
        memo.render(statement, builder.windowed_shape(chosen, fetch_limit), owner=source)
    instant_column = builder.time if builder.instant_output() else None
    pieces = tuple(p for _, read_pieces in routed for p in read_pieces)
    rollup = pieces[0].rollup
    table = rollup.qualified_table if rollup else source.source.table
    return Plan(query, rollup, table, pieces, candidates, statement, sql, parameters, columns,
                source.source.table, instant_column, builder.joins,
                tuple((read.to_dict(), read_pieces) for read, read_pieces in routed),
                describe(source, query), builder.changes)
