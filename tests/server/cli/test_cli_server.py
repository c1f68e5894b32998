"""Every command while ``semantic serve`` holds the embedded engine on a non-default port: the
commands find it by themselves and print what they print locally; broken models are reported
located, exit 1, with the server running and stopped. Each command is a separate process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.processes import ROOT, free_port, semantic

MODEL = (ROOT / "metrics.yaml").read_text()

#: name -> (the model changed so, [(text of the line an issue is on, the issue's tail)]);
#: the checks that need no warehouse report every issue at once
BROKEN = {
    "without_warehouse": (
        MODEL.replace("    dimensions:\n", "    dimensions:\n      user_lower: "
                      "{sql: \"lower(user_id\"}\n", 1)
        .replace("sql: total_revenue / unique_users", "sql: total_revenu / unique_users")
        .replace("    metrics:\n", "    metrics:\n      a: b + 1\n      b: a * 2\n", 1),
        [('user_lower: {sql: "lower(user_id"}', "Expecting ) [invalid-sql]"),
         ("a: b + 1", "a -> b -> a [metric-cycle]"),
         ("b: a * 2", "b -> a -> b [metric-cycle]"),
         ("sql: total_revenu / unique_users", "did you mean 'total_revenue'? [unknown-measure]")]),
    "unknown_column": (
        MODEL.replace("    dimensions:\n", "    dimensions:\n      country: "
                      "{column: country}\n", 1),
        [("country: {column: country}",
          "column 'country' does not exist in analytics.events [unknown-column]")]),
    "rejected_dimension": (
        MODEL.replace("    dimensions:\n", "    dimensions:\n      user_number: "
                      "{sql: \"toUInt32(user_id)\"}\n", 1),
        [('user_number: {sql: "toUInt32(user_id)"}', "as UInt32")]),
}

#: commands whose output must not depend on where they run
SAME = {
    "plan": ("plan",),
    "query": ("query", "-m", "total_events,unique_users,paying_share", "-d", "region",
              "-f", "region!=us-west", "--from", "2026-01-01T06:30", "--to", "2026-01-20"),
    "explain": ("explain", "-m", "total_events", "-d", "region", "-g", "day", "--from",
                "2026-01-03T05:17:00Z", "--to", "2026-01-10T13:45:00Z", "--timezone",
                "Europe/Berlin"),
    "verify": ("verify",),
    "validate": ("validate",),
    "bad_query": ("query", "-m", "total_event"),
}


def _normal(text: str) -> str:
    """Without timings and read_bytes estimates (background merges change part sizes)."""
    text = re.sub(r"in \d+\.\d+ ms", "in N ms", text)
    return re.sub(r"(chosen|usable) +\d+ +", r"\1 N ", text)


@dataclass
class Served:
    data_dir: Path
    url: str
    local: dict[str, subprocess.CompletedProcess[str]]
    stopped_broken: dict[str, subprocess.CompletedProcess[str]]
    models: dict[str, Path]
    server: subprocess.Popen[str]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    base = tmp_path_factory.mktemp("served")
    data_dir = base / "chdb"
    assert semantic(data_dir, "demo", "--rows", "3000", "--seed", "5").returncode == 0
    assert semantic(data_dir, "apply").returncode == 0
    # a record left by a server that died without cleaning up is ignored
    (data_dir / "server.json").write_text(json.dumps({"pid": 2**22 + 7,
                                                      "url": "http://127.0.0.1:9"}))
    local = {name: semantic(data_dir, *args) for name, args in SAME.items()}
    models = {}
    for name, (text, _) in BROKEN.items():
        models[name] = base / f"{name}.yaml"
        models[name].write_text(text)
    stopped = {name: semantic(data_dir, "--model", str(path), "validate")
               for name, path in models.items()}
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("CLICKHOUSE_URL", "SEMANTIC_API_KEY")}
    env["SEMANTIC_DATA_DIR"] = str(data_dir)
    server = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--port", str(port)],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    try:
        for _ in range(600):
            record = data_dir / "server.json"
            if record.exists() and str(port) in record.read_text():
                break
            assert server.poll() is None, "the server exited"
            time.sleep(0.1)
        yield Served(data_dir, f"http://127.0.0.1:{port}", local, stopped, models, server)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert not (data_dir / "server.json").exists()


def test_cli_serve_prints_what_it_serves(served: Served) -> None:
    record = json.loads((served.data_dir / "server.json").read_text())
    assert record == {"pid": served.server.pid, "url": served.url}
    assert served.server.stdout is not None
    lines = [served.server.stdout.readline().rstrip("\n") for _ in range(9)]
    assert lines[0] == "model:     metrics.yaml"
    assert lines[1] == f"warehouse: embedded chDB at {served.data_dir}"
    assert lines[2] == "access:    access control off"
    assert lines[3] == "rollups:   6/6 ready"
    assert lines[4] == "endpoints: 3"
    assert lines[5].startswith("  GET /api/metrics <- rollup totals (semantic.events_totals_")
    assert lines[6].startswith("  GET /api/breakdown <- rollup region_daily (")
    assert lines[7].startswith("  GET /api/by-country <- ")
    assert lines[8] == (f"listening: {served.url} (reload the model with SIGHUP or POST "
                        "/v1/admin/reload)")


@pytest.mark.parametrize("name", list(SAME))
def test_cli_through_running_server_prints_as_locally(served: Served, name: str) -> None:
    local = served.local[name]
    through = semantic(served.data_dir, *SAME[name])
    assert (through.returncode, _normal(through.stdout), through.stderr) == (
        local.returncode, _normal(local.stdout), local.stderr)
    if name == "bad_query":
        assert local.returncode == 2 and "(field: measures" in local.stderr
    elif name == "validate":
        assert "columns, types and expressions checked against embedded chDB" in local.stdout
    else:
        assert local.returncode == 0, local.stderr


@pytest.mark.parametrize("name", list(BROKEN))
def test_cli_validate_reports_broken_model_running_and_stopped(served: Served,
                                                                name: str) -> None:
    text, issues = BROKEN[name]
    path = served.models[name]
    running = semantic(served.data_dir, "--model", str(path), "validate")
    for result in (running, served.stopped_broken[name]):
        assert result.returncode == 1, result.stdout + result.stderr
        assert result.stdout == ""
        rows = result.stderr.splitlines()
        assert rows[-1] == f"{len(issues)} error(s)"
        for line_text, tail in issues:
            line = next(i for i, row in enumerate(text.splitlines(), 1) if line_text in row)
            located = [row for row in rows if row.startswith(f"{path}:{line}:")]
            assert located and tail in located[0], result.stderr
    assert running.stderr == served.stopped_broken[name].stderr


def test_cli_commands_change_data_through_running_server(served: Served,
                                                         tmp_path: Path) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("event_id,event_ts,user_id,region,revenue\n"
                    + "".join(f"n{i},2026-02-01 10:00:00,usr_{i},mars,{i}\n" for i in range(7)))
    loaded = semantic(served.data_dir, "load", "events", str(rows))
    assert loaded.returncode == 0, loaded.stderr
    assert f"loading {rows} through {served.url}" in loaded.stdout
    demo = semantic(served.data_dir, "demo", "--rows", "100", "--append")
    assert demo.returncode == 0, demo.stderr
    assert demo.stdout.endswith("analytics.events: 3,107 rows (seed 1)\n")
    total = semantic(served.data_dir, "query", "-m", "total_events", "--json")
    assert json.loads(total.stdout)["data"] == [{"total_events": 3107}]
    repaired = semantic(served.data_dir, "repair", "--all")
    assert repaired.returncode == 0, repaired.stderr
    assert repaired.stdout.endswith("repair: 6 rollup(s) rebuilt\n")
    verified = semantic(served.data_dir, "verify")
    assert verified.returncode == 0 and verified.stdout.endswith(
        "verify: every rollup equals the raw table\n")
    applied = semantic(served.data_dir, "apply")
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.endswith("apply: 0 rollup(s) built, 6 unchanged\n")


def test_cli_command_needing_the_engine_itself_says_the_server_holds_it(served: Served,
                                                                        tmp_path: Path) -> None:
    result = semantic(served.data_dir, "init", "events", "--from-table", "analytics.events",
                      "--output", str(tmp_path / "m.yaml"))
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].startswith(
        f"error: the embedded data directory (embedded chDB at {served.data_dir}) is in use by "
        "another process")
    assert "Cannot lock" not in result.stderr  # chDB's own text stays out
