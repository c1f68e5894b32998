"""Talking to a running ``semantic serve``: finding it, and calling its HTTP API.

While ``semantic serve`` holds the embedded engine it records where it listens in
``<data dir>/server.json`` (pid and URL), and removes the file when it exits. A file whose
process is gone, or whose server does not answer, is stale and ignored.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from semantic.errors import FieldError, Issue, ModelError, SemanticError
from semantic.location import Location
from server.settings import API_KEY_VARIABLE, api_key

SERVER_FILE = "server.json"



@contextmanager
def recorded_server(data_dir: Path, url: str) -> Iterator[None]:
    """Record ``url`` as this process's server for the duration of the block."""
    path = data_dir / SERVER_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"pid": os.getpid(), "url": url}) + "\n")
    try:
        yield
    finally:
        try:
            if json.loads(path.read_text()).get("pid") == os.getpid():
                path.unlink()
        except (OSError, ValueError):
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def answers(url: str) -> bool:
    """Whether a server answers at ``url`` (any HTTP status counts: 503 while degraded)."""
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2):  # noqa: S310
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def recorded_url(data_dir: Path) -> str | None:
    """The URL of the live server recorded in ``data_dir``, or None (none, or stale)."""
    try:
        record = json.loads((data_dir / SERVER_FILE).read_text())
        pid, url = int(record["pid"]), str(record["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not _alive(pid) or not answers(url):
        return None
    return url


def _issue(data: Mapping[str, Any]) -> Issue:
    path = tuple(p for p in str(data.get("path", "")).split(".") if p)
    location = Location(str(data["file"]), int(data["line"]), int(data["column"]), path)
    return Issue(location, str(data["message"]), str(data["code"]),
                 str(data.get("severity", "error")))


class Client:
    """A running server's API, with the credential from ``$SEMANTIC_API_KEY`` if set."""

    def __init__(self, url: str, timeout: float = 3600.0, scope: str = "admin") -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        #: the scope the calls need, named when the server refuses the credential
        self.scope = scope
        self.api_key = api_key()

    def call(self, method: str, path: str, body: bytes | None = None,
             content_type: str = "application/json",
             params: Mapping[str, object] | None = None) -> dict[str, Any]:
        """The JSON answer; a located-issues answer raises ``ModelError``, other errors
        ``SemanticError`` (``FieldError`` when the server names a field)."""
        query = {k: str(v).lower() if isinstance(v, bool) else str(v)
                 for k, v in (params or {}).items() if v is not None}
        url = f"{self.url}{path}" + (f"?{urlencode(query)}" if query else "")
        headers = {"Content-Type": content_type}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return json.loads(response.read())  # type: ignore[no-any-return]
        except urllib.error.HTTPError as exc:
            raise self._error(exc) from None
        except urllib.error.URLError as exc:
            raise SemanticError(f"cannot reach the server at {self.url}: {exc.reason}") from None

    def post_json(self, path: str, payload: object = None,
                  params: Mapping[str, object] | None = None) -> dict[str, Any]:
        body = json.dumps(payload).encode() if payload is not None else b""
        return self.call("POST", path, body, params=params)

    def _error(self, exc: urllib.error.HTTPError) -> SemanticError:
        try:
            error = json.loads(exc.read() or b"{}").get("error", {})
        except ValueError:
            error = {}
        if not isinstance(error, dict):
            error = {}
        if error.get("issues"):
            return ModelError([_issue(i) for i in error["issues"]])
        message = str(error.get("message") or exc.reason)
        failure: SemanticError
        if exc.code in (401, 403):
            hint = (f"set {API_KEY_VARIABLE} to a key with the {self.scope} scope"
                    if not self.api_key else
                    f"the key in {API_KEY_VARIABLE} was refused")
            failure = SemanticError(f"the server at {self.url} answered {exc.code}: {message} "
                                    f"({hint})")
        elif error.get("field"):
            failure = FieldError(str(error["field"]), message)
        else:
            failure = SemanticError(message)
        if isinstance(error.get("code"), str):
            failure.code = error["code"]  # the server's own code (invalid_query, busy, ...)
        return failure
