"""The SQL interface's errors: a ``SqlError`` carries the SQLSTATE and the message (and a
hint) a PostgreSQL client shows."""

from __future__ import annotations

SYNTAX_ERROR = "42601"
UNSUPPORTED = "0A000"
UNDEFINED_TABLE = "42P01"
UNDEFINED_COLUMN = "42703"
GROUPING_ERROR = "42803"
INVALID_PARAMETER = "22023"
TOO_MANY_ROWS = "54000"


class SqlError(Exception):
    """A statement the interface cannot answer: a PostgreSQL error (SQLSTATE, message, hint)."""

    def __init__(self, sqlstate: str, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
        self.message = message
        self.hint = hint
