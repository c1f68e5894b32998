"""What a query with time functions or a comparison reads: the measures its values are made
of, the earliest bucket any window, offset or comparison looks back to, and for a comparison
without a grain the range moved back."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from zoneinfo import ZoneInfo

from engine.model.compiled import CompiledSource
from engine.query.request import Interval, Query
from engine.serving.changes import changes
from engine.time.ranges import Calendar, add_grains, floor_instant
from engine.time.shifts import move_back, window_buckets
from semantic.model import TimeFunction, parse_duration


def is_windowed(source: CompiledSource, query: Query) -> bool:
    """Whether a query computes a time function or a comparison (this module answers it)."""
    return query.compare is not None or any(
        source.windowed(name) for name in (*query.measures, *query.having_members()))


@dataclass(frozen=True, slots=True)
class Read:
    """A range the answer reads, and why: the answer's buckets and the lookback of its windows
    and offsets (``answer``), or for a comparison without a grain the moved range
    (``compare``). ``query`` is what routing chooses its pieces for."""

    purpose: str
    interval: Interval
    query: Query

    def to_dict(self) -> dict[str, object]:
        start, end = self.interval
        return {"purpose": self.purpose, "from": start.isoformat() if start else None,
                "to": end.isoformat() if end else None}


def atoms(source: CompiledSource, query: Query) -> list[str]:
    """The measures and time functions the answer's measures and conditions are made of."""
    found: list[str] = []
    for name in (*query.measures, *sorted(query.having_members())):
        found += [atom for atom in source.atoms(name) if atom not in found]
    return found


def time_function(source: CompiledSource, atom: str) -> TimeFunction | None:
    metric = source.metrics.get(atom)
    return metric.time if metric is not None else None


def base_measure(source: CompiledSource, atom: str) -> str:
    """The measure an atom aggregates."""
    function = time_function(source, atom)
    return function.measure.name if function is not None else atom


def _lookback(source: CompiledSource, atom: str, start: datetime, grain: str,
              zone: ZoneInfo, query_calendar: Calendar) -> datetime | None:
    """Where the rows of ``atom`` at the bucket starting at ``start`` begin (None: the
    beginning)."""
    function = time_function(source, atom)
    if function is None:
        return start
    if function.window is not None:
        return add_grains(start, grain, 1 - window_buckets(function.window, grain), zone)
    if function.period is not None:
        return floor_instant(start, function.period, zone, query_calendar)
    if function.by is not None:
        return move_back(start, function.by, zone)
    return None  # cumulative


def window_reads(source: CompiledSource, query: Query) -> tuple[Read, ...]:
    """The ranges a windowed query reads: one, from the earliest bucket any window, offset or
    comparison looks back to, to the range's end; without a grain, the range and the range
    moved back. Raises ``ValueError`` if a lookback leaves the years 1 to 9999."""
    zone = ZoneInfo(query.timezone or source.timezone)
    made_of = atoms(source, query)
    measures = tuple(dict.fromkeys(base_measure(source, atom) for atom in made_of))
    plain = replace(query, measures=measures, having=(), order=(), fill=None, compare=None,
                    offset=0)
    start, end = query.interval or (None, None)
    if query.grain is None:
        assert query.compare is not None and start is not None and end is not None
        by = parse_duration(query.compare)
        moved = (move_back(start, by, zone), move_back(end, by, zone))
        return (Read("answer", (start, end), replace(plain, interval=(start, end))),
                Read("compare", moved, replace(plain, interval=moved)))
    starts: list[datetime | None] = []
    if start is not None:
        origins = [start] + ([move_back(start, parse_duration(query.compare), zone)]
                             if query.compare else [])
        starts = [_lookback(source, atom, origin, query.grain, zone, query.calendar)
                  for origin in origins for atom in made_of]
    first = None if start is None or None in starts else min(s for s in starts if s)
    return (Read("answer", (first, end), replace(plain, interval=(first, end))),)


def describe(source: CompiledSource, query: Query) -> tuple[dict[str, object], ...]:
    """What each time function of the answer and its comparison compute (for explain)."""
    said: list[dict[str, object]] = []
    for atom in atoms(source, query):
        function = time_function(source, atom)
        if function is None:
            continue
        said.append({"member": atom, "function": function.kind,
                     "measure": function.measure.name,
                     "window": str(function.window) if function.window else None,
                     "period": function.period,
                     "by": str(function.by) if function.by else None,
                     "detail": function.describe()})
    if query.compare is not None:
        ordered_by = {sort.member for sort in query.order}
        in_sql = [c.column for c in changes(query.measures) if c.column in ordered_by]
        said.append({"member": None, "function": "compare", "measure": None, "window": None,
                     "period": None, "by": query.compare,
                     "detail": (f"each measure also at the bucket {query.compare} earlier"
                                if query.grain else f"each measure also over the range "
                                f"{query.compare} earlier") + "; the changes are computed "
                     "from the answer's rows" + (f" ({', '.join(in_sql)} in SQL, for the "
                                                 "order)" if in_sql else "")})
    return tuple(said)
