"""The command line's client of a running server: credentials, refusals, located issues, and
the record a server leaves in the data directory."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from semantic.errors import FieldError, ModelError, SemanticError
from server.client import Client, recorded_server, recorded_url

#: path -> (status, body) the stub answers with
ANSWERS: dict[str, tuple[int, dict[str, object]]] = {
    "/v1/admin/verify": (401, {"error": {"code": "unauthorized", "message": "missing token"}}),
    "/v1/admin/repair": (403, {"error": {"code": "forbidden", "message": "needs admin scope"}}),
    "/v1/query": (400, {"error": {"code": "invalid_query", "message": "unknown measure 'x'",
                                  "field": "measures[0]"}}),
    "/v1/admin/validate": (422, {"error": {"code": "invalid_model", "message": "1 error(s)",
                                           "issues": [{"file": "m.yaml", "line": 3, "column": 7,
                                                       "path": "sources.e", "message": "bad",
                                                       "code": "x", "severity": "error"}]}}),
    "/healthz": (200, {"status": "ok"}),
}


class _Stub(BaseHTTPRequestHandler):
    seen: list[tuple[str, str | None]] = []

    def _answer(self) -> None:
        path = self.path.split("?")[0]
        _Stub.seen.append((path, self.headers.get("Authorization")))
        status, body = ANSWERS.get(path, (200, {"ok": True}))
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def stub() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_client_says_plainly_when_a_credential_is_missing_or_refused(
        stub: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEMANTIC_API_KEY", raising=False)
    with pytest.raises(SemanticError) as missing:
        Client(stub).post_json("/v1/admin/verify")
    assert missing.value.message == (f"the server at {stub} answered 401: missing token (set "
                                     "SEMANTIC_API_KEY to a key with the admin scope)")
    monkeypatch.setenv("SEMANTIC_API_KEY", "k-123")
    with pytest.raises(SemanticError) as refused:
        Client(stub).post_json("/v1/admin/repair")
    assert refused.value.message == (f"the server at {stub} answered 403: needs admin scope "
                                     "(the key in SEMANTIC_API_KEY was refused)")
    assert _Stub.seen[-1] == ("/v1/admin/repair", "Bearer k-123")


def test_client_turns_error_bodies_into_the_local_errors(stub: str) -> None:
    with pytest.raises(FieldError) as bad:
        Client(stub).post_json("/v1/query", {"measures": ["x"]})
    assert (bad.value.field, bad.value.message) == ("measures[0]", "unknown measure 'x'")
    with pytest.raises(ModelError) as invalid:
        Client(stub).post_json("/v1/admin/validate", {"model": ""})
    assert [i.render() for i in invalid.value.issues] == ["m.yaml:3:7: error: bad [x]"]


def test_recorded_server_is_found_while_alive_and_removed_after(stub: str,
                                                                tmp_path: Path) -> None:
    assert recorded_url(tmp_path) is None
    with recorded_server(tmp_path, stub):
        assert json.loads((tmp_path / "server.json").read_text())["pid"] == os.getpid()
        assert recorded_url(tmp_path) == stub
    assert not (tmp_path / "server.json").exists()
    # a record whose server does not answer is stale
    (tmp_path / "server.json").write_text(json.dumps({"pid": os.getpid(),
                                                      "url": "http://127.0.0.1:9"}))
    assert recorded_url(tmp_path) is None
