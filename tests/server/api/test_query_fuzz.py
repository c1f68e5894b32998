"""Fuzzing the query API and the generated endpoints through the real app on the embedded
engine: nested groups, huge and odd numbers, extreme dates and zones, many filters, unknown
members, wrong types. No request may answer 5xx; every 4xx has the one error shape."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import available_timezones

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from semantic.model import GRAINS
from tests.server.conftest import Served
from tests.support import assert_error

MEASURES = ["events", "revenue", "users"]
DIMENSIONS = ["region", "plan", "level", "price", "day", "id"]  # not 'trap', which throws
OPS = ["eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "contains", "starts_with",
       "ilike", "not_ilike", "is_null", "is_not_null"]
ZONES = sorted(available_timezones())

junk = st.text(max_size=12)
numbers = st.one_of(
    st.integers(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([0, -1, 255, 256, 2**63,
                                                                        10**20, 1e308, -0.0]))
instants = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59)).map(
        lambda t: t.isoformat(timespec="minutes")),
    st.sampled_from(["0001-01-01T00:30", "0001-01-02", "1969-12-31T23:00Z", "1970-01-01",
                     "2106-02-07T06:28:15", "2105-12-31T23:30+14:00", "9999-12-31T23:59",
                     "2026-01-01", "2026-13-01", "2026-01-01T25:00", "yesterday"]),
    junk)
values = st.one_of(junk, numbers, st.none(), st.booleans(), instants,
                   st.lists(st.one_of(junk, numbers), max_size=4))
members = st.one_of(st.sampled_from(MEASURES + DIMENSIONS + ["ts", "trap"]), junk)
leaf = st.fixed_dictionaries(
    {"member": members},
    optional={"op": st.one_of(st.sampled_from(OPS), junk), "value": values, "values": values})
filters = st.recursive(
    leaf, lambda children: st.dictionaries(st.sampled_from(["and", "or"]),
                                           st.lists(children, max_size=4), min_size=1,
                                           max_size=1),
    max_leaves=12)
order = st.one_of(members, members.map(lambda m: f"-{m}"),
                  st.fixed_dictionaries({"member": members},
                                        optional={"direction": st.one_of(
                                            st.sampled_from(["asc", "desc"]), junk)}))
bodies = st.fixed_dictionaries({}, optional={
    "measures": st.lists(st.one_of(st.sampled_from(MEASURES), junk), max_size=4),
    "dimensions": st.lists(st.one_of(st.sampled_from(DIMENSIONS + ["ts"]), junk), max_size=3),
    "grain": st.one_of(st.sampled_from(GRAINS), junk, st.none()),
    "filters": st.one_of(st.lists(filters, max_size=5),
                         st.lists(leaf, min_size=150, max_size=260), values),
    "time_range": st.one_of(
        st.fixed_dictionaries({}, optional={"from": st.one_of(instants, st.none()),
                                            "to": st.one_of(instants, st.none())}),
        st.sampled_from(["today", "last 7 days", "this year", "last 100000 years"]), junk,
        numbers),
    "timezone": st.one_of(st.sampled_from(ZONES), junk, st.none()),
    "order": st.lists(order, max_size=4),
    "limit": st.one_of(numbers, st.none(), junk),
    "offset": st.one_of(numbers, junk),
    "source": st.one_of(st.just("events"), junk, st.none()),
    "force_raw": st.one_of(st.booleans(), numbers),
    "extra": values,
})
#: well-formed queries, so that most reach the planner and the engine: type-correct values,
#: extreme ranges and zones, nesting, many filters (values outside their types are above)
typed_leaf = st.one_of(
    st.fixed_dictionaries({"member": st.sampled_from(["region", "plan"]),
                           "op": st.sampled_from(["eq", "ne", "contains", "starts_with"]),
                           "value": st.text(max_size=20)}),
    st.fixed_dictionaries({"member": st.sampled_from(["region", "plan"]),
                           "op": st.sampled_from(["in", "not_in"]),
                           "value": st.lists(st.text(max_size=8), min_size=1, max_size=5)}),
    st.fixed_dictionaries({"member": st.just("level"), "op": st.sampled_from(OPS[:8]),
                           "value": st.integers(min_value=0, max_value=255)}),
    st.fixed_dictionaries({"member": st.sampled_from(["price", "events", "revenue"]),
                           "op": st.sampled_from(["gt", "lte", "ne"]), "value": numbers}),
    st.fixed_dictionaries({"member": st.just("day"), "op": st.sampled_from(["eq", "gte"]),
                           "value": st.dates(min_value=date(1970, 1, 1),
                                             max_value=date(2148, 12, 31)).map(str)}),
    st.fixed_dictionaries({"member": st.sampled_from(DIMENSIONS),
                           "op": st.sampled_from(["is_null", "is_not_null"])}),
)
typed_filters = st.recursive(
    typed_leaf, lambda children: st.dictionaries(st.sampled_from(["and", "or"]),
                                                 st.lists(children, min_size=1, max_size=3),
                                                 min_size=1, max_size=1),
    max_leaves=10)
edges = st.one_of(
    st.datetimes(min_value=datetime(2025, 12, 1), max_value=datetime(2026, 3, 1)),
    st.datetimes(min_value=datetime(1969, 12, 30), max_value=datetime(2106, 1, 2)),
    st.datetimes(min_value=datetime(1899, 12, 31), max_value=datetime(2300, 1, 2)),
).map(lambda t: t.isoformat(timespec="minutes"))


@st.composite
def plausible(draw: st.DrawFn) -> dict[str, Any]:
    measures = draw(st.lists(st.sampled_from(MEASURES), min_size=1, max_size=3, unique=True))
    dimensions = draw(st.lists(st.sampled_from(DIMENSIONS), max_size=2, unique=True))
    grain = draw(st.one_of(st.none(), st.sampled_from(GRAINS)))
    returned = measures + dimensions + (["ts"] if grain else [])
    body: dict[str, Any] = {
        "measures": measures, "dimensions": dimensions, "grain": grain,
        "filters": draw(st.one_of(st.lists(typed_filters, max_size=4),
                                  st.lists(typed_leaf, min_size=100, max_size=200))),
        "time_range": draw(st.one_of(
            st.none(), st.sampled_from(["today", "last 3 months", "this year"]),
            st.fixed_dictionaries({}, optional={"from": edges, "to": edges}))),
        "timezone": draw(st.one_of(st.none(), st.sampled_from(ZONES))),
        "order": draw(st.lists(st.sampled_from(returned), unique=True).map(
            lambda names: [f"-{n}" if len(n) % 2 else n for n in names])),
        "limit": draw(st.one_of(st.none(), st.integers(min_value=1, max_value=100_000))),
        "offset": draw(st.one_of(st.just(0), st.integers(min_value=0, max_value=2_000_000))),
        "force_raw": draw(st.booleans()),
    }
    return body


#: values of the query parameters the generated endpoints take
parameters = st.dictionaries(
    st.one_of(st.sampled_from(["from", "to", "range", "timezone", "limit", "offset", "region",
                               "level", "price", "day", "id", "plan"]), junk),
    st.one_of(instants, junk, numbers.map(str), st.sampled_from(ZONES)), max_size=5)
plausible_parameters = st.fixed_dictionaries({}, optional={
    "from": edges, "to": edges, "timezone": st.sampled_from(ZONES),
    "region": st.text(max_size=10), "level": st.integers(0, 255).map(str),
    "plan": st.text(max_size=5), "limit": st.integers(1, 100_000).map(str),
    "offset": st.integers(0, 2_000_000).map(str)})

FUZZ = settings(suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])


def _check(response: Any) -> None:
    event(f"status {response.status_code}")  # shown by --hypothesis-show-statistics
    assert response.status_code < 500, response.text[:500]
    if response.status_code >= 400:
        error = response.json()["error"]
        assert_error(response, response.status_code, error["field"], error["code"])
    else:
        assert response.headers["content-type"] == "application/json"


@FUZZ
@given(body=st.one_of(bodies, plausible()))
def test_fuzz_query_body_never_5xx(served: Served, body: dict[str, Any]) -> None:
    _check(served.client.post("/v1/query", json=body))


@FUZZ
@given(body=st.one_of(bodies, plausible()))
def test_fuzz_explain_body_never_5xx(served: Served, body: dict[str, Any]) -> None:
    _check(served.client.post("/v1/explain", json=body))


@FUZZ
@given(path=st.sampled_from(["/api/by-region", "/api/totals"]),
       params=st.one_of(parameters, plausible_parameters))
def test_fuzz_endpoint_parameters_never_5xx(served: Served, path: str,
                                            params: dict[str, str]) -> None:
    _check(served.client.get(path, params=params))
