"""The warehouse module's error paths."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from server.warehouse.availability import WarehouseError, WarehouseUnavailable
from server.warehouse.errors import WarehouseBusy
from server.warehouse.statements import Warehouse


def test_warehouse_locked_data_directory_says_what_to_do(tmp_path: Path) -> None:
    holder = textwrap.dedent(f"""
        import sys, clickhouse_connect
        client = clickhouse_connect.get_client(dsn="chdb://{tmp_path}")
        client.query("SELECT 1")
        print("ready", flush=True)
        sys.stdin.read()
    """)
    process = subprocess.Popen([sys.executable, "-c", holder], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        warehouse = Warehouse(f"chdb://{tmp_path}", f"embedded chDB at {tmp_path}", 1)
        with pytest.raises(WarehouseUnavailable, match="in use by another process"):
            warehouse.ping()
    finally:
        process.communicate(input="", timeout=30)


def test_warehouse_unreachable_server_is_unavailable() -> None:
    warehouse = Warehouse("http://127.0.0.1:9/", "http://127.0.0.1:9", 1)
    with pytest.raises(WarehouseUnavailable, match="is unavailable: connection refused"):
        warehouse.ping()


def test_warehouse_pool_serves_more_threads_than_clients(warehouse: Warehouse) -> None:
    from concurrent.futures import ThreadPoolExecutor

    import sqlglot

    statement = sqlglot.parse_one("SELECT sum(number) FROM numbers(100000)", dialect="clickhouse")
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda _: warehouse.query(statement).rows, range(64)))
    assert results == [[(4999950000,)]] * 64


def test_warehouse_stream_holds_its_client_until_read_closed_or_failed(
        warehouse: Warehouse) -> None:
    import sqlglot

    from server.settings import OperatingLimits

    one = Warehouse(warehouse.dsn, warehouse.location,
                    limits=OperatingLimits(pool_size=1, queue_timeout=0.3))
    ping = sqlglot.parse_one("SELECT 1", dialect="clickhouse")
    rows = sqlglot.parse_one("SELECT number, toString(number) FROM numbers(1000000)",
                             dialect="clickhouse")
    assert isinstance(rows, sqlglot.exp.Select)
    chunks = one.stream(rows, None, "CSV", chunk_bytes=1024)
    assert next(chunks).startswith(b'0,"0"\n1,"1"\n')
    with pytest.raises(WarehouseBusy):  # the one client is streaming
        one.query(ping)
    chunks.close()
    assert one.query(ping).rows == [(1,)]
    assert b"".join(one.stream(rows, None, "CSV")).count(b"\n") == 1_000_000
    assert one.query(ping).rows == [(1,)]
    failing = sqlglot.parse_one("SELECT throwIf(number = 900000, 'stop') FROM "
                                "numbers(1000000)", dialect="clickhouse")
    assert isinstance(failing, sqlglot.exp.Select)
    with pytest.raises(WarehouseError):
        for _ in one.stream(failing, None, "CSV"):
            pass
    assert one.query(ping).rows == [(1,)]


def test_warehouse_pool_wakes_a_waiting_caller_when_a_client_is_given_back(
        warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    """Callers waiting for a client take one as it is given back; past the queue timeout one
    is answered busy; a broken client's slot is made again."""
    import threading
    import time

    import server.warehouse.pool
    from server.settings import OperatingLimits

    # waiters look again only after 5 s: taking a client sooner is its give-back's wake-up
    monkeypatch.setattr(server.warehouse.pool, "RECHECK_SECONDS", 5.0)

    one = Warehouse(warehouse.dsn, warehouse.location,
                    limits=OperatingLimits(pool_size=2, queue_timeout=2))
    pool = one.pool
    first, second = pool._acquire(), pool._acquire()
    taken: list[tuple[object, float]] = []

    def wait() -> None:
        client = pool._acquire()
        taken.append((client, time.monotonic()))

    waiters = [threading.Thread(target=wait) for _ in range(2)]
    for waiter in waiters:
        waiter.start()
    deadline = time.monotonic() + 2
    while pool._waiting < 2 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert pool._waiting == 2 and not taken  # both are waiting
    given = time.monotonic()
    pool.give_back(first)
    deadline = given + 1
    while not taken and time.monotonic() < deadline:
        time.sleep(0.001)
    assert taken and taken[0][0] is first
    assert taken[0][1] - given < 0.5  # woken, not found at a later look
    pool.give_back(second)
    for waiter in waiters:
        waiter.join(2)
    assert {id(client) for client, _ in taken} == {id(first), id(second)}
    quick = Warehouse(warehouse.dsn, warehouse.location,
                      limits=OperatingLimits(pool_size=1, queue_timeout=0.2))
    held = quick.pool._acquire()
    started = time.monotonic()
    with pytest.raises(WarehouseBusy):
        quick.pool._acquire()
    assert 0.2 <= time.monotonic() - started < 1
    quick.pool._dropped()  # the held client broke: its slot is made again
    assert quick.pool._acquire() is not held
    for client, _ in taken:
        pool.give_back(client)
    one.close()
    quick.close()
