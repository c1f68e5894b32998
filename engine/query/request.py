"""The query a client asks: measures by dimensions at a grain, over a time range in a time zone,
filtered (WHERE on dimensions, HAVING on measures), ordered and paged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from engine.time.ranges import Calendar
from semantic.errors import FieldError

DEFAULT_LIMIT = 10_000
FILLS: tuple[str, ...] = ("zero", "null")
MAX_LIMIT = 100_000
#: the engine's own bound (ClickHouse reads OFFSET as UInt64); the server's setting is lower
MAX_OFFSET = 10**15


class QueryError(FieldError):
    """The query is invalid; ``field`` names the offending part of the request."""

    code = "invalid_query"


@dataclass(frozen=True, slots=True)
class Filter:
    """``member op values``: a dimension condition (WHERE) or a measure condition (HAVING)."""

    member: str
    op: str
    values: tuple[object, ...] = ()


@dataclass(frozen=True, slots=True)
class FilterGroup:
    """``and`` / ``or`` over nested filters."""

    op: str
    items: tuple[Filter | FilterGroup, ...]


FilterNode = Filter | FilterGroup


@dataclass(frozen=True, slots=True)
class Order:
    member: str
    descending: bool = False
    #: NULLs first (True), or None: last, ClickHouse's default in either direction
    nulls_first: bool | None = None


@dataclass(frozen=True, slots=True)
class TimeRange:
    """``[start, end)`` as written (absolute, either side open) or a relative form."""

    start: str | None = None
    end: str | None = None
    relative: str | None = None


#: a resolved time range: UTC instants, None for an open side
Interval = tuple[datetime | None, datetime | None]


@dataclass(frozen=True, slots=True)
class Query:
    source: str
    measures: tuple[str, ...]
    dimensions: tuple[str, ...] = ()
    grain: str | None = None
    filters: tuple[FilterNode, ...] = ()
    order: tuple[Order, ...] = ()
    limit: int | None = None
    offset: int = 0
    time_range: TimeRange | None = None
    timezone: str | None = None
    #: set by ``normalize_query``: measure conditions split from ``filters``
    having: tuple[FilterNode, ...] = ()
    #: set by ``normalize_query``: the resolved time range
    interval: Interval | None = None
    #: row-level security conditions of the caller (``engine.query.security.secure_query``); they
    #: hold like ``filters`` and routing reports rollups lacking them apart
    security: tuple[Filter, ...] = ()
    #: skip the rollups and read the raw table (for comparisons)
    force_raw: bool = False
    #: the answer's format as the request names it (json, csv, parquet, arrow); cleared by
    #: ``normalize_query``, so every format of a query shares its plan and cached answer
    format: str | None = None
    #: ``zero`` or ``null``: every bucket of the time range at the grain, for each group of
    #: the other dimensions (counts and sums 0 with ``zero``, every other measure null)
    fill: str | None = None
    #: how far back ``m__compare`` columns look: ``N unit`` or ``previous_period`` as asked,
    #: ``N unit`` once normalized
    compare: str | None = None
    #: the calendar's overrides (``WEEKDAYS`` and ``MONTH_NAMES`` names); set from the source's
    #: by ``normalize_query``
    week_start: str | None = None
    fiscal_year_start: str | None = None

    @property
    def calendar(self) -> Calendar:
        """Where the query's weeks and fiscal years start (ISO and January until normalized)."""
        return Calendar.named(self.week_start or "monday", self.fiscal_year_start or "january")

    def filter_members(self) -> set[str]:
        """Dimensions the WHERE clause reads: the filters' and the security conditions'."""
        return filter_tree_members(self.filters) | {item.member for item in self.security}

    def security_members(self) -> set[str]:
        return {item.member for item in self.security}

    def having_members(self) -> set[str]:
        return filter_tree_members(self.having)


def filter_tree_members(nodes: tuple[FilterNode, ...]) -> set[str]:
    """The members a tree of filters names."""
    found: set[str] = set()
    for node in nodes:
        found |= {node.member} if isinstance(node, Filter) else filter_tree_members(node.items)
    return found
