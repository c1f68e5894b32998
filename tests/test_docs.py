"""The metrics.yaml examples of docs/model.md and the README are valid models: the reference
table's, and the star schemas with joins."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

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


def test_docs_time_function_examples_are_the_reference_models() -> None:
    """The README's time functions are metrics.yaml's, as written there."""
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", readme, flags=re.S)
    example = yaml.safe_load(next(b for b in blocks if "rolling:" in b))["metrics"]
    model = load_model_text((ROOT / "metrics.yaml").read_text(), "metrics.yaml")
    events = model.source("events")
    assert events is not None
    written = {}
    for metric in events.metrics:
        if metric.time is not None:
            function = metric.time
            options = {"measure": function.measure.name, "window": function.window,
                       "period": function.period, "by": function.by}
            written[metric.name] = {function.kind: {
                k: str(v) for k, v in options.items() if v is not None}}
    assert written == {name: {kind: {k: str(v) for k, v in options.items()}
                              for kind, options in value.items()}
                       for name, value in example.items()}
