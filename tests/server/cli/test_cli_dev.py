"""``semantic dev`` end to end: a broken save is reported located while the last good model
keeps answering; a fixed save with a new rollup is built, switched to, and serves its
endpoint."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from email.message import Message
from pathlib import Path

from tests.processes import ROOT, free_port, semantic

MODEL = (ROOT / "metrics.yaml").read_text()


def _get(url: str) -> tuple[int, Message, object]:
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310
        return response.status, response.headers, json.loads(response.read())


def _until(lines: queue.Queue[str], seen: list[str], text: str, timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        seen.append(line)
        if text in line:
            return line
    raise AssertionError(f"no line with {text!r} in:\n" + "".join(seen))


def test_cli_dev_keeps_last_good_model_and_applies_fixed_one(tmp_path: Path) -> None:
    data_dir = tmp_path / "chdb"
    model = tmp_path / "metrics.yaml"
    model.write_text(MODEL)
    assert semantic(data_dir, "demo", "--rows", "2000").returncode == 0
    assert semantic(data_dir, "--model", str(model), "apply").returncode == 0
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k != "CLICKHOUSE_URL"}
    env["SEMANTIC_DATA_DIR"] = str(data_dir)
    dev = subprocess.Popen([sys.executable, "-m", "server.cli", "--model", str(model), "dev",
                            "--port", str(port), "--poll", "0.2"], cwd=ROOT, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str] = queue.Queue()
    assert dev.stdout is not None
    stream = dev.stdout
    threading.Thread(target=lambda: [lines.put(line) for line in stream], daemon=True).start()
    seen: list[str] = []
    try:
        _until(lines, seen, f"watching {model} for changes")
        before = _get(f"{url}/api/metrics")[2]
        assert isinstance(before, dict) and before["total_events"] == 2000

        broken = MODEL.replace("sql: total_revenue / unique_users",
                               "sql: total_revenu / unique_users")
        model.write_text(broken)
        line = next(i for i, row in enumerate(broken.splitlines(), 1) if "total_revenu /" in row)
        _until(lines, seen, "still serving the last good model")
        assert any(row.startswith(f"{model}:{line}:") and "[unknown-measure]" in row
                   for row in seen), "".join(seen)
        status, _, body = _get(f"{url}/api/metrics")
        assert (status, body) == (200, before)
        # apply goes through the server, which reports the file's issues located (exit 1)
        applied = semantic(data_dir, "--model", str(model), "apply")
        assert applied.returncode == 1, applied.stdout + applied.stderr
        assert applied.stderr.startswith(f"{model}:{line}:")
        assert applied.stderr.endswith("1 error(s)\n")

        fixed = MODEL.replace("    rollups:\n", "    rollups:\n      region_weekly:\n"
                              "        dimensions: [region]\n        grain: week\n"
                              "        measures: [total_events]\n", 1) + (
            "  /api/weekly:\n    grain: week\n"
            "    fields: {region: region, week: event_ts, cnt: total_events}\n")
        model.write_text(fixed)
        _until(lines, seen, "applied in")
        routed = _until(lines, seen, "GET /api/weekly <-")
        assert "rollup region_weekly (semantic.events_region_weekly_" in routed
        assert any(row.startswith("  create   semantic.events_region_weekly_")
                   for row in seen), "".join(seen)
        status, headers, weekly = _get(f"{url}/api/weekly")
        assert status == 200
        assert headers["X-Semantic-Table"].startswith("semantic.events_region_weekly_")
        assert isinstance(weekly, list)
        assert sum(row["cnt"] for row in weekly) == 2000
    finally:
        dev.send_signal(signal.SIGTERM)
        dev.wait(timeout=30)
    assert not (data_dir / "server.json").exists()
