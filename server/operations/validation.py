"""``semantic validate``: every check that needs no warehouse, then the ones that do.

Structure, names and references (``semantic``) and the SQL of every expression, metric
references and cycles (``engine.model.expressions``) always run. Columns, types and the
evaluation of every expression on a sample of the source need the warehouse; when it cannot be
reached the report says that those checks did not run, never a bare "ok".
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.model.expressions import check_expressions
from semantic.errors import ModelError
from semantic.model import Model
from server.runtime.compile import compile_against
from server.warehouse.availability import WarehouseUnavailable
from server.warehouse.statements import Warehouse

WAREHOUSE_CHECKS = ("tables and columns", "types", "every expression evaluated on a sample of "
                    "its source")


@dataclass(frozen=True, slots=True)
class Validation:
    """What was checked: ``checked_against`` names the warehouse, or None when its checks
    could not run (``reason`` says why)."""

    summary: str
    checked_against: str | None
    reason: str = ""
    warnings: int = 0

    def render(self, file: str) -> str:
        ok = f"ok, {self.warnings} warning(s)" if self.warnings else "ok"
        if self.checked_against is not None:
            return (f"{file}: {ok} ({self.summary}; columns, types and expressions checked "
                    f"against {self.checked_against})")
        return (f"{file}: {ok} without the warehouse ({self.summary}; structure, references "
                f"and SQL syntax checked). NOT checked: {', '.join(WAREHOUSE_CHECKS)}, "
                f"because {self.reason}")

    def to_dict(self) -> dict[str, object]:
        return {"status": "ok", "summary": self.summary, "checked_against": self.checked_against,
                "reason": self.reason, "warnings": self.warnings}


def model_summary(model: Model) -> str:
    rollups = sum(len(s.rollups) for s in model.sources)
    return (f"{len(model.sources)} source(s), {rollups} rollup(s), "
            f"{len(model.endpoints)} endpoint(s)")


def check_offline(model: Model) -> None:
    """The checks that need no warehouse: SQL parses, metric references, cycles."""

    issues = check_expressions(model, {})
    if issues:
        raise ModelError(issues)


def validate_model(model: Model, warehouse: Warehouse | None, location: str = "") -> Validation:
    """Every check; the warehouse ones are skipped (and said so) when it is unavailable."""

    check_offline(model)
    warned = len(model.warnings)
    if warehouse is None:
        return Validation(model_summary(model), None, "no warehouse was given", warned)
    try:
        compile_against(model, warehouse)
    except WarehouseUnavailable as exc:
        return Validation(model_summary(model), None, exc.message, warned)
    return Validation(model_summary(model), location or warehouse.location, warnings=warned)
