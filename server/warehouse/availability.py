"""Whether ClickHouse can be used, kept apart from the client so the command line can tell
without importing it: the two warehouse errors, and the embedded engine's one-process lock."""

from __future__ import annotations

import fcntl
from pathlib import Path

from semantic.errors import SemanticError


class WarehouseUnavailable(SemanticError):
    """ClickHouse cannot be reached (or the embedded data directory cannot be opened); the
    answer carries ``Retry-After``."""

    code = "warehouse_unavailable"
    status = 503

    def __init__(self, message: str, retry_after: int = 2) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def again(self, retry_after: int) -> WarehouseUnavailable:
        """The same failure for a caller turned away at once while it lasts (always 503)."""
        return WarehouseUnavailable(self.message, retry_after)


class WarehouseError(SemanticError):
    """ClickHouse answered with an error."""

    code = "warehouse_error"
    status = 502

    def __init__(self, message: str, sql: str = "") -> None:
        super().__init__(message)
        self.sql = sql


def lock_message(location: str) -> str:
    return (f"the embedded data directory ({location}) is in use by another process "
            "(is `semantic serve` running?): chDB lets one process open it at a time. Stop "
            "that process first, use the running server's HTTP API, or point CLICKHOUSE_URL "
            "at a ClickHouse server.")


def engine_in_use(dsn: str) -> bool:
    """Whether another process holds the embedded engine's lock on ``<dir>/status``.

    ClickHouse takes an exclusive ``flock`` on that file for as long as it runs; chDB's own
    error text does not say so, hence this check.
    """
    path = Path(dsn.removeprefix("chdb://")) / "status"
    try:
        with path.open("rb") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(handle, fcntl.LOCK_UN)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False
