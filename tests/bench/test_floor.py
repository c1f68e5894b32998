"""``bench/floor.py``'s in-process layers run against the engine and driver as installed: each
layer of each reference endpoint is timed, none fails (the script calls chDB, the driver and
our pool directly, so a change to any of them shows here first)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.processes import ROOT, semantic


def test_floor_layers_time_every_endpoint(tmp_path: Path) -> None:
    for command in (("demo", "--rows", "5000"), ("apply",)):
        done = semantic(tmp_path, *command)
        assert done.returncode == 0, done.stderr
    env = {**os.environ, "SEMANTIC_DATA_DIR": str(tmp_path),
           "SEMANTIC_MODEL": str(ROOT / "metrics.yaml")}
    env.pop("CLICKHOUSE_URL", None)
    step = subprocess.run([sys.executable, str(ROOT / "bench" / "floor.py"), "--layers",
                           "--seconds", "0.05"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert step.returncode == 0, step.stderr
    layers = json.loads(step.stdout)
    assert set(layers) == {"/api/metrics", "/api/breakdown", "/api/breakdown, one range"}
    for name, timed in layers.items():
        assert set(timed) == {"select 1", "engine", "driver", "ours"}, name
        assert all(0 < ms < 1000 for ms in timed.values()), (name, timed)
