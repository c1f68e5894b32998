"""Helpers shared by tests: build a model in a test database and run it for real."""

from __future__ import annotations

import textwrap

from engine.compiler import CompiledModel
from semantic import Model, load_model_text
from server.operations import apply_model
from server.runtime import Runtime, compile_against
from server.warehouse import Warehouse


def model_text(text: str, **names: str) -> str:
    """Dedent YAML and substitute ``{db}``-style names (test database names)."""
    return textwrap.dedent(text).format(**names)


def build(warehouse: Warehouse, yaml_text: str) -> tuple[Model, CompiledModel, Runtime]:
    """Load the model, compile it against the warehouse, apply rollups, start a runtime."""
    model = load_model_text(yaml_text, "test.yaml")
    compiled = compile_against(model, warehouse)
    apply_model(compiled, warehouse)
    return model, compiled, Runtime.start(model, warehouse)
