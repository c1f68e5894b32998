"""Errors survive copy.copy (the server re-raises a copy of a remembered compile failure)."""

from __future__ import annotations

import copy

from semantic.errors import FieldError, Issue, ModelError
from semantic.location import Location


def test_errors_copy_keeps_their_fields() -> None:
    issue = Issue(Location("m.yaml", 3, 5, ("sources",)), "bad thing", "bad")
    model_error = copy.copy(ModelError([issue]))
    assert model_error.issues == (issue,) and model_error.to_dict()["issues"]
    field_error = FieldError("filters[0].value", "expected a string")
    field_error.extra = 1  # type: ignore[attr-defined]
    copied = copy.copy(field_error)
    assert (copied.field, copied.message, copied.extra) == ("filters[0].value",  # type: ignore[attr-defined]
                                                           "expected a string", 1)
