"""Row-level security on the reference model: conditions added before routing, the reason
rollups without the secured dimension give, refusals (pure, no database)."""

from __future__ import annotations

import pytest

from engine.model.compiler import compile_model
from engine.query.request import Filter, Query
from engine.query.security import Access, AccessDenied, secure_query
from engine.serving.router import plan_query
from semantic import load_model_text
from tests.processes import ROOT
from tests.reference import ALL_READY, EVENTS_TYPES, USERS_TYPES

SECURED = (ROOT / "metrics.yaml").read_text().replace(
    "    rollups:\n", "    security:\n      regions: region\n    rollups:\n", 1)
MODEL = load_model_text(SECURED, "metrics.yaml")
SOURCE = compile_model(MODEL, {"events": EVENTS_TYPES, "users": USERS_TYPES}).sources["events"]


def test_secured_model_warns_about_rollups_without_the_security_dimension() -> None:
    assert [w.render() for w in MODEL.warnings] == [
        "metrics.yaml:79:9: warning: rollup 'totals' lacks security dimension 'region' (claim "
        "'regions'), so it can never serve callers restricted by it; add 'region' to its "
        "dimensions [rollup-not-secured]",
        "metrics.yaml:81:9: warning: rollup 'daily' lacks security dimension 'region' (claim "
        "'regions'), so it can never serve callers restricted by it; add 'region' to its "
        "dimensions [rollup-not-secured]",
        "metrics.yaml:95:9: warning: rollup 'users_monthly' lacks security dimension 'region' "
        "(claim 'regions'), so it can never serve callers restricted by it; add 'region' to its "
        "dimensions [rollup-not-secured]",
        "metrics.yaml:99:9: warning: rollup 'users_all' lacks security dimension 'region' "
        "(claim 'regions'), so it can never serve callers restricted by it; add 'region' to its "
        "dimensions [rollup-not-secured]",
    ]


def test_secure_query_adds_the_claims_as_conditions() -> None:
    query = secure_query(SOURCE, Query("events", ("total_events",)),
                         Access.of({"regions": ["eu-central", "us-east"]}))
    assert query.security == (Filter("region", "in", ("eu-central", "us-east")),)
    assert query.filters == ()


def test_secured_query_routes_only_to_rollups_with_the_secured_dimension() -> None:
    query = secure_query(SOURCE, Query("events", ("total_events",)),
                         Access.of({"regions": "eu-central"}))
    plan = plan_query(SOURCE, query, ALL_READY)
    reasons = {c.rollup: c.reason for c in plan.candidates}
    assert reasons == {"totals": "security_filter_not_covered",
                       "daily": "security_filter_not_covered",
                       "region_daily": None, "region_hourly": None,
                       "users_monthly": "security_filter_not_covered",
                       "users_all": "security_filter_not_covered"}
    assert plan.rollup is not None and plan.rollup.name == "region_daily"
    assert "region IN {p0: Array(String)}" in plan.sql
    assert plan.parameters == {"p0": ["eu-central"]}
    # The raw-table answer is restricted too.
    raw = plan_query(SOURCE, query, {})
    assert "region IN {p0: Array(String)}" in raw.sql


def test_secured_queries_are_distinct_cache_keys() -> None:
    base = Query("events", ("total_events",))
    one = secure_query(SOURCE, base, Access.of({"regions": "eu-central"}))
    other = secure_query(SOURCE, base, Access.of({"regions": "us-east"}))
    assert one != other and hash(one) != hash(other) and one != base


def test_secure_query_refuses_a_caller_without_the_claim() -> None:
    with pytest.raises(AccessDenied) as info:
        secure_query(SOURCE, Query("events", ("total_events",)), Access.of({"tenant": 1}))
    assert info.value.status == 403 and info.value.field == "source"
    assert info.value.message == ("source 'events' is restricted by the claim 'regions', which "
                                  "this credential does not carry")
    with pytest.raises(AccessDenied):
        secure_query(SOURCE, Query("events", ("total_events",)), Access.of({"regions": []}))


def test_secure_query_refuses_claim_values_that_are_not_scalars() -> None:
    with pytest.raises(AccessDenied) as info:
        secure_query(SOURCE, Query("events", ("total_events",)),
                     Access.of({"regions": [{"a": 1}]}))
    assert info.value.field == "regions"


def test_secure_query_binds_numbers_as_text_for_a_string_dimension() -> None:
    query = secure_query(SOURCE, Query("events", ("total_events",)), Access.of({"regions": 7}))
    assert query.security == (Filter("region", "in", ("7",)),)


def test_members_restrict_what_a_caller_may_read() -> None:
    access = Access.of({"regions": "eu-central"}, ["total_events", "region"])
    allowed = Query("events", ("total_events",), ("region",), "day")
    assert secure_query(SOURCE, allowed, access).security
    with pytest.raises(AccessDenied) as info:
        secure_query(SOURCE, Query("events", ("total_events", "total_revenue")), access)
    assert info.value.field == "measures[1]"
    assert info.value.message == "this credential may not read 'total_revenue'"
    with pytest.raises(AccessDenied) as info:
        secure_query(SOURCE, Query("events", ("total_events",),
                                   filters=(Filter("user_id", "eq", ("u1",)),)), access)
    assert info.value.field == "filters"


def test_unsecured_source_is_unchanged() -> None:
    plain = compile_model(load_model_text((ROOT / "metrics.yaml").read_text(), "m.yaml"),
                          {"events": EVENTS_TYPES, "users": USERS_TYPES}).sources["events"]
    query = Query("events", ("total_events",))
    assert secure_query(plain, query, Access.of({})) is query
