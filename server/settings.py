"""Settings from the environment, with the documented defaults (docs/operations.md): the one
module that reads ``os.environ`` (``SEMANTIC_*``, ``CLICKHOUSE_URL``).

``OperatingLimits``: timeouts, pools and ingestion bounds; ``Limits``: how big one request may
be (``SEMANTIC_MAX_*``, the table in docs/query-api.md#limits); ``Settings``: where the model,
the data and ClickHouse are; ``access_environment`` and ``api_key``: what the access-control
settings and the command line's client take from the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit

from engine.query.limits import QueryLimits
from engine.query.request import MAX_LIMIT, MAX_OFFSET
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


#: the SQL interface's default port (PostgreSQL clients)
DEFAULT_SQL_PORT = 15432


@dataclass(frozen=True, slots=True)
class SqlSettings:
    """Where and how the SQL interface (PostgreSQL wire protocol) listens:
    ``SEMANTIC_SQL_PORT`` (0: off; ``--sql-port``), ``SEMANTIC_SQL_HOST`` (default: the HTTP
    API's address), ``SEMANTIC_SQL_TLS_CERT``/``_KEY`` (PEM files: TLS for clients that ask),
    ``SEMANTIC_SQL_MAX_CONNECTIONS``, ``SEMANTIC_SQL_WRITE_TIMEOUT`` (seconds a client may take
    to read an answer)."""

    port: int = DEFAULT_SQL_PORT
    host: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    max_connections: int = 100
    write_timeout: float = 30.0


def load_sql_settings(environ: Mapping[str, str] | None = None) -> SqlSettings:
    """The SQL interface's settings; a malformed value is an error naming its variable.

    >>> load_sql_settings({"SEMANTIC_SQL_PORT": "0"}).port
    0
    """
    env = os.environ if environ is None else environ

    def number(name: str, kind: type, default: float) -> object:
        text = env.get(name, "").strip()
        return _parse(name, kind, text) if text else default

    port = number("SEMANTIC_SQL_PORT", int, DEFAULT_SQL_PORT)
    assert isinstance(port, int)
    if port > 65535:
        raise SemanticError(f"SEMANTIC_SQL_PORT={port}: a port is at most 65535")
    connections = number("SEMANTIC_SQL_MAX_CONNECTIONS", int, 100)
    timeout = number("SEMANTIC_SQL_WRITE_TIMEOUT", float, 30.0)
    assert isinstance(connections, int) and isinstance(timeout, float | int)
    return SqlSettings(port=port, host=env.get("SEMANTIC_SQL_HOST") or None,
                       tls_cert=env.get("SEMANTIC_SQL_TLS_CERT") or None,
                       tls_key=env.get("SEMANTIC_SQL_TLS_KEY") or None,
                       max_connections=max(1, connections), write_timeout=float(timeout))


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
    sql: SqlSettings = field(default_factory=SqlSettings)

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
            parts = urlsplit(self.clickhouse_url)
            return f"{parts.scheme}://{parts.hostname}:{parts.port or ''}".rstrip(":")
        return f"embedded chDB at {self.data_dir}"


#: the scheme of an embedded chDB data directory named as a URL (``chdb:///path``)
EMBEDDED_SCHEME = "chdb://"


def load_settings(model_path: str | None = None) -> Settings:
    """The settings of this process; ``CLICKHOUSE_URL=chdb:///path`` names the embedded
    engine's data directory, as ``SEMANTIC_DATA_DIR`` does."""
    url = os.environ.get("CLICKHOUSE_URL") or None
    data_dir = Path(os.environ.get("SEMANTIC_DATA_DIR", DEFAULT_DATA_DIR))
    if url is not None and url.startswith(EMBEDDED_SCHEME):
        data_dir = Path(url.removeprefix(EMBEDDED_SCHEME) or DEFAULT_DATA_DIR)
        url = None
    return Settings(
        clickhouse_url=url,
        data_dir=data_dir,
        model_path=Path(model_path or os.environ.get("SEMANTIC_MODEL", DEFAULT_MODEL)),
        limits=load_operating_limits(),
        log_format=os.environ.get("SEMANTIC_LOG_FORMAT", "plain").strip().lower() or "plain",
        cache_bytes=int(os.environ.get("SEMANTIC_CACHE_BYTES", str(64 * 1024 * 1024))),
        cache_max_staleness=float(os.environ.get("SEMANTIC_CACHE_MAX_STALENESS", "1")),
        sql=load_sql_settings(),
    )


#: bytes of a ``/v1/query`` or ``/v1/explain`` body
DEFAULT_BODY_BYTES = 1024 * 1024

#: environment variable -> QueryLimits field
QUERY_SETTINGS: dict[str, str] = {
    "SEMANTIC_MAX_MEMBERS": "members",
    "SEMANTIC_MAX_FILTERS": "filters",
    "SEMANTIC_MAX_FILTER_DEPTH": "filter_depth",
    "SEMANTIC_MAX_ORDER": "order",
    "SEMANTIC_MAX_LIST_VALUES": "list_values",
    "SEMANTIC_MAX_ROWS": "rows",
    "SEMANTIC_MAX_OFFSET": "offset",
}
BODY_SETTING = "SEMANTIC_MAX_QUERY_BODY_BYTES"
#: the engine's own ceilings, which no setting can raise
CEILINGS = {"rows": MAX_LIMIT, "offset": MAX_OFFSET}


class SettingError(SemanticError):
    """A limit setting is not a positive integer (or is above the engine's ceiling)."""

    code = "invalid_setting"


@dataclass(frozen=True, slots=True)
class Limits:
    query: QueryLimits = field(default_factory=QueryLimits)
    body_bytes: int = DEFAULT_BODY_BYTES


def _positive(name: str, text: str, ceiling: int | None) -> int:
    try:
        value = int(text.strip().replace("_", ""))
    except ValueError:
        value = 0
    if value < 1 or (ceiling is not None and value > ceiling):
        top = f" up to {ceiling}" if ceiling is not None else ""
        raise SettingError(f"{name} must be a positive integer{top}, not {text!r}")
    return value


def load_limits(environ: Mapping[str, str] | None = None) -> Limits:
    """The limits from ``SEMANTIC_MAX_*`` variables, defaults for those unset.

    >>> load_limits({"SEMANTIC_MAX_FILTERS": "50"}).query.filters
    50
    """
    env = os.environ if environ is None else environ
    defaults = QueryLimits()
    values = {f.name: getattr(defaults, f.name) for f in fields(QueryLimits)}
    for name, key in QUERY_SETTINGS.items():
        if env.get(name):
            values[key] = _positive(name, env[name], CEILINGS.get(key))
    body = DEFAULT_BODY_BYTES
    if env.get(BODY_SETTING):
        body = _positive(BODY_SETTING, env[BODY_SETTING], None)
    return Limits(QueryLimits(**values), body)


#: environment variables of access control (``server.auth.settings`` reads them from here)
ACCESS_VARIABLES = ("SEMANTIC_CONFIG", "SEMANTIC_JWT_SECRET", "SEMANTIC_JWKS_URL",
                    "SEMANTIC_CORS_ORIGINS", "SEMANTIC_ALLOWED_HOSTS")
#: the credential the command line sends to a running server
API_KEY_VARIABLE = "SEMANTIC_API_KEY"


def access_environment() -> dict[str, str]:
    """The access-control variables that are set and not empty."""
    return {name: os.environ[name] for name in ACCESS_VARIABLES if os.environ.get(name)}


def api_key() -> str | None:
    """``$SEMANTIC_API_KEY``, if set."""
    return os.environ.get(API_KEY_VARIABLE) or None
