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


def test_docs_time_function_examples_load() -> None:
    """The README's time functions, added to metrics.yaml, validate and check."""
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", readme, flags=re.S)
    example = next(b for b in blocks if "rolling:" in b)
    metrics = example.split("    metrics:\n", 1)[1]
    text = (ROOT / "metrics.yaml").read_text().replace("    metrics:\n",
                                                      "    metrics:\n" + metrics, 1)
    model = load_model_text(text, "metrics.yaml")
    events = model.source("events")
    assert events is not None
    kinds = {m.name: m.time.kind for m in events.metrics if m.time is not None}
    assert kinds == {"users_7d": "rolling", "revenue_mtd": "to_date",
                     "events_all_time": "cumulative", "events_week_before": "offset"}
    assert check_expressions(model, {"events": EVENTS_TYPES.columns}) == []
