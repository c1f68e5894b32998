"""YAML -> validated semantic model. Depends on the standard library and PyYAML only."""

from semantic.errors import Issue, ModelError, SemanticError
from semantic.loader import load_model, load_model_text
from semantic.location import Location
from semantic.model import (
    GRAINS,
    Dimension,
    Endpoint,
    Field,
    Measure,
    Model,
    OrderItem,
    Ref,
    Rollup,
    Source,
)

__all__ = [
    "GRAINS",
    "Dimension",
    "Endpoint",
    "Field",
    "Issue",
    "Location",
    "Measure",
    "Model",
    "ModelError",
    "OrderItem",
    "Ref",
    "Rollup",
    "SemanticError",
    "Source",
    "load_model",
    "load_model_text",
]
