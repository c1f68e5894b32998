"""uvicorn's httptools protocol, with a response's head and body sent in one write.

uvicorn writes the status line and headers of a response as soon as the app sends them, then
the body in a second write: two system calls and, with ``TCP_NODELAY``, two TCP segments for
every small JSON answer. On a cached answer that second write was a quarter of the event
loop's time. Here the head is held until the body's first write, which is appended to it; a
response with no body write (``HEAD``, ``204``) has its head flushed at the end of the loop's
current turn, so nothing waits longer than it did.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _CoalescingTransport:
    """A transport that holds one written head until the next write (or the loop's turn
    ends); everything else is the wrapped transport's."""

    __slots__ = ("_flush_scheduled", "_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._flush_scheduled = False

    def write(self, data: bytes) -> None:
        if self._held is not None:
            data, self._held = self._held + data, None
            self._transport.write(data)
        elif data.startswith(b"HTTP/") and data.endswith(b"\r\n\r\n"):  # a response's head
            self._held = data
            if not self._flush_scheduled:
                self._flush_scheduled = True
                self._loop.call_soon(self._flush)
        else:
            self._transport.write(data)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._held is not None:
            data, self._held = self._held, None
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` writing each response's head together with its body."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
