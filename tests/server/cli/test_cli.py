"""The ``semantic`` command line, run as operators run it: a separate process per command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import ROOT, free_port, semantic


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli-chdb")


def test_cli_validate_reports_located_errors(data_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    text = (ROOT / "metrics.yaml").read_text().replace(
        "measures: [total_events, unique_users, total_revenue]\n",
        "measures: [total_events, unique_users, total_revenu]\n", 1)
    bad.write_text(text)
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "total_revenu]" in row)
    result = semantic(data_dir, "--model", str(bad), "validate")
    assert result.returncode == 1
    assert (f"{bad}:{line}:" in result.stderr
            and "measure 'total_revenu' is not defined in source 'events'; did you mean "
                "'total_revenue'? [unknown-measure]" in result.stderr)


def test_cli_serve_refuses_a_model_the_warehouse_contradicts(data_dir: Path) -> None:
    result = semantic(data_dir, "serve", "--port", "0")  # no analytics.events yet
    assert result.returncode == 1
    assert "table analytics.events does not exist" in result.stderr
    assert "[missing-table]" in result.stderr


def test_cli_demo_apply_query_plan_round_trip(data_dir: Path) -> None:
    demo = semantic(data_dir, "demo", "--rows", "20000", "--seed", "3")
    assert demo.returncode == 0, demo.stderr
    assert "analytics.events: 20,000 rows (seed 3)" in demo.stdout
    again = semantic(data_dir, "demo", "--rows", "20000")
    assert "already has 20,000 rows; nothing inserted" in again.stdout

    plan = semantic(data_dir, "plan")
    assert plan.returncode == 0, plan.stderr
    assert plan.stdout.startswith("-- plan: 6 create")
    assert "CREATE MATERIALIZED VIEW IF NOT EXISTS semantic.events_totals_" in plan.stdout

    first = semantic(data_dir, "apply")
    assert first.returncode == 0, first.stderr
    assert "apply: 6 rollup(s) built, 0 unchanged" in first.stdout
    second = semantic(data_dir, "apply")
    assert "apply: 0 rollup(s) built, 6 unchanged" in second.stdout
    assert semantic(data_dir, "plan").stdout.startswith("-- plan: 6 keep")

    served = semantic(data_dir, "query", "-m", "total_events,unique_users", "--json")
    raw = semantic(data_dir, "query", "-m", "total_events,unique_users", "--json", "--raw")
    assert served.returncode == 0 and raw.returncode == 0, served.stderr + raw.stderr
    assert '"table": "semantic.events_totals_' in served.stdout
    assert '"table": "analytics.events"' in raw.stdout
    assert served.stdout.split('"meta"')[0] == raw.stdout.split('"meta"')[0]
    assert '"total_events": 20000' in served.stdout

    explained = semantic(data_dir, "explain", "-m", "total_events", "-d", "region", "-g", "day",
                         "--from", "2026-01-03T05:17:00Z", "--to", "2026-01-10T13:45:00Z",
                         "--timezone", "Europe/Berlin", "-f", "total_events>0")
    assert explained.returncode == 0, explained.stderr
    lines = explained.stdout.splitlines()
    assert lines[0].startswith("answer from: semantic.events_region_hourly_")
    assert lines[0].endswith(" + analytics.events")
    assert any(line.startswith("region_daily ") and " timezone " in line for line in lines)
    assert any(line.startswith("totals ") and "missing_dimension" in line for line in lines)
    bad = semantic(data_dir, "query", "-m", "total_events", "--range", "last fortnight")
    assert bad.returncode == 2 and "(field: time_range)" in bad.stderr


def test_cli_load_direct_then_through_the_running_server(tmp_path: Path) -> None:
    import json
    import time
    import urllib.request

    data_dir = tmp_path / "chdb"
    assert semantic(data_dir, "demo", "--rows", "1000").returncode == 0
    assert semantic(data_dir, "apply").returncode == 0
    header = "event_id,event_ts,user_id,region,revenue\n"
    good = tmp_path / "good.csv"
    good.write_text(header + "".join(f"x{i},2026-04-01 00:00:0{i % 10},u{i},mars,{i}\n"
                                     for i in range(25)))
    loaded = semantic(data_dir, "load", "events", str(good), "--batch-rows", "10")
    assert loaded.returncode == 0, loaded.stderr
    assert "load: 25 rows into source 'events'" in loaded.stdout
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"event_id": "y", "event_ts": "2026-04-02", "user_id": "u", '
                   '"region": "mars", "revenue": 1}\n{"event_id": "z"}\n')
    rejected = semantic(data_dir, "load", "events", str(bad))
    assert rejected.returncode == 2
    assert "line 2: column 'event_ts' is missing (field: line 2.event_ts)" in rejected.stderr

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "CLICKHOUSE_URL"}
    env["SEMANTIC_DATA_DIR"] = str(data_dir)
    server = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--port", str(port)],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{url}/healthz", timeout=1)  # noqa: S310
                break
            except OSError:
                time.sleep(0.1)
        # The server holds the engine: commands find it through its record, on any port.
        held = semantic(data_dir, "query", "-m", "total_events")
        assert held.returncode == 0, held.stderr
        assert held.stdout.startswith("total_events\n1025 ")
        through = semantic(data_dir, "load", "events", str(good), "--server", url)
        assert through.returncode == 0, through.stderr
        assert f"loading {good} through {url}" in through.stdout
        applied = semantic(data_dir, "apply", "--server", url)
        assert applied.returncode == 0, applied.stderr
        assert f"through {url} (it keeps serving meanwhile)" in applied.stdout
        # nothing changed: each rollup reported once, no switch
        assert applied.stdout.count("keep ") == 6, applied.stdout
        assert "switched to the new model" not in applied.stdout
        assert applied.stdout.endswith("apply: 0 rollup(s) built, 6 unchanged\n")
        rejected = semantic(data_dir, "load", "events", str(bad), "--server", url)
        assert rejected.returncode == 2 and "(field: line 2.event_ts)" in rejected.stderr
        request = urllib.request.Request(f"{url}/v1/query", method="POST", data=json.dumps(
            {"measures": ["total_events"], "filters": [{"member": "region",
                                                        "value": "mars"}]}).encode())
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            assert json.loads(response.read())["data"] == [{"total_events": 50}]
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert not (data_dir / "server.json").exists()  # removed on exit


def test_cli_validate_without_warehouse_says_what_it_did_not_check(tmp_path: Path) -> None:
    env = {**os.environ, "CLICKHOUSE_URL": "http://127.0.0.1:9"}
    result = subprocess.run([sys.executable, "-m", "server.cli", "validate"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("metrics.yaml: ok without the warehouse (2 source(s), 6 "
                                    "rollup(s), 3 endpoint(s); structure, references and SQL "
                                    "syntax checked). NOT checked: tables and columns, types, "
                                    "every expression evaluated on a sample of its source, "
                                    "because ClickHouse at http://127.0.0.1:9 is unavailable: "
                                    "connection refused")
    broken = tmp_path / "cycle.yaml"
    broken.write_text((ROOT / "metrics.yaml").read_text().replace(
        "sql: paying_events / total_events", "sql: paying_share / total_events"))
    cycle = subprocess.run([sys.executable, "-m", "server.cli", "--model", str(broken),
                            "validate"], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=300)
    assert cycle.returncode == 1
    assert "metric 'paying_share' depends on itself: paying_share -> paying_share " \
        "[metric-cycle]" in cycle.stderr
