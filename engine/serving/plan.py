"""What planning a query produces: the plan (its pieces, SQL and the verdict on every rollup
considered), and the sizes of the tables it chooses between."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlglot import exp

from engine.dialect.render import Rendered
from engine.model.compiled import CompiledRollup
from engine.query.request import Interval, Query
from engine.serving.changes import Change


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

    Reasons: ``not_built``, ``stale``, ``missing_dimension``, ``security_filter_not_covered``,
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
    #: whether the statement joins dimension tables (their hash tables build in parallel)
    joins: bool = False
    #: a query with time functions or a comparison: the ranges it reads, why, and the
    #: pieces of each (``pieces`` holds them all)
    reads: tuple[tuple[dict[str, object], tuple[Piece, ...]], ...] = ()
    #: what each time function and the comparison compute (``windows.describe``)
    windows: tuple[dict[str, object], ...] = ()
    #: columns computed from the statement's rows rather than by it (a comparison's changes,
    #: ``engine.serving.changes``); the statement selects the other ``columns``, in order
    changes: tuple[Change, ...] = ()

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
