"""The cost model routing compares: estimated engine time to read and group the columns a plan
reads from each table, and the cheapest exact cover of a time range by rollups, finer edges
and the raw table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from sqlglot import exp

from engine.model.compiled import CompiledRollup, CompiledSource
from engine.model.memo import ShapeMemo
from engine.query.request import Interval, Query
from engine.serving.coverage import fraction, join_detail, rollup_span, static_reject
from engine.serving.plan import Piece, Rejection, RollupStats, Span

#: Routing's cost model, in estimated nanoseconds of engine time, measured on the embedded
#: engine with ``bench/calibrate_cost.py`` (2 cores; rounded, the ratios matter): reading a
#: plain column (keys, counts, sums, min/max) costs about 1.5 ns per uncompressed byte, and
#: grouping about 20 ns per row read, rollup rows and raw rows alike. Merging stored states
#: costs far more per byte than reading plain values (``read_ns`` of each aggregation's
#: components in ``engine.dialect``: uniq states ~20 ns/byte), and aggregating raw rows costs
#: ``raw_ns`` per argument byte.
PLAIN_BYTE_NS = 1.5
GROUP_ROW_NS = 20.0
#: each part read costs about 0.2 ms (GROUP BY over 1, 10 and 50 parts of a tiny table:
#: 1.5, 5.1 and 13.4 ms), which is why rollups are kept merged
PART_NS = 200_000.0


def columns_read(source: CompiledSource, query: Query,
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


def raw_columns(source: CompiledSource, query: Query) -> dict[str, float]:
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


def sizes(stats: RollupStats, columns: Mapping[str, float]) -> tuple[float, int]:
    """What reading ``columns`` of a whole table costs: its bytes, each at its column's rate
    (ns; the whole table at the plain rate when per-column sizes are unknown), and the bytes
    read."""
    if not any(stats.column_bytes.values()):
        return stats.bytes * PLAIN_BYTE_NS, stats.bytes
    return (sum(stats.column_bytes.get(column, 0) * cost for column, cost in columns.items()),
            stats.read_bytes(columns))


def work(stats: RollupStats, size: float, share: float) -> float:
    """Estimated engine time (ns) to read and group ``share`` of a table whose columns read
    cost ``size`` whole (``sizes``): each part read has a fixed cost, each row read is
    grouped, each byte read costs its column's rate."""
    parts = max(1.0, stats.parts * share) if share > 0 else 0.0
    return parts * PART_NS + share * (stats.rows * GROUP_ROW_NS + size)


@dataclass(frozen=True, slots=True)
class Reading:
    """What routing works out from a query's shape alone, whatever its range and values: why
    each rollup cannot answer it (None: it can, given a range it aligns with), the columns a
    plan reads from each rollup that can and from the raw table, each with its cost per
    byte."""

    rejections: tuple[Rejection | None, ...]
    columns: dict[str, dict[str, float]]
    raw: dict[str, float]
    #: how each rollup that can answer serves the query's joined dimensions (explain's text)
    joins: dict[str, str]
    #: by table (a rollup's name, "" the raw table): what reading the shape's columns of it
    #: whole costs (``sizes``), for the table's size it was worked out for; kept until the
    #: sizes are read again
    sizes: dict[str, tuple[RollupStats, float, float]] = field(
        default_factory=dict, compare=False, repr=False)


#: ``Reading``s by source and the query's shape
_READINGS: ShapeMemo[Reading] = ShapeMemo()


def reading(source: CompiledSource, query: Query) -> Reading:
    """The ``Reading`` of ``query``'s shape over ``source``'s rollups (in their order),
    remembered by shape: a query asked again with another range or other values routes
    without checking each rollup again."""
    shape = (query.measures, query.dimensions, query.grain, query.week_start,
             query.fiscal_year_start, frozenset(query.filter_members()),
             frozenset(query.security_members()), frozenset(query.having_members()),
             query.interval is not None)
    found = _READINGS.get(shape, source)
    if found is not None:
        return found
    rejections = tuple(static_reject(source, query, rollup) for rollup in source.rollups)
    usable = [rollup for rollup, rejection in zip(source.rollups, rejections, strict=True)
              if rejection is None]
    made = Reading(rejections, {r.name: columns_read(source, query, r) for r in usable},
                   raw_columns(source, query), {r.name: join_detail(source, query, r)
                                                for r in usable})
    _READINGS.put(shape, source, made)
    return made


