"""Where answers' queries run: in place for a lone request on a cheap rollup plan, on worker
threads for a burst, for raw-table plans and when no ClickHouse client is idle."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlglot
from litestar.testing import TestClient

from engine.dialect import system as introspection
from semantic import load_model
from server.app import create_app
from server.operations.apply import apply_model
from server.runtime.compile import compile_against
from server.runtime.dispatch import Dispatcher
from server.runtime.state import State
from server.settings import OperatingLimits
from server.warehouse.errors import WarehouseBusy
from server.warehouse.pool import NoIdleClient
from server.warehouse.statements import Warehouse
from tests.support import LOOPBACK, TOTALS_MODEL, insert_rows, model_text

MODEL = TOTALS_MODEL


@pytest.fixture
def served(warehouse: Warehouse, database: str,
           tmp_path: Path) -> Iterator[tuple[TestClient, State]]:  # type: ignore[type-arg]
    warehouse.command(sqlglot.parse_one(
        f"CREATE TABLE {database}.events (ts DateTime, region String) "
        "ENGINE = MergeTree ORDER BY ts", dialect="clickhouse"))
    insert_rows(warehouse, f"{database}.events", [("2026-01-01 10:00:00", "us"),
                                                  ("2026-01-02 11:00:00", "eu")])
    path = tmp_path / "metrics.yaml"
    path.write_text(model_text(MODEL, db=database))
    model = load_model(path)
    apply_model(compile_against(model, warehouse), warehouse)
    app = create_app(model, warehouse, cache_bytes=0)
    with TestClient(base_url=LOOPBACK, app=app) as client:
        yield client, app.state.semantic


def test_dispatch_lone_request_on_a_rollup_runs_in_place(
        served: tuple[TestClient, State]) -> None:  # type: ignore[type-arg]
    client, state = served
    for _ in range(3):
        assert client.get("/api/totals").json() == {"n": 2}
    assert state.dispatcher.in_place == 3 and state.dispatcher.threaded == 0


def test_dispatch_small_plan_is_made_in_place(
        served: tuple[TestClient, State]) -> None:  # type: ignore[type-arg]
    """A query never asked before is planned on the loop when it has few filter values,
    whether or not other requests are being answered; otherwise on a worker thread."""
    client, state = served
    dispatcher = state.dispatcher
    before = dispatcher.planned_in_place
    many = {"measures": ["events"],
            "filters": [{"member": "region", "op": "in", "values": [f"r{i}" for i in range(65)]}]}
    assert client.post("/v1/query", json={"measures": ["events"]}).status_code == 200
    assert dispatcher.planned_in_place == before + 1
    assert client.post("/v1/query", json=many).status_code == 200  # 65 values: on a thread
    assert dispatcher.planned_in_place == before + 1
    loop_thread = threading.get_ident()
    threads: list[bool] = []

    def plan() -> None:
        threads.append(threading.get_ident() != loop_thread)

    async def planned() -> None:
        nonlocal loop_thread
        loop_thread = threading.get_ident()
        await dispatcher.plan(True, plan)  # alone: in place
        dispatcher.active += 1  # another request is waiting for a query: in place still
        try:
            await dispatcher.plan(True, plan)
        finally:
            dispatcher.active -= 1
        await dispatcher.plan(False, plan)  # not small: on a thread

    asyncio.run(planned())
    assert threads == [False, False, True]


def test_dispatch_raw_table_plan_runs_on_a_thread(
        served: tuple[TestClient, State]) -> None:  # type: ignore[type-arg]
    client, state = served
    answer = client.post("/v1/query", json={"measures": ["events"], "force_raw": True})
    assert answer.status_code == 200 and answer.json()["data"] == [{"events": 2}]
    assert state.dispatcher.threaded == 1 and state.dispatcher.in_place == 0


def test_dispatch_burst_runs_on_threads(warehouse: Warehouse) -> None:
    dispatcher = Dispatcher(warehouse)
    threads: list[bool] = []

    def call() -> int:
        threads.append(threading.current_thread() is not threading.main_thread())
        return 1

    async def burst() -> list[int]:
        return await asyncio.gather(*(dispatcher.run(True, call) for _ in range(3)))

    assert asyncio.run(burst()) == [1, 1, 1]
    assert threads == [True, True, True] and dispatcher.threaded == 3

    assert asyncio.run(dispatcher.run(True, call)) == 1  # alone again: in place
    assert threads[-1] is False and dispatcher.in_place == 1


def test_dispatch_without_an_idle_client_goes_to_a_thread(warehouse: Warehouse) -> None:
    small = Warehouse(warehouse.dsn, warehouse.location, pool_size=1)
    held = small.pool._acquire()  # the pool's one client, busy elsewhere
    release = threading.Timer(0.2, small.pool.give_back, args=(held,))
    try:
        with small.without_waiting(), pytest.raises(NoIdleClient):
            small.query(introspection.PING)
        dispatcher = Dispatcher(small)
        release.start()
        rows = asyncio.run(dispatcher.run(True, lambda: small.query(introspection.PING).rows))
        assert rows == [(1,)]
        assert dispatcher.threaded == 1 and dispatcher.in_place == 0
    finally:
        release.join()
        small.close()


def test_dispatch_cheap_queries_wait_their_turn_on_the_pools_threads(
        warehouse: Warehouse) -> None:
    small = Warehouse(warehouse.dsn, warehouse.location, pool_size=2,
                      limits=OperatingLimits(queue_timeout=0.3))
    dispatcher = Dispatcher(small)
    running, most, names = [0], [0], set()
    lock = threading.Lock()

    def call(seconds: float) -> str:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
            names.add(threading.current_thread().name)
        time.sleep(seconds)
        with lock:
            running[0] -= 1
        return "done"

    async def burst(seconds: float, count: int) -> list[object]:
        return await asyncio.gather(*(dispatcher.run(True, lambda: call(seconds))
                                      for _ in range(count)), return_exceptions=True)

    try:
        assert asyncio.run(burst(0.02, 8)) == ["done"] * 8
        assert most[0] == 2 and len(names) == 2  # never a thread per query
        assert all(name.startswith("rollup-query") for name in names)
        # two queries hold both threads past the queue timeout: the rest are answered busy
        found = asyncio.run(burst(0.5, 4))
        assert found[:2] == ["done", "done"]
        assert all(isinstance(f, WarehouseBusy) and "SEMANTIC_POOL_SIZE" in f.message
                   for f in found[2:]), found
        # a raw-table query never waits behind them: it has threads of its own
        assert asyncio.run(dispatcher.run(False, lambda: threading.current_thread().name)) \
            .startswith("query")
    finally:
        dispatcher.close()
        small.close()
