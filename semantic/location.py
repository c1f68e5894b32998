"""Where a node of the model was written: file, line, column and key path."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Location:
    """Where a node was written: file, 1-based line and column, and its key path."""

    file: str
    line: int
    column: int
    path: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"

    def at(self, *path: str) -> Location:
        return Location(self.file, self.line, self.column, path)
