"""A query of a shape normalized before only has its range resolved
(``engine.query.normalize``): the same query, or the same error, as normalizing it afresh,
whichever queries of this or other shapes came before."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.query import normalize
from engine.query.normalize import _normalized, normalize_query
from engine.query.request import Filter, Query, QueryError, TimeRange
from semantic.model import GRAINS
from tests.engine.dialect.test_render import MEMBERS, SOURCE, query_families
from tests.server.service.properties import NOW, ZONES, time_ranges

#: ranges as callers send them, good and bad: open, relative, unordered, not instants
ranges = st.one_of(
    time_ranges(), st.none(),
    st.sampled_from((TimeRange("2024-02-10", "2024-01-05"), TimeRange("2024-01-05", "2024-01-05"),
                     TimeRange("yesterday-ish", None), TimeRange(None, None),
                     TimeRange(relative="last fortnight"),
                     TimeRange("2024-01-05T00:00:00+05:30", "9999-12-31"))))


@st.composite
def range_families(draw: st.DrawFn) -> list[Query]:
    """Queries of a shape and of shapes differing from it in one detail (zone, grain, a
    measure, week start, fill, limit), each asked over many ranges; time functions among
    the measures widen a range to whole buckets, a fill needs both its ends."""
    base = Query("events", tuple(draw(st.lists(st.sampled_from(MEMBERS), min_size=1,
                                               max_size=2, unique=True))),
                 grain=draw(st.none() | st.sampled_from(GRAINS)),
                 timezone=draw(st.none() | st.sampled_from(ZONES)))
    shapes = [base, replace(base, timezone=draw(st.sampled_from(ZONES))),
              replace(base, grain=draw(st.sampled_from(GRAINS))),
              replace(base, measures=(draw(st.sampled_from(MEMBERS)),)),
              replace(base, week_start="sunday", grain="week"),
              replace(base, grain=base.grain or "day", fill="zero"),
              replace(base, limit=draw(st.sampled_from((1, 7))))]
    return [replace(draw(st.sampled_from(shapes)), time_range=draw(ranges))
            for _ in range(draw(st.integers(2, 16)))]


@settings(max_examples=8 * settings().max_examples)  # cheap: no database
@given(st.one_of(query_families().map(lambda case: [a.query for a in case[1]]),
                 range_families()))
def test_query_of_a_shape_seen_before_normalized_as_afresh(queries: list[Query]) -> None:
    # the memo is the module's, kept across examples: a shape it confused with another one
    # would give that one's normalized query here
    for query in queries:
        try:
            fresh = _normalized(SOURCE, query, NOW)[0]
        except QueryError as error:
            with pytest.raises(QueryError) as raised:
                normalize_query(SOURCE, query, NOW)
            assert (raised.value.field, raised.value.message) == (error.field, error.message)
            continue
        assert normalize_query(SOURCE, query, NOW) == fresh


def _counted(monkeypatch: pytest.MonkeyPatch) -> list[Query]:
    """The queries normalized whole from now on."""
    whole: list[Query] = []

    def counting(source: object, query: Query, now: object) -> object:
        whole.append(query)
        return _normalized(source, query, now)  # type: ignore[arg-type]

    monkeypatch.setattr(normalize, "_normalized", counting)
    return whole


def test_shape_seen_before_resolves_only_its_range(monkeypatch: pytest.MonkeyPatch) -> None:
    whole = _counted(monkeypatch)
    query = Query("events", ("events_7d",), grain="day", timezone="Europe/Berlin",
                  filters=(Filter("region", "in", ("eu-central", "us-east")),),
                  time_range=TimeRange("2024-01-05T10:00:00", "2024-01-09"))
    first = normalize_query(SOURCE, query)
    moved = normalize_query(SOURCE, replace(query, time_range=TimeRange("2024-03-01T10:00:00",
                                                                        "2024-03-03")))
    assert moved == replace(first, interval=moved.interval) != first
    assert moved.interval == _normalized(SOURCE, replace(
        query, time_range=TimeRange("2024-03-01T10:00:00", "2024-03-03")), None)[0].interval
    with pytest.raises(QueryError) as raised:  # a bad range is still refused, and named
        normalize_query(SOURCE, replace(query, time_range=TimeRange("2024-03-03", "2024-03-01")))
    assert raised.value.field == "time_range.to"
    assert whole == [query]  # the other ranges only had their range resolved


def test_conditions_of_other_values_than_text_and_integers_normalized_whole(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Equal values of other types may read differently (``1`` and ``1.0`` against a decimal
    column, ``0.0`` and ``-0.0``): a query holding one is never taken for one seen before."""
    whole = _counted(monkeypatch)
    for value in (2.5, 2.5, -0.0, -0.0, 2, 2):
        normalize_query(SOURCE, Query("events", ("total_events",), ("region",), filters=(
            Filter("total_events", "gt", (value,)),), time_range=TimeRange("2024-01-05", None)))
    assert [f.values[0] for q in whole for f in q.filters if isinstance(f, Filter)] == [
        2.5, 2.5, -0.0, -0.0, 2]
