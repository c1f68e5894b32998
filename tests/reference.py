"""The reference model (``metrics.yaml``) compiled without a warehouse, from the column types
ClickHouse reports for ``analytics.events``; the engine tests and the golden SQL start here."""

from __future__ import annotations

from engine.model.compiler import CompiledModel, SourceTypes, compile_model
from semantic import load_model
from tests.processes import ROOT

#: What ClickHouse reports for analytics.events (checked against the real engine in
#: tests/server/warehouse/test_warehouse_types.py).
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


def compiled_reference() -> CompiledModel:
    return compile_model(load_model(ROOT / "metrics.yaml"), {"events": EVENTS_TYPES})
