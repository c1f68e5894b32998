"""Facts about IANA time zones: offsets over time, and where two zones bucket alike.

A rollup bucketed in zone R at some grain can serve a query whose buckets are in zone Z only
while the two zones' offsets differ by a whole number of the rollup's bucket unit, and only if
every offset change inside that stretch falls on a rollup bucket boundary. ``aligned_runs``
computes those stretches from ``offset_segments``.
"""

from __future__ import annotations

import bisect
import difflib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

from semantic.suggest import shown

# Transitions are searched for between these instants (1800-01-01 and 2200-01-01, UTC).
SCAN_START = int(datetime(1800, 1, 1, tzinfo=UTC).timestamp())
SCAN_END = int(datetime(2200, 1, 1, tzinfo=UTC).timestamp())
# One sample a day finds every transition that is not undone within the same day;
# a zone takes about 0.1 s to scan, once per process.
SCAN_STEP = 86_400


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch ``[start, end)`` of epoch seconds with one UTC offset (seconds east of UTC).

    ``start`` None means since forever, ``end`` None means forever after.
    """

    start: int | None
    end: int | None
    offset: int


def zone(name: str) -> ZoneInfo:
    """The IANA zone called ``name``; ValueError if there is none.

    >>> zone("Europe/Berlin").key
    'Europe/Berlin'
    """
    try:
        if len(name) <= 64 and "\0" not in name:  # no zone name is longer
            return ZoneInfo(name)
    except (ValueError, OSError, LookupError, UnicodeError):
        pass
    close = difflib.get_close_matches(name, _zone_names(), n=1) if len(name) <= 64 else []
    hint = f"did you mean '{close[0]}'?" if close else "use an IANA name such as 'Europe/Berlin'"
    raise ValueError(f"unknown time zone '{shown(name)}'; {hint}")


@lru_cache(maxsize=1)
def _zone_names() -> tuple[str, ...]:
    return tuple(sorted(available_timezones()))


def _offset(tz: ZoneInfo, t: int) -> int:
    delta = datetime.fromtimestamp(t, tz).utcoffset()
    assert delta is not None  # a ZoneInfo always knows its offset
    return int(delta.total_seconds())


@lru_cache(maxsize=128)
def offset_segments(name: str) -> tuple[Segment, ...]:
    """The UTC offset of zone ``name`` over time, as contiguous segments.

    Transitions are found by sampling the offset once a day from 1800 to 2200 and bisecting to
    the second where two samples differ. Before 1800 the first offset holds; after 2200 the
    offset of 1 January 2200 holds, so daylight saving time after 2200 is not represented.

    >>> offset_segments("UTC")
    (Segment(start=None, end=None, offset=0),)
    >>> [s.offset for s in offset_segments("Europe/Berlin")[:2]]
    [3208, 3600]
    """
    tz = zone(name)
    changes: list[tuple[int, int]] = []  # (instant, offset from then on)
    first = current = _offset(tz, SCAN_START)
    previous_t = SCAN_START
    for t in range(SCAN_START + SCAN_STEP, SCAN_END + SCAN_STEP, SCAN_STEP):
        sample = _offset(tz, t)
        # Several changes may hide between two samples: walk them one by one.
        while sample != current:
            lo, hi = previous_t, t
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if _offset(tz, mid) == current:
                    lo = mid
                else:
                    hi = mid
            current = _offset(tz, hi)
            changes.append((hi, current))
            previous_t = hi
        previous_t = t
    starts: list[int | None] = [None, *(t for t, _ in changes)]
    ends: list[int | None] = [*(t for t, _ in changes), None]
    offsets = [first, *(o for _, o in changes)]
    return tuple(Segment(s, e, o) for s, e, o in zip(starts, ends, offsets, strict=True))


def _offset_at(segments: tuple[Segment, ...], t: int) -> int:
    i = bisect.bisect_right(segments, t, lo=1, key=lambda s: s.start if s.start is not None else 0)
    return segments[i - 1].offset


def aligned_runs(
    query_zone: str,
    rollup_zone: str,
    unit: int | None,
    boundary: Callable[[int], bool],
) -> tuple[tuple[int | None, int | None], ...]:
    """The maximal intervals ``[start, end)`` (epoch seconds, None = unbounded) in which a rollup
    bucketed in ``rollup_zone`` can serve buckets in ``query_zone``.

    Inside a run the offset difference (query minus rollup) is a multiple of ``unit`` seconds,
    or exactly 0 when ``unit`` is None (day and coarser rollups), and every instant where
    either zone's offset changes satisfies ``boundary`` ("is a rollup bucket boundary"); an
    instant that does not splits the run in two there.

    >>> aligned_runs("UTC", "Etc/GMT-2", 3600, lambda t: t % 3600 == 0)
    ((None, None),)
    >>> aligned_runs("UTC", "Etc/GMT-2", None, lambda t: True)
    ()
    """
    zone(query_zone)
    zone(rollup_zone)
    if query_zone == rollup_zone:
        return ((None, None),)
    query, rollup = offset_segments(query_zone), offset_segments(rollup_zone)
    points = sorted({s.start for s in (*query, *rollup) if s.start is not None})
    edges: list[int | None] = [None, *points, None]
    runs: list[tuple[int | None, int | None]] = []
    run_start: int | None = None
    in_run = False
    for lo, hi in zip(edges, edges[1:], strict=False):
        probe = lo if lo is not None else (hi - 1 if hi is not None else 0)
        diff = _offset_at(query, probe) - _offset_at(rollup, probe)
        aligned = diff == 0 if unit is None else diff % unit == 0
        if not aligned:
            if in_run:
                runs.append((run_start, lo))
                in_run = False
        elif not in_run:
            run_start, in_run = lo, True
        elif lo is not None and not boundary(lo):
            runs.append((run_start, lo))
            run_start = lo
    if in_run:
        # Offsets after 2200 are not scanned: a zone still changing offset then (daylight
        # saving) breaks "offsets equal" every summer, so such a run ends at the scan's end.
        # Whole-hour differences (``unit``) survive the same yearly rule.
        recent = SCAN_END - 2 * 366 * 86_400
        changing = any(s.start is not None and s.start >= recent for s in (*query, *rollup))
        runs.append((run_start, SCAN_END if unit is None and changing else None))
    return tuple(runs)
