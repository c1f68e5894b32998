"""ClickHouse down or silent: how fast ``semantic serve`` listens and how fast it fails.

For each stand-in warehouse, on loopback:

* ``refused``: a port nothing listens on (every connection refused);
* ``black hole``: a server that accepts every connection and never answers;

it starts ``semantic serve`` with ``CLICKHOUSE_URL`` pointing there (default limits unless the
environment sets ``SEMANTIC_*``), then measures the time until it listens (``/healthz`` 200),
20 sequential ``GET /api/metrics`` (status and latency each), 8 concurrent ones, ``/readyz``,
the ``/healthz`` latency meanwhile, and the warning lines the server logged.

Usage (from the repository root)::

    .venv/bin/python bench/outage.py [--port P]

Only 127.0.0.1 is contacted; each stand-in runs for well under a minute.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from endpoints import ROOT, BenchError, Client, free_port, percentile, say, shut_down

sys.path.insert(0, str(ROOT))  # the stand-ins live with the tests
from tests.standins import black_hole, refusing_port  # noqa: E402


def measure(name: str, warehouse_port: int, port: int, log_path: Path) -> None:
    env = dict(os.environ)
    env["CLICKHOUSE_URL"] = f"http://127.0.0.1:{warehouse_port}"
    env["SEMANTIC_MODEL"] = str(ROOT / "metrics.yaml")
    log = log_path.open("wb")
    began = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    log.close()
    client = None
    try:
        while True:
            if proc.poll() is not None:
                raise BenchError(f"{name}: the server exited with {proc.returncode}")
            if time.monotonic() - began > 120:
                raise BenchError(f"{name}: the server did not listen within 120 s")
            try:
                probe = Client(port)
                reply, _ = probe.call("GET", "/healthz")
                probe.close()
                if reply.status == 200:
                    break
            except (BenchError, OSError):
                pass
            time.sleep(0.05)
        listening = time.monotonic() - began
        client = Client(port)
        sequential = []
        statuses: dict[int, int] = {}
        for _ in range(20):
            reply, elapsed = client.call("GET", "/api/metrics")
            sequential.append(elapsed)
            statuses[reply.status] = statuses.get(reply.status, 0) + 1
        concurrent: list[float] = []

        def one() -> None:
            other = Client(port)
            concurrent.append(other.call("GET", "/api/metrics")[1])
            other.close()

        threads = [threading.Thread(target=one) for _ in range(8)]
        for thread in threads:
            thread.start()
        health = [client.call("GET", "/healthz")[1] for _ in range(20)]
        for thread in threads:
            thread.join()
        ready, _ = client.call("GET", "/readyz")
        warnings = sum(1 for line in log_path.read_text(errors="replace").splitlines()
                       if "WARNING" in line.split(" - ", 1)[0] or " WARNING " in line)
        say(f"{name}: listening after {listening:.2f} s (process start included); "
            f"/api/metrics x20: statuses {statuses}, first {sequential[0]:.0f} ms, "
            f"p50 {percentile(sequential, 0.5):.1f} ms, worst {max(sequential):.0f} ms; "
            f"8 concurrent: worst {max(concurrent):.0f} ms; /healthz worst "
            f"{max(health):.1f} ms; /readyz {ready.status}; {warnings} warning lines for "
            f"{20 + 8} failed requests")
    finally:
        shut_down(client, proc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=None)
    args = parser.parse_args(argv)
    port = args.port or free_port()
    logs = ROOT / ".data"
    logs.mkdir(exist_ok=True)
    try:
        with refusing_port() as warehouse_port:
            measure("refused", warehouse_port, port, logs / "outage-refused.log")
        with black_hole() as warehouse_port:
            measure("black hole", warehouse_port, port, logs / "outage-black-hole.log")
    except BenchError as exc:
        say(f"ERROR: {exc}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
