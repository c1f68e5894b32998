"""What routing works out once per query shape (``engine.serving.costs.reading``): the same
as working it out for each query, whichever queries of other shapes were read before."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from engine.query.normalize import normalize_query
from engine.query.request import Filter, Query, QueryError, TimeRange
from engine.serving.costs import Reading, columns_read, raw_columns, reading
from engine.serving.coverage import join_detail, static_reject
from tests.engine.dialect.test_render import SOURCE, query_families, split_families
from tests.server.service.properties import NOW


def _fresh(query: Query) -> Reading:
    rejections = tuple(static_reject(SOURCE, query, rollup) for rollup in SOURCE.rollups)
    usable = [rollup for rollup, rejection in zip(SOURCE.rollups, rejections, strict=True)
              if rejection is None]
    return Reading(rejections, {r.name: columns_read(SOURCE, query, r) for r in usable},
                   raw_columns(SOURCE, query), {r.name: join_detail(SOURCE, query, r)
                                                for r in usable})


#: queries from a small space of shapes, so that many share all but one of what a reading
#: depends on (measures, dimensions, grain, filtered dimensions, measure conditions, the
#: caller's security condition, whether there is a range)
close_shapes = st.lists(st.builds(
    Query, st.just("events"), st.sampled_from((("total_events",), ("unique_users",))),
    st.sampled_from(((), ("region",))), st.sampled_from((None, "day")),
    filters=st.lists(st.sampled_from((Filter("region", "eq", ("a",)),
                                      Filter("user_id", "eq", ("u",)),
                                      Filter("total_events", "gt", (1,)),
                                      Filter("unique_users", "gt", (1,)))),
                     max_size=2).map(tuple),
    time_range=st.sampled_from((None, TimeRange("2024-01-05", "2024-02-01"))),
    security=st.sampled_from(((), (Filter("region", "in", ("a",)),),
                              (Filter("user_id", "in", ("u",)),)))), min_size=20, max_size=40)


@given(st.one_of(query_families().map(lambda case: [a.query for a in case[1]]),
                 split_families(), close_shapes))
def test_reading_remembered_by_shape_is_the_query_own(queries: list[Query]) -> None:
    # the memo is the module's, kept across examples: a shape it confuses with another one
    # read before would give that one's reading here
    for query in queries:
        try:
            normalized = normalize_query(SOURCE, query, NOW)
        except QueryError:
            continue
        assert reading(SOURCE, normalized) == _fresh(normalized)


def test_reading_tells_shapes_apart() -> None:
    base = normalize_query(SOURCE, Query("events", ("total_events",), ("region",), "day"), NOW)
    by_user = normalize_query(SOURCE, Query("events", ("total_events",), ("user_id",), "day"),
                              NOW)
    assert reading(SOURCE, base) == _fresh(base)
    assert reading(SOURCE, by_user) == _fresh(by_user) != _fresh(base)
    assert reading(SOURCE, base) is reading(SOURCE, base)  # remembered
