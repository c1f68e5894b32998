"""The error hierarchy shared by every layer.

Every error the product raises on purpose is a ``SemanticError``. Subclasses carry structured
fields so the server can turn them into JSON without parsing messages.
"""

from __future__ import annotations

from dataclasses import dataclass

from semantic.location import Location


class SemanticError(Exception):
    """Root of every error raised on purpose by semantic, engine and server."""

    code = "error"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message}


class FieldError(SemanticError):
    """Bad input in a request; ``field`` names the offending part (``filters[0].op``,
    ``rows[3].revenue``)."""

    code = "invalid_request"
    status = 400

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field

    def to_dict(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message, "field": self.field}

    def __reduce__(self) -> tuple[object, ...]:  # copy.copy and pickle call __init__ again
        return type(self), (self.field, self.message), self.__dict__


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem found in a model, rendered like a compiler diagnostic."""

    location: Location
    message: str
    code: str
    severity: str = "error"

    def render(self) -> str:
        """Render as ``file:line:col: error: message [code]``.

        >>> from semantic.location import Location
        >>> Issue(Location("m.yaml", 3, 5, ("sources",)), "bad thing", "bad").render()
        'm.yaml:3:5: error: bad thing [bad]'
        """
        return f"{self.location}: {self.severity}: {self.message} [{self.code}]"

    def to_dict(self) -> dict[str, object]:
        loc = self.location
        return {
            "file": loc.file,
            "line": loc.line,
            "column": loc.column,
            "path": ".".join(loc.path),
            "message": self.message,
            "code": self.code,
            "severity": self.severity,
        }


class ModelError(SemanticError):
    """The model has one or more problems; ``issues`` lists all of them."""

    code = "invalid_model"
    status = 500

    def __init__(self, issues: list[Issue] | tuple[Issue, ...]) -> None:
        self.issues = tuple(sorted(issues, key=_issue_order))
        super().__init__("\n".join(issue.render() for issue in self.issues))

    def __reduce__(self) -> tuple[object, ...]:  # copy.copy and pickle call __init__ again
        return type(self), (self.issues,), self.__dict__

    def to_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "message": f"the model has {len(self.issues)} error(s)",
            "issues": [issue.to_dict() for issue in self.issues],
        }


def _issue_order(issue: Issue) -> tuple[str, int, int, str]:
    loc = issue.location
    return (loc.file, loc.line, loc.column, issue.code)