@dataclass(frozen=True, slots=True)
class Costing:
    """What costing a plan needs: sizes, the data's time span, the query and its ``Reading``.
    Plans are priced in estimated engine time (routing) and in bytes read (what ``explain``
    shows), both at once (``prices``)."""

    source: CompiledSource
    query: Query
    usable: tuple[tuple[CompiledRollup, RollupStats], ...]
    data: Interval | None
    raw: RollupStats | None
    reading: Reading
    #: the sizes of the usable rollups by name (a compiled rollup hashes all it holds)
    _stats: dict[str, RollupStats] = field(default_factory=dict, init=False, compare=False,
                                           repr=False)

    def __post_init__(self) -> None:
        self._stats.update((rollup.name, stats) for rollup, stats in self.usable)

    def _share(self, rollup: CompiledRollup | None, interval: Interval) -> float:
        # Rollups are ordered by bucket first, so a range reads its share of the table; so
        # does the raw table when ordered (or partitioned) by time, else it is read whole.
        if rollup is None:
            return fraction(interval, self.data) if self.raw_time_ordered else 1.0
        return fraction(interval, self.data) if rollup.grain else 1.0

    def _at(self, name: str, share: float) -> tuple[float, float]:
        """Reading ``share`` of a table (a usable rollup's name, "" the raw table): estimated
        engine time, and bytes read."""
        stats = self._stats[name] if name else self.raw
        if stats is None:  # a raw table of unknown size: far above any rollup
            return UNKNOWN_RAW_BYTES * share, UNKNOWN_RAW_BYTES * share
        kept = self.reading.sizes.get(name)
        if kept is None or kept[0] is not stats:
            columns = self.reading.columns[name] if name else self.reading.raw
            kept = self.reading.sizes[name] = (stats, *sizes(stats, columns))
        return work(stats, kept[1], share), kept[2] * share

    def rollup_cost(self, rollup: CompiledRollup, interval: Interval) -> float:
        return self._at(rollup.name, self._share(rollup, interval))[0]

    @property
    def raw_time_ordered(self) -> bool:
        return self.raw.time_ordered if self.raw is not None else True

    def raw_cost(self, interval: Interval) -> float:
        return self._at("", self._share(None, interval))[0]

    def prices(self, pieces: list[Piece]) -> tuple[float, float]:
        """A whole plan's cost: estimated engine time (routing's), and bytes read (what
        ``explain`` shows). The pieces of one table share one branch of the query (one read
        of its parts); the raw table's read it whole when the source is not ordered by
        time."""
        shares: dict[str, float] = {}
        for piece in pieces:
            name = piece.rollup.name if piece.rollup else ""
            shares[name] = shares.get(name, 0.0) + self._share(piece.rollup,
                                                                (piece.start, piece.end))
        raw = shares.pop("", None)
        time = read = 0.0
        for name, share in shares.items():
            spent, bytes_read = self._at(name, min(1.0, share))
            time, read = time + spent, read + bytes_read
        if raw is not None:
            spent, bytes_read = self._at("", min(1.0, raw))
            time, read = time + spent, read + bytes_read
        return time, read

    def option(self, rollup: CompiledRollup, span: Span,
               depth: int) -> tuple[float, list[Piece]]:
        """Serve the span's middle from ``rollup`` and each edge the cheapest way."""
        cost = self.rollup_cost(rollup, span.middle)
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
        for rollup, _ in self.usable:
            span = rollup_span(self.source, sub, rollup, self.data)
            if isinstance(span, Span):
                found = self.option(rollup, span, depth)
                if found[0] < best[0]:
                    best = found
        return best
