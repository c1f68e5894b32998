"""The reference model (``metrics.yaml``) compiled without a warehouse, from the column types
ClickHouse reports for ``analytics.events``; the engine tests and the golden SQL start here."""

from __future__ import annotations

from dataclasses import replace

from engine.model.compiled import CompiledModel, CompiledSource, SourceTypes
from engine.model.compiler import compile_model
from engine.serving.plan import RollupStats
from semantic import load_model
from tests.processes import ROOT

#: What ClickHouse reports for analytics.events (checked against the real engine in
#: tests/server/warehouse/test_warehouse_types.py, as USERS_TYPES is).
EVENTS_TYPES = SourceTypes(
    columns={"event_id": "String", "event_ts": "DateTime", "user_id": "String",
             "region": "String", "revenue": "Float64"},
    probed={("value", "region"): "String", ("value", "user_id"): "String",
            ("value", "revenue"): "Float64", ("value", "revenue > 0"): "UInt8",
            ("sum", "revenue", ""): "Float64",
            ("min", "revenue", ""): "Float64", ("max", "revenue", ""): "Float64",
            ("uniq", "user_id", ""): "AggregateFunction(uniq, String)",
            ("uniqExact", "user_id", ""): "AggregateFunction(uniqExact, String)",
            ("quantileTDigest", "revenue", ""):
                "AggregateFunction(quantileTDigest(0.5), Float64)"},
)


#: What ClickHouse reports for analytics.users, the dimension table the events join.
USERS_TYPES = SourceTypes(
    columns={"user_id": "String", "country": "String", "plan": "String"},
    probed={("value", "country"): "String", ("value", "plan"): "String"},
)


def compiled_reference() -> CompiledModel:
    return compile_model(load_model(ROOT / "metrics.yaml"),
                         {"events": EVENTS_TYPES, "users": USERS_TYPES})


#: the reference model's rollups keyed by time and region only (not ``users_monthly``, which
#: keeps user_id for the join to users): the planner's routing rules are stated over these;
#: joined rollups are tested in tests/server/cli/test_star_schema.py and the star properties
EVENT_ROLLUPS = ("totals", "daily", "region_daily", "region_hourly")


def reference_events() -> CompiledSource:
    """The compiled ``events`` source with only its ``EVENT_ROLLUPS``."""
    events = compiled_reference().sources["events"]
    return replace(events, rollups=tuple(r for r in events.rollups if r.name in EVENT_ROLLUPS))


def reference_stats(**bytes_by_rollup: int) -> dict[str, RollupStats]:
    """Sizes of the reference model's rollups, by rollup name (10 rows each), as the planner
    reads them from ``system.parts``."""
    tables = {r.name: r.qualified_table for r in compiled_reference().sources["events"].rollups}
    return {tables[name]: RollupStats(10, size) for name, size in bytes_by_rollup.items()}


#: every rollup of the reference model built, smaller where it aggregates more
ALL_READY = reference_stats(totals=1_000, daily=90_000, region_daily=5_000,
                            region_hourly=500_000)
