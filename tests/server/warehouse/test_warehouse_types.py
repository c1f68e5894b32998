"""The types the golden tests assume are the ones ClickHouse really reports."""

from __future__ import annotations

from pathlib import Path

from engine.ingestion.demo import create_demo_table
from semantic import load_model_text
from server.runtime.compile import read_types
from server.warehouse.statements import Warehouse
from tests.reference import EVENTS_TYPES

ROOT = Path(__file__).resolve().parents[3]


def test_read_types_matches_golden_assumption(warehouse: Warehouse, database: str) -> None:
    for statement in create_demo_table(f"{database}.events"):
        warehouse.command(statement)
    text = (ROOT / "metrics.yaml").read_text().replace("analytics.events", f"{database}.events")
    types = read_types(load_model_text(text, "metrics.yaml"), warehouse)["events"]
    assert dict(types.columns) == dict(EVENTS_TYPES.columns)
    assert dict(types.probed) == dict(EVENTS_TYPES.probed)
