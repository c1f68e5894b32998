"""Settings from the environment, with the documented defaults (README, "Operations")."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from semantic.errors import SemanticError

DEFAULT_MODEL = "metrics.yaml"
DEFAULT_DATA_DIR = ".data/chdb"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3000


@dataclass(frozen=True, slots=True)
class OperatingLimits:
    """What one request may cost and how long anything may wait for ClickHouse."""

    #: seconds to open a connection to a ClickHouse server
    connect_timeout: float = 2.0
    #: ClickHouse ``max_execution_time`` of every query a request runs, in seconds; the
    #: HTTP read timeout is this plus ``READ_MARGIN`` so the server's own limit fires first
    query_timeout: float = 10.0
    #: ClickHouse ``max_memory_usage`` of every query a request runs, in bytes (0: none)
    query_max_memory: int = 2_000_000_000
    #: clients, hence queries running at once, per process
    pool_size: int = 4
    #: of those, queries reading mostly a raw table (0: half the pool, at least 1), so that
    #: answers from rollups always find a client
    raw_pool_size: int = 0
    #: seconds a request waits for a free client before it is answered 503 ``busy``
    queue_timeout: float = 2.0
    #: read timeout of DDL, backfills and inserts (``apply``, ``repair``, ingestion)
    command_timeout: float = 3600.0
    #: seconds in-flight requests get to finish after SIGTERM
    shutdown_grace: float = 15.0
    #: largest request body for ingestion, in bytes
    max_body_bytes: int = 64 * 1024 * 1024
    #: most rows in one ingestion batch
    max_batch_rows: int = 100_000
    #: seconds a request body may take to arrive
    body_timeout: float = 30.0
    #: whether ingestion accepts NaN and infinities in Float columns
    allow_nonfinite: bool = False

    READ_MARGIN = 2.0

    @property
    def read_timeout(self) -> float:
        return self.query_timeout + self.READ_MARGIN

    @property
    def raw_slots(self) -> int:
        return min(self.pool_size, self.raw_pool_size or max(1, self.pool_size // 2))


#: environment variable -> (OperatingLimits field, parser)
_LIMIT_VARIABLES: dict[str, tuple[str, type]] = {
    "SEMANTIC_CONNECT_TIMEOUT": ("connect_timeout", float),
    "SEMANTIC_QUERY_TIMEOUT": ("query_timeout", float),
    "SEMANTIC_QUERY_MAX_MEMORY": ("query_max_memory", int),
    "SEMANTIC_POOL_SIZE": ("pool_size", int),
    "SEMANTIC_RAW_POOL_SIZE": ("raw_pool_size", int),
    "SEMANTIC_QUEUE_TIMEOUT": ("queue_timeout", float),
    "SEMANTIC_COMMAND_TIMEOUT": ("command_timeout", float),
    "SEMANTIC_SHUTDOWN_GRACE": ("shutdown_grace", float),
    "SEMANTIC_MAX_BODY_BYTES": ("max_body_bytes", int),
    "SEMANTIC_MAX_BATCH_ROWS": ("max_batch_rows", int),
    "SEMANTIC_BODY_TIMEOUT": ("body_timeout", float),
    "SEMANTIC_INGEST_ALLOW_NONFINITE": ("allow_nonfinite", bool),
}

_POSITIVE = {"connect_timeout", "query_timeout", "pool_size", "command_timeout",
             "max_body_bytes", "max_batch_rows", "body_timeout"}


def _parse(variable: str, kind: type, text: str) -> object:
    text = text.strip()
    if kind is bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off", ""):
            return False
        raise SemanticError(f"{variable}={text!r}: use 1 or 0")
    try:
        value = kind(text.replace("_", ""))
    except ValueError:
        raise SemanticError(f"{variable}={text!r}: expected "
                            f"{'an integer' if kind is int else 'a number'}") from None
    if value != value or value < 0 or value == float("inf"):
        raise SemanticError(f"{variable}={text!r}: expected a finite number >= 0")
    return value


def load_operating_limits(environ: Mapping[str, str] | None = None) -> OperatingLimits:
    """OperatingLimits from ``SEMANTIC_*`` variables; a malformed value is an error naming it."""
    environ = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for variable, (name, kind) in _LIMIT_VARIABLES.items():
        if environ.get(variable, "").strip():
            value = _parse(variable, kind, environ[variable])
            if name in _POSITIVE and not value:
                raise SemanticError(f"{variable}={environ[variable]!r}: must be above 0")
            values[name] = value
    return OperatingLimits(**values)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Settings:
    """``CLICKHOUSE_URL`` (unset: embedded chDB in ``SEMANTIC_DATA_DIR``), ``SEMANTIC_MODEL``."""

    clickhouse_url: str | None
    data_dir: Path
    model_path: Path
    limits: OperatingLimits = field(default_factory=OperatingLimits)
    #: ``plain`` (default) or ``json``: the format of every log line
    log_format: str = "plain"
    #: result cache bound in bytes (0: off)
    cache_bytes: int = 64 * 1024 * 1024
    #: on a ClickHouse server, how often writes that bypass the service are looked for
    #: (seconds; the longest an answer may be stale; 0: no caching there)
    cache_max_staleness: float = 1.0

    @property
    def pool_size(self) -> int:
        return self.limits.pool_size

    @property
    def dsn(self) -> str:
        if self.clickhouse_url:
            return self.clickhouse_url
        return f"chdb://{self.data_dir.resolve()}"

    @property
    def embedded(self) -> bool:
        return not self.clickhouse_url

    @property
    def location(self) -> str:
        """Where the data lives, without credentials, for messages and logs."""
        if self.clickhouse_url:
            from urllib.parse import urlsplit

            parts = urlsplit(self.clickhouse_url)
            return f"{parts.scheme}://{parts.hostname}:{parts.port or ''}".rstrip(":")
        return f"embedded chDB at {self.data_dir}"


def load_settings(model_path: str | None = None) -> Settings:
    return Settings(
        clickhouse_url=os.environ.get("CLICKHOUSE_URL") or None,
        data_dir=Path(os.environ.get("SEMANTIC_DATA_DIR", DEFAULT_DATA_DIR)),
        model_path=Path(model_path or os.environ.get("SEMANTIC_MODEL", DEFAULT_MODEL)),
        limits=load_operating_limits(),
        log_format=os.environ.get("SEMANTIC_LOG_FORMAT", "plain").strip().lower() or "plain",
        cache_bytes=int(os.environ.get("SEMANTIC_CACHE_BYTES", str(64 * 1024 * 1024))),
        cache_max_staleness=float(os.environ.get("SEMANTIC_CACHE_MAX_STALENESS", "1")),
    )
