"""Issuing keys, the settings file, and `serve` refusing an open non-loopback address."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from server.auth.keys import KeyStore
from server.auth.settings import SettingsError, config_path, load_access_settings
from server.cli import main
from server.http.hosts import is_loopback as _is_loopback
from tests.processes import ROOT, semantic


def test_keys_create_prints_a_key_once_and_the_entry_that_accepts_it(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["keys", "create", "--scope", "read,ingest", "--filter", "tenant=42",
                 "--filter", "regions=eu-central,us-east", "--members", "total_events,region",
                 "--name", "dashboard"]) == 0
    out = capsys.readouterr().out
    key = next(line.strip() for line in out.splitlines() if line.strip().startswith("sk_"))
    entry = out[out.index("[[auth.keys]]"):]
    assert key not in entry
    (tmp_path / "semantic.toml").write_text(entry)
    settings = load_access_settings(tmp_path / "semantic.toml")
    assert settings.enabled and len(settings.keys) == 1
    stored = KeyStore(settings.keys).check(key)
    assert stored is not None and stored.name == "dashboard"
    assert stored.scopes == {"read", "ingest"}
    assert stored.access.claim("tenant") == (42,)
    assert stored.access.claim("regions") == ("eu-central", "us-east")
    assert stored.access.members == {"total_events", "region"}
    assert KeyStore(settings.keys).check(key[:-2] + "zz") is None
    assert tomllib.loads(entry)["auth"]["keys"][0]["hash"].startswith("sha256:")


def test_keys_create_refuses_unknown_scopes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "create", "--scope", "raed"]) == 2
    assert "unknown scope 'raed'" in capsys.readouterr().err


def test_settings_file_errors_name_the_key(tmp_path: Path) -> None:
    path = tmp_path / "semantic.toml"
    cases = {
        "[auth]\nkey = []\n": "unknown key 'key' in [auth]; allowed: keys, jwt",
        "[[auth.keys]]\nid = 'a'\nhash = 'sha256:00'\nscopes = ['root']\n":
            "auth.keys[0].scopes: unknown scope 'root'",
        "[auth.jwt]\nalgorithms = ['none']\n": "auth.jwt.algorithms: 'none' is not supported",
        "[cors]\norigins = 'x'\n": "cors.origins must be a list of strings",
        "[auth\n": "semantic.toml: ",
    }
    for text, message in cases.items():
        path.write_text(text)
        with pytest.raises(SettingsError) as info:
            load_access_settings(path)
        assert message in info.value.message, text


def test_environment_sets_jwt_secret_and_cors_origins(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEMANTIC_JWT_SECRET", "s" * 40)
    monkeypatch.setenv("SEMANTIC_CORS_ORIGINS", "https://a.example, https://b.example")
    settings = load_access_settings(tmp_path / "missing.toml")
    assert settings.enabled and settings.jwt.secret == "s" * 40
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    monkeypatch.setenv("SEMANTIC_CONFIG", str(tmp_path / "elsewhere.toml"))
    assert config_path(tmp_path / "metrics.yaml") == tmp_path / "elsewhere.toml"
    with pytest.raises(SettingsError):
        load_access_settings(config_path(tmp_path / "metrics.yaml"))


def test_loopback_addresses() -> None:
    assert all(_is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "127.1.2.3"))
    assert not any(_is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.1", "example.com"))


def test_serve_refuses_an_open_non_loopback_address(tmp_path: Path) -> None:
    result = semantic(tmp_path / "chdb", "--model", str(ROOT / "metrics.yaml"), "serve",
                      "--host", "0.0.0.0", "--port", "3113")
    assert result.returncode == 2
    assert "refusing to listen on 0.0.0.0 without access control" in result.stderr
    assert "--insecure" in result.stderr


def test_validate_prints_warnings_and_succeeds(tmp_path: Path) -> None:
    model = tmp_path / "metrics.yaml"
    model.write_text((ROOT / "metrics.yaml").read_text().replace(
        "    rollups:\n", "    security:\n      regions: region\n    rollups:\n", 1))
    # a port of this test's range where nothing listens: the columns go unchecked
    env = {**os.environ, "CLICKHOUSE_URL": "http://127.0.0.1:3119"}
    result = subprocess.run([sys.executable, "-m", "server.cli", "--model", str(model),
                             "validate"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert (f"{model}:79:9: warning: rollup 'totals' lacks security dimension 'region'"
            in result.stdout)
    assert "ok, 4 warning(s)" in result.stdout
