"""Settings from the environment, with the documented defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MODEL = "metrics.yaml"
DEFAULT_DATA_DIR = ".data/chdb"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3000


@dataclass(frozen=True, slots=True)
class Settings:
    """``CLICKHOUSE_URL`` (unset: embedded chDB in ``SEMANTIC_DATA_DIR``), ``SEMANTIC_MODEL``."""

    clickhouse_url: str | None
    data_dir: Path
    model_path: Path
    pool_size: int
    #: ``plain`` (default) or ``json``: the format of every log line
    log_format: str = "plain"

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
        pool_size=int(os.environ.get("SEMANTIC_POOL_SIZE", "4")),
        log_format=os.environ.get("SEMANTIC_LOG_FORMAT", "plain").strip().lower() or "plain",
    )
