"""The types the golden tests assume are the ones ClickHouse really reports."""

from __future__ import annotations

from pathlib import Path

from engine.ingestion.demo import create_demo_table, create_users_table
from semantic import load_model_text
from server.runtime.compile import read_types
from server.warehouse.statements import Warehouse
from tests.reference import EVENTS_TYPES, USERS_TYPES

ROOT = Path(__file__).resolve().parents[3]


def test_read_types_matches_golden_assumption(warehouse: Warehouse, database: str) -> None:
    for statement in create_demo_table(f"{database}.events"):
        warehouse.command(statement)
    warehouse.command(create_users_table(f"{database}.users"))
    text = (ROOT / "metrics.yaml").read_text().replace("analytics.", f"{database}.")
    found = read_types(load_model_text(text, "metrics.yaml"), warehouse)
    for name, expected in (("events", EVENTS_TYPES), ("users", USERS_TYPES)):
        assert dict(found[name].columns) == dict(expected.columns)
        assert dict(found[name].probed) == dict(expected.probed)
