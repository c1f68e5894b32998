"""ClickHouse down or slow: a port that refuses connections and a loopback server that
accepts and never answers. The server keeps answering health at once, fails every request
within the documented bound with our own message, and reports not ready."""

from __future__ import annotations

import threading
import time

import pytest
from litestar.testing import TestClient

from tests.standins import BOUND, DRIVER_TEXT, black_hole, refusing_port
from tests.standins import unreachable_app as _client


def _timed(client: TestClient, method: str, path: str,  # type: ignore[type-arg]
           **kwargs: object) -> tuple[float, object]:
    started = time.monotonic()
    response = client.request(method, path, **kwargs)  # type: ignore[arg-type]
    return time.monotonic() - started, response


@pytest.mark.parametrize("stand_in", [refusing_port, black_hole])
def test_outage_every_request_fails_within_the_bound(stand_in: object,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    with stand_in() as port, _client(port) as client:  # type: ignore[operator]
        requests = [("GET", "/api/totals", {}), ("POST", "/v1/query",
                                                 {"json": {"measures": ["n"]}}),
                    ("GET", "/api/totals", {}), ("GET", "/readyz", {})] * 3
        caplog.clear()
        timeouts = 0
        for method, path, kwargs in requests:
            elapsed, response = _timed(client, method, path, **kwargs)
            assert elapsed < BOUND + 1.0, (path, elapsed)
            assert response.status_code in (503, 504), path  # type: ignore[attr-defined]
            assert response.headers["content-type"] == "application/json"  # type: ignore[attr-defined]
            if response.status_code == 503:  # type: ignore[attr-defined]
                assert int(response.headers["retry-after"]) >= 1  # type: ignore[attr-defined]
            timeouts += response.status_code == 504  # type: ignore[attr-defined]
            text = response.text  # type: ignore[attr-defined]
            if path == "/readyz":  # the operator's view says why
                assert f"ClickHouse at http://127.0.0.1:{port}" in text
            else:  # a client is told what kind of failure it was, the log has the rest
                assert response.json()["error"]["message"] in (  # type: ignore[attr-defined]
                    "the warehouse is unavailable; try again shortly",
                    "the warehouse did not answer in time; try again shortly")
            assert not any(word in text for word in DRIVER_TEXT), text
            # liveness never waits for the warehouse
            elapsed, health = _timed(client, "GET", "/healthz")
            assert health.status_code == 200 and elapsed < 0.5  # type: ignore[attr-defined]
        # the request log has its line per request; besides it, the outage is logged once
        # (and a request that waited for the timeout once more), never the driver's retries
        warned = [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")]
        others = [r.getMessage() for r in warned if r.name != "server.access"]
        assert len(others) <= 1 + timeouts, others
        assert not any(word in line for line in others for word in ("Traceback", "urllib3"))
        meta = client.get("/v1/meta")
        assert meta.status_code == 200 and meta.json()["compiled"] is False


def test_outage_black_hole_later_requests_fail_at_once() -> None:
    with black_hole() as port, _client(port) as client:
        first, response = _timed(client, "GET", "/api/totals")
        assert response.status_code in (503, 504)  # type: ignore[attr-defined]
        # the first one waited for the timeout; while the outage is known, no one waits
        times = [_timed(client, "GET", "/api/totals")[0] for _ in range(5)]
        assert max(times) < 0.5, times
        concurrent: list[float] = []

        def one() -> None:
            concurrent.append(_timed(client, "GET", "/api/totals")[0])

        threads = [threading.Thread(target=one) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert max(concurrent) < BOUND + 1.0, concurrent


def test_outage_readiness_reports_the_reason() -> None:
    with refusing_port() as port, _client(port) as client:
        deadline = time.monotonic() + 5
        while True:
            ready = client.get("/readyz")
            assert ready.status_code == 503
            assert int(ready.headers["retry-after"]) >= 1
            if ready.json()["reason"].endswith("connection refused") or \
                    time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert ready.json() == {"status": "unavailable", "warehouse": f"http://127.0.0.1:{port}",
                                "reason": f"ClickHouse at http://127.0.0.1:{port} is "
                                          "unavailable: connection refused"}
