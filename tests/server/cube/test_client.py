"""The real Cube client (``@cubejs-client/core`` from npm, pinned in tests/cube_client) against
a live server: ``load`` (a table; a time series with granularity and dateRange; filters, order,
limit) read through ``tablePivot``, ``chartPivot`` and ``series``, ``meta``, ``dryRun`` and
``sql``, compared with ``/v1/query`` answers; row-level security from the JWT's claim.

``scripts/install-node-deps.sh`` installs the client (``make test`` runs it); Node is required.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from semantic import Model
from server.app import create_app
from server.warehouse.statements import Warehouse
from tests.processes import Server
from tests.server.cube.conftest import ACCESS, token

CLIENT = Path(__file__).resolve().parents[2] / "cube_client"

TABLE = {"measures": ["events.events", "events.revenue"], "dimensions": ["events.region"],
         "order": {"events.region": "asc"}}
SERIES = {"measures": ["events.events"],
          "timeDimensions": [{"dimension": "events.ts", "granularity": "day",
                              "dateRange": ["2026-01-03", "2026-01-12"]}]}
FILTERED = {"measures": ["events.revenue"], "dimensions": ["events.region"],
            "filters": [{"member": "events.region", "operator": "notEquals",
                         "values": ["asia"]},
                        {"member": "events.ts", "operator": "beforeDate",
                         "values": ["2026-01-06"]}],
            "order": [["events.revenue", "desc"]], "limit": 1}


ROLLING = {"measures": ["events.events_3d"],
           "timeDimensions": [{"dimension": "events.ts", "granularity": "day",
                               "dateRange": ["2026-01-03", "2026-01-07"]}]}
COMPARE = {"measures": ["events.events"],
           "timeDimensions": [{"dimension": "events.ts", "granularity": "day",
                               "compareDateRange": [["2026-01-03", "2026-01-05"],
                                                    ["2026-01-08", "2026-01-10"]]}]}


@pytest.fixture(scope="module")
def server(cube_model: Model, warehouse: Warehouse) -> Iterator[Server]:
    with Server(create_app(cube_model, warehouse, access=ACCESS)) as running:
        yield running


def run_client(server: Server, steps: list[dict[str, Any]], tmp_path: Path) -> Any:
    node = shutil.which("node")
    assert node is not None, "node is required for the Cube client test (CI has it)"
    assert (CLIENT / "node_modules" / "@cubejs-client" / "core").is_dir(), \
        "run scripts/install-node-deps.sh first"
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"apiUrl": f"{server.url}/cubejs-api/v1", "token": token(1),
                                "steps": steps}))
    done = subprocess.run([node, str(CLIENT / "run.mjs"), str(plan)], cwd=CLIENT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def ours(server: Server, body: dict[str, Any], tenant: int = 1) -> list[dict[str, Any]]:
    return server.post("/v1/query", body, key=token(tenant))["data"]  # type: ignore[no-any-return]


def test_cube_client_loads_pivots_and_describes(server: Server, tmp_path: Path) -> None:
    got = run_client(server, [
        {"name": "table", "kind": "load", "query": TABLE},
        {"name": "series", "kind": "load", "query": SERIES},
        {"name": "filtered", "kind": "load", "query": FILTERED},
        {"name": "meta", "kind": "meta", "member": "events.revenue"},
        {"name": "dry", "kind": "dryRun", "query": SERIES},
        {"name": "sql", "kind": "sql", "query": SERIES},
        {"name": "other_tenant", "kind": "load", "query": TABLE, "token": token(2)},
        {"name": "no_token", "kind": "load", "query": TABLE, "token": ""},
        {"name": "refused", "kind": "load", "query": {**TABLE, "segments": ["events.x"]}},
        {"name": "compare", "kind": "load", "query": COMPARE},
        {"name": "rolling", "kind": "load", "query": ROLLING},
    ], tmp_path)
    for name in ("table", "series", "filtered", "meta", "dry", "sql", "other_tenant"):
        assert "error" not in got[name], (name, got[name])

    table = ours(server, {"measures": ["events", "revenue"], "dimensions": ["region"]})
    assert got["table"]["tablePivot"] == [
        {"events.region": r["region"], "events.events": str(r["events"]),
         "events.revenue": str(r["revenue"])} for r in table]
    assert got["table"]["tableColumns"] == ["events.region", "events.events", "events.revenue"]
    assert got["table"]["response"]["results"][0]["usedPreAggregations"]
    other = ours(server, {"measures": ["events", "revenue"], "dimensions": ["region"]}, 2)
    assert [r["events.events"] for r in got["other_tenant"]["tablePivot"]] == [
        str(r["events"]) for r in other]
    assert other != table  # the claim decides what each token sees

    # a time series: the client's chartPivot fills the days of the dateRange (the 11th and
    # 12th have no rows) and reads the values we return
    series = {r["ts"]: r["events"] for r in ours(server, {
        "measures": ["events"], "grain": "day",
        "time_range": {"from": "2026-01-03", "to": "2026-01-13"}})}
    chart = got["series"]["chartPivot"]
    assert [point["x"] for point in chart] == [f"2026-01-{d:02d}T00:00:00.000"
                                               for d in range(3, 13)]
    assert [point["events.events"] for point in chart] == [
        series.get(f"2026-01-{d:02d}", 0) for d in range(3, 13)]
    (line,) = got["series"]["series"]
    assert line["key"] == "events.events"
    assert [p["value"] for p in line["series"]] == [p["events.events"] for p in chart]

    filtered = ours(server, {"measures": ["revenue"], "dimensions": ["region"],
                             "filters": [{"member": "region", "op": "ne", "value": "asia"}],
                             "time_range": {"to": "2026-01-06"},
                             "order": ["-revenue"], "limit": 1})
    assert got["filtered"]["rawData"] == [{"events.region": filtered[0]["region"],
                                           "events.revenue": str(filtered[0]["revenue"])}]

    assert "events.events" in got["meta"]["measures"]
    assert "events.ts" in got["meta"]["dimensions"]
    assert got["meta"]["resolved"] == "Events Revenue"
    assert got["dry"]["queryType"] == "regularQuery"
    assert got["dry"]["pivotQuery"]["timeDimensions"][0]["granularity"] == "day"
    assert "toStartOfDay" in got["sql"]["sql"] or "ts_day" in got["sql"]["sql"]

    # compared date ranges: the client pivots one series per range, day by day
    compare = got["compare"]
    assert "error" not in compare, compare
    assert [p["x"][:10] for p in compare["chartPivot"]] == [f"2026-01-{d:02d}" for d in (3, 4, 5)]
    ranges = [key for key in compare["chartPivot"][0] if key.endswith("events.events")]
    assert len(ranges) == 2
    days = {r["ts"]: r["events"] for r in ours(server, {
        "measures": ["events"], "grain": "day",
        "time_range": {"from": "2026-01-03", "to": "2026-01-11"}})}
    assert [[p[key] for key in ranges] for p in compare["chartPivot"]] == [
        [days.get(f"2026-01-{d:02d}", 0), days.get(f"2026-01-{d + 5:02d}", 0)]
        for d in (3, 4, 5)]

    # a rolling window: three days ending with each day, from the rollup
    rolling = got["rolling"]
    assert "error" not in rolling, rolling
    assert rolling["response"]["results"][0]["usedPreAggregations"]
    window = {r["ts"]: r["events_3d"] for r in ours(server, {
        "measures": ["events_3d"], "grain": "day",
        "time_range": {"from": "2026-01-03", "to": "2026-01-08"}})}
    assert [(p["x"][:10], p["events.events_3d"]) for p in rolling["chartPivot"]] == [
        (f"2026-01-{d:02d}", window[f"2026-01-{d:02d}"]) for d in range(3, 8)]
    assert window["2026-01-05"] == sum(days[f"2026-01-{d:02d}"] for d in (3, 4, 5))

    assert got["no_token"]["status"] == 403
    assert got["refused"]["status"] == 400 and "segments" in got["refused"]["error"]
