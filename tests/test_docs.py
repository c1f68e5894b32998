"""The metrics.yaml examples of docs/model.md and the README are valid models: the reference
table's, and the star schemas with joins."""

from __future__ import annotations

import re
from pathlib import Path

from engine.model.expressions import check_expressions
from semantic import load_model_text
from tests.reference import EVENTS_TYPES

ROOT = Path(__file__).resolve().parents[1]


def test_docs_readme_model_example_loads() -> None:
    readme = (ROOT / "docs" / "model.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", readme, flags=re.S)
    example = next(b for b in blocks if "sources:" in b)
    model = load_model_text(example, "docs/model.md")
    assert check_expressions(model, {"events": EVENTS_TYPES.columns}) == []
    assert [e.path for e in model.endpoints] == ["/api/metrics", "/api/breakdown"]


def test_docs_join_examples_load() -> None:
    for name in ("docs/model.md", "README.md"):
        text = (ROOT / name).read_text()
        blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
        example = next(b for b in blocks if "joins:" in b)
        model = load_model_text(example, name)
        flights = model.source("flights")
        assert flights is not None and flights.joins, name
        assert any(r.name == "by_airline_day" for r in flights.rollups), name
