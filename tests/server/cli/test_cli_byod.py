"""Bring your own data, from an empty data directory: ``init`` + ``load --create`` + ``apply``
+ ``serve`` on a Parquet file this project did not write (the diamonds sample pyarrow ships,
which has a column named ``table``) gives a working API."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.processes import ROOT, free_port, semantic


def _pyarrow_file(name: str) -> Path:
    spec = importlib.util.find_spec("pyarrow")
    assert spec is not None and spec.submodule_search_locations, "pyarrow (a chdb dependency)"
    path = Path(spec.submodule_search_locations[0]) / "tests" / "data" / "parquet" / name
    assert path.exists(), path
    return path


def test_cli_init_load_create_apply_serve_a_parquet_file(tmp_path: Path) -> None:
    diamonds = _pyarrow_file("v0.7.1.parquet")
    data_dir = tmp_path / "chdb"
    model = tmp_path / "metrics.yaml"
    init = semantic(data_dir, "--model", str(model), "init", "diamonds", "--file",
                    str(diamonds))
    assert init.returncode == 0, init.stderr
    text = model.read_text()
    assert "table: analytics.diamonds" in text
    assert '      cut: {column: "cut"}   # 5 values' in text
    assert '      total_price: {agg: sum, column: "price"}' in text
    assert semantic(data_dir, "--model", str(model), "init", "diamonds", "--file",
                    str(diamonds)).returncode == 2  # never overwrites by surprise

    loaded = semantic(data_dir, "--model", str(model), "load", "diamonds", str(diamonds),
                      "--create")
    assert loaded.returncode == 0, loaded.stderr
    out = loaded.stdout
    assert out.index("  price              Nullable(Int64)") < out.index("CREATE TABLE")
    assert out.index("CREATE TABLE analytics.diamonds") < out.index("load: 10 rows into source")
    again = semantic(data_dir, "--model", str(model), "load", "diamonds", str(diamonds),
                     "--create")
    assert again.returncode == 2 and "analytics.diamonds already exists" in again.stderr

    assert semantic(data_dir, "--model", str(model), "validate").returncode == 0
    applied = semantic(data_dir, "--model", str(model), "apply")
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.endswith("apply: 1 rollup(s) built, 0 unchanged\n")

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "CLICKHOUSE_URL"}
    env["SEMANTIC_DATA_DIR"] = str(data_dir)
    server = subprocess.Popen([sys.executable, "-m", "server.cli", "--model", str(model),
                               "serve", "--port", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            if (data_dir / "server.json").exists():
                break
            assert server.poll() is None, "the server exited"
            time.sleep(0.1)
        url = f"http://127.0.0.1:{port}/api/diamonds"
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310
            assert response.headers["X-Semantic-Table"].startswith("semantic.diamonds_summary_")
            rows = json.loads(response.read())
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    import pyarrow.parquet as pq

    expected: dict[str, list[int]] = {}
    for record in pq.read_table(diamonds).to_pylist():
        count_price = expected.setdefault(record["cut"], [0, 0])
        count_price[0] += 1
        count_price[1] += record["price"]
    assert {row["cut"]: [row["row_count"], row["total_price"]] for row in rows} == expected
