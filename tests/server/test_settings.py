"""Settings from the environment: documented defaults, parsed values, errors naming the
variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from semantic.errors import SemanticError
from server.settings import OperatingLimits, load_operating_limits, load_settings


def test_config_limits_defaults_and_overrides() -> None:
    assert load_operating_limits({}) == OperatingLimits()
    assert OperatingLimits().read_timeout == OperatingLimits().query_timeout + 2
    limits = load_operating_limits({"SEMANTIC_QUERY_TIMEOUT": "2.5", "SEMANTIC_POOL_SIZE": "8",
                          "SEMANTIC_MAX_BODY_BYTES": "1_000_000",
                          "SEMANTIC_INGEST_ALLOW_NONFINITE": "yes",
                          "SEMANTIC_QUERY_MAX_MEMORY": "0", "SEMANTIC_BODY_TIMEOUT": " "})
    assert (limits.query_timeout, limits.read_timeout, limits.pool_size) == (2.5, 4.5, 8)
    assert (limits.max_body_bytes, limits.allow_nonfinite, limits.query_max_memory) == (
        1_000_000, True, 0)
    assert limits.body_timeout == OperatingLimits().body_timeout  # blank: the default


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("SEMANTIC_QUERY_TIMEOUT", "ten", "SEMANTIC_QUERY_TIMEOUT='ten': expected a number"),
    ("SEMANTIC_POOL_SIZE", "2.5", "SEMANTIC_POOL_SIZE='2.5': expected an integer"),
    ("SEMANTIC_POOL_SIZE", "0", "SEMANTIC_POOL_SIZE='0': must be above 0"),
    ("SEMANTIC_CONNECT_TIMEOUT", "-1", "expected a finite number >= 0"),
    ("SEMANTIC_CONNECT_TIMEOUT", "nan", "expected a finite number >= 0"),
    ("SEMANTIC_INGEST_ALLOW_NONFINITE", "maybe", "use 1 or 0"),
])
def test_config_malformed_limit_names_the_variable(variable: str, value: str,
                                                   message: str) -> None:
    with pytest.raises(SemanticError, match=message.replace("(", r"\(").replace(".", r"\.")):
        load_operating_limits({variable: value})


def test_a_chdb_url_names_the_embedded_data_directory(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    """The probe's reproduction: ``CLICKHOUSE_URL=chdb:///path`` made the banner and the
    "data directory in use" error say ``chdb://None``."""
    monkeypatch.setenv("CLICKHOUSE_URL", f"chdb://{tmp_path}")
    settings = load_settings()
    assert settings.embedded and settings.data_dir == tmp_path
    assert settings.location == f"embedded chDB at {tmp_path}"
    assert settings.dsn == f"chdb://{tmp_path.resolve()}"
    assert "None" not in settings.location
    monkeypatch.setenv("CLICKHOUSE_URL", "http://user:secret@db.example:8123/")
    remote = load_settings()
    assert not remote.embedded and remote.location == "http://db.example:8123"
