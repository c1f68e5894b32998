"""A response's head goes out with its body in one write; a head without a body write is
flushed when the event loop's turn ends; anything else passes through as written."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState

from server.http.protocol import CoalescingHttpToolsProtocol, _CoalescingTransport


class _Recorder(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


def test_http_head_and_body_are_one_write() -> None:
    async def respond() -> list[bytes]:
        recorder = _Recorder()
        transport = _CoalescingTransport(recorder, asyncio.get_running_loop())
        transport.write(HEAD)
        assert recorder.writes == []
        transport.write(b"{}")
        await asyncio.sleep(0)
        return recorder.writes

    assert asyncio.run(respond()) == [HEAD + b"{}"]


def test_http_head_alone_is_flushed_when_the_loop_turn_ends() -> None:
    async def respond() -> tuple[list[bytes], list[bytes]]:
        recorder = _Recorder()
        transport = _CoalescingTransport(recorder, asyncio.get_running_loop())
        transport.write(HEAD)
        before = list(recorder.writes)
        await asyncio.sleep(0)
        transport.write(b"chunk")  # not a head: written at once
        return before, recorder.writes

    assert asyncio.run(respond()) == ([], [HEAD, b"chunk"])


def test_http_close_flushes_a_held_head() -> None:
    async def respond() -> _Recorder:
        recorder = _Recorder()
        transport = _CoalescingTransport(recorder, asyncio.get_running_loop())
        transport.write(HEAD)
        transport.close()
        return recorder

    recorder = asyncio.run(respond())
    assert recorder.writes == [HEAD] and recorder.closed


def test_http_protocol_answers_through_uvicorn() -> None:
    """uvicorn's own protocol code drives the held head: a request over a loopback socket gets
    the whole answer."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"{}"})

    async def exchange() -> bytes:
        config = Config(app, log_config=None, access_log=False)
        config.load()
        loop = asyncio.get_running_loop()
        state = ServerState()
        server = await loop.create_server(
            lambda: CoalescingHttpToolsProtocol(config, state, {}, loop), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        await writer.drain()
        data = b""
        while not data.endswith(b"{}"):
            chunk = await asyncio.wait_for(reader.read(65536), 10)
            assert chunk, data
            data += chunk
        writer.close()
        server.close()
        return data

    data = asyncio.run(exchange())
    assert data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(b"\r\n\r\n{}")
