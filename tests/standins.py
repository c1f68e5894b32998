"""Loopback stand-ins for an unavailable ClickHouse, shared by the outage tests and
``bench/outage.py``: a port that refuses connections and a server that never answers, and an
app of a small model served from such a warehouse."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from litestar.testing import TestClient

from semantic import load_model_text
from server.app import create_app
from server.settings import OperatingLimits
from server.warehouse.statements import Warehouse
from tests.support import LOOPBACK, model_text

OUTAGE_MODEL = """
rollup_database: {db}
sources:
  events:
    table: {db}.events
    time: ts
    dimensions: {{region: {{}}}}
    measures: {{n: {{agg: count}}}}
endpoints:
  /api/totals:
    returns: object
    fields: {{n: n}}
"""
#: one second to connect, one to run a query (read timeout: 1 + 2 s)
LIMITS = OperatingLimits(connect_timeout=1.0, query_timeout=1.0)
BOUND = LIMITS.connect_timeout + LIMITS.read_timeout  # the documented worst case
#: what the warehouse driver's own errors say, which no answer may show
DRIVER_TEXT = ("urllib3", "HTTPConnectionPool", "Max retries", "timed out", "Errno",
               "Traceback")


def unreachable_app(port: int) -> TestClient:  # type: ignore[type-arg]
    """An in-process client of the app serving a small model from the ClickHouse server
    expected on loopback ``port`` (a stand-in below, or nothing)."""
    model = load_model_text(model_text(OUTAGE_MODEL, db="nowhere"), "test.yaml")
    url = f"http://127.0.0.1:{port}"
    return TestClient(base_url=LOOPBACK,
                      app=create_app(model, Warehouse(url, url, limits=LIMITS),
                                     probe_seconds=0.2))


@contextmanager
def refusing_port() -> Iterator[int]:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    yield port


@contextmanager
def black_hole() -> Iterator[int]:
    """A loopback server that accepts every connection and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(128)
    server.settimeout(0.1)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        server.close()
