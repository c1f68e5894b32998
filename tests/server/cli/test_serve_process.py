"""A real ``semantic serve`` process: SIGTERM with requests in flight, recovery when the
warehouse comes back, ``semantic load`` all or nothing, slow bodies cut off."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
ROW = {"event_id": "e", "event_ts": "2026-04-01 00:00:00", "user_id": "u", "region": "r",
       "revenue": 1}


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CLICKHOUSE_URL"}
    env["SEMANTIC_DATA_DIR"] = str(data_dir)
    env.update(extra)
    return env


def semantic(data_dir: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "server.cli", *args], cwd=ROOT,
                          env=_env(data_dir, **extra), capture_output=True, text=True,
                          timeout=300)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@contextmanager
def serving(data_dir: Path, **extra: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``semantic serve`` on a free port, once it listens (liveness answers)."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--port",
                                str(port)], cwd=ROOT, env=_env(data_dir, **extra),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.communicate()[0]
            try:
                if _get(f"{url}/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the server did not start listening"
            time.sleep(0.1)
        yield process, url
    finally:
        if process.poll() is None:
            process.terminate()
        process.communicate(timeout=60)


def slow_post(url: str, path: str, body: bytes, pause: float, chunk: int = 4,
              replies: list[tuple[int, str]] | None = None) -> tuple[int, str]:
    """POST ``body`` a few bytes at a time; (status, body) of the reply, (0, reason) when the
    connection was closed without one."""
    host, port = url.removeprefix("http://").split(":")
    reply: tuple[int, str]
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: "
                     f"application/json\r\nContent-Length: {len(body)}\r\nConnection: close"
                     "\r\n\r\n".encode())
        try:
            for start in range(0, len(body), chunk):
                sock.sendall(body[start:start + chunk])
                time.sleep(pause)
        except OSError:
            pass  # the server cut the body off; its answer may still be there
        received = b""
        try:
            while piece := sock.recv(65536):
                received += piece
        except OSError as exc:
            reply = (0, type(exc).__name__)
        if received:
            head, _, content = received.partition(b"\r\n\r\n")
            reply = (int(head.split()[1]), content.decode())
        elif "reply" not in locals():
            reply = (0, "closed")
    if replies is not None:
        replies.append(reply)
    return reply


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("serve-chdb")
    assert semantic(path, "demo", "--rows", "1000").returncode == 0
    assert semantic(path, "apply").returncode == 0
    return path


def test_serve_sigterm_lets_requests_finish_within_the_grace_period_then_cuts_them(
        data_dir: Path) -> None:
    with serving(data_dir, SEMANTIC_SHUTDOWN_GRACE="10") as (process, url):
        path = "/v1/sources/events/rows"
        short = json.dumps([dict(ROW, region="graceful", event_id=f"g{i}")
                            for i in range(3)]).encode()
        long = json.dumps([dict(ROW, region="cut", event_id=f"c{i}")
                           for i in range(50)]).encode()
        short_replies: list[tuple[int, str]] = []
        long_replies: list[tuple[int, str]] = []
        senders = [  # the short body arrives in about 0.5 s, the long one would take 60 s
            threading.Thread(target=slow_post, args=(url, path, short, 0.1), daemon=True,
                             kwargs={"chunk": max(1, len(short) // 5),
                                     "replies": short_replies}),
            threading.Thread(target=slow_post, args=(url, path, long, 0.2), daemon=True,
                             kwargs={"chunk": max(1, len(long) // 300),
                                     "replies": long_replies})]
        for sender in senders:
            sender.start()
        time.sleep(0.5)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        with pytest.raises(OSError):  # no longer accepting
            socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=2)
        process.wait(timeout=30)
        assert time.monotonic() - started < 10 + 5  # the grace period, then out
        for sender in senders:
            sender.join(timeout=30)
        assert short_replies and short_replies[0][0] == 200, short_replies
        assert json.loads(short_replies[0][1])["inserted"] == 3
        assert not long_replies or long_replies[0][0] != 200, long_replies
        # the cut request is logged as cut (503), not as a 500 with a traceback
        assert process.stdout is not None
        output = process.stdout.read()
        assert "Traceback" not in output and "Exception in ASGI" not in output, output
        assert f"POST {path} 503" in output and "cut at shutdown" in output, output
        assert f"POST {path} 500" not in output, output
    counts = semantic(data_dir, "query", "-m", "total_events", "-d", "region", "-f",
                      "region=graceful,cut", "--json")
    assert counts.returncode == 0, counts.stderr
    # the finished batch is in whole, the cut one not even in part
    assert json.loads(counts.stdout)["data"] == [{"region": "graceful", "total_events": 3}]


@contextmanager
def engine_held(data_dir: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the embedded data directory until the block ends."""
    holder = textwrap.dedent(f"""
        import sys, clickhouse_connect
        client = clickhouse_connect.get_client(dsn="chdb://{data_dir}")
        client.query("SELECT 1")
        print("ready", flush=True)
        sys.stdin.read()
    """)
    process = subprocess.Popen([sys.executable, "-c", holder], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    try:
        yield process
    finally:
        if process.poll() is None:
            process.communicate(input="", timeout=30)


def test_serve_listens_at_once_and_resumes_when_the_warehouse_is_back(data_dir: Path) -> None:
    with engine_held(data_dir) as holder, serving(data_dir) as (_, url):
        status, ready = _get(f"{url}/readyz")
        assert status == 503 and "in use by another process" in str(ready["reason"])
        status, answer = _get(f"{url}/api/metrics")
        assert status == 503
        meta = _get(f"{url}/v1/meta")[1]
        assert meta["compiled"] is False
        holder.communicate(input="", timeout=30)  # the warehouse is back
        deadline = time.monotonic() + 30
        while _get(f"{url}/readyz")[0] != 200:
            assert time.monotonic() < deadline, "the server did not resume by itself"
            time.sleep(0.2)
        status, answer = _get(f"{url}/api/metrics")
        assert status == 200 and int(str(answer["total_events"])) >= 1000
        assert _get(f"{url}/v1/meta")[1]["compiled"] is True


def test_serve_load_is_all_or_nothing_takes_large_files_and_cuts_slow_bodies(data_dir: Path,
                                                            tmp_path: Path) -> None:
    # 4 rows, batches of 3, the 4th bad: nothing goes in, and the file's line is named
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(dict(ROW, region="atomic")) + "\n" for _ in range(3))
                   + json.dumps(dict(ROW, region="atomic", revenue="lots")) + "\n")
    direct = semantic(data_dir, "load", "events", str(bad), "--batch-rows", "3")
    assert direct.returncode == 2
    assert "line 4, column 'revenue'" in direct.stderr and "nothing was inserted" in \
        direct.stdout
    big = tmp_path / "big.jsonl"  # about 12 MB of JSON lines, in one batch by default
    line = json.dumps(dict(ROW, region="big", user_id="u" * 60, event_id="x" * 20)) + "\n"
    count = 12_000_000 // len(line)
    big.write_text(line * count)
    small = tmp_path / "small.csv"  # 25 rows in batches of 10: staged, then one statement
    small.write_text("event_id,event_ts,user_id,region,revenue\n" + "".join(
        f"s{i},2026-04-01 00:00:00,u{i},staged,{i}\n" for i in range(25)))
    with serving(data_dir, SEMANTIC_BODY_TIMEOUT="2") as (_, url):
        # a body that arrives too slowly is cut off with 408, not held to its end
        started = time.monotonic()
        status, text = slow_post(url, "/v1/sources/events/rows", json.dumps(
            [dict(ROW, region="slow")]).encode(), pause=0.2)
        assert time.monotonic() - started < 2 + 0.2 * 3 + 2
        assert status == 408, text
        assert "SEMANTIC_BODY_TIMEOUT" in json.loads(text)["error"]["message"]
        through = semantic(data_dir, "load", "events", str(bad), "--batch-rows", "3",
                           "--server", url)
        assert through.returncode == 2 and "(field: line 4.revenue)" in through.stderr
        loaded = semantic(data_dir, "load", "events", str(big), "--server", url)
        assert loaded.returncode == 0, loaded.stderr
        staged = semantic(data_dir, "load", "events", str(small), "--batch-rows", "10",
                          "--server", url)
        assert staged.returncode == 0, staged.stderr
        assert "staged 20 rows, batch 2 of 3" in staged.stdout
        assert "load: 25 rows into source 'events'" in staged.stdout
        assert "(one statement)" in staged.stdout
        counts = {}
        for region in ("atomic", "big", "staged", "slow"):
            request = urllib.request.Request(f"{url}/v1/query", method="POST", data=json.dumps(
                {"measures": ["total_events"],
                 "filters": [{"member": "region", "value": region}]}).encode())
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                data = json.loads(response.read())["data"]
            counts[region] = data[0]["total_events"] if data else 0
    assert counts == {"atomic": 0, "big": count, "staged": 25, "slow": 0}


def test_serve_speaks_sql_on_its_port_and_refuses_an_open_sql_address(data_dir: Path) -> None:
    import psycopg

    sql_port = free_port()
    with serving(data_dir, SEMANTIC_SQL_PORT=str(sql_port)) as (process, url):
        total = _get(f"{url}/api/metrics")[1]["total_events"]
        dsn = f"postgresql://analyst@127.0.0.1:{sql_port}/semantic?sslmode=disable"
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT COUNT(*) FROM events").fetchone() == (total,)
        process.terminate()
        banner = process.communicate(timeout=60)[0]
    assert f"sql:       postgresql://127.0.0.1:{sql_port}/semantic" in banner
    refused = semantic(data_dir, "serve", "--port", str(free_port()), "--sql-port",
                       str(free_port()), SEMANTIC_SQL_HOST="0.0.0.0")
    assert refused.returncode != 0
    assert "refusing to listen on 0.0.0.0 without access control" in refused.stderr
