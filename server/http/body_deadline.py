"""A deadline on request bodies: a body that has not fully arrived ``body_timeout`` seconds
after the request started is cut off with 408, so a client trickling bytes cannot hold a
connection and a worker (``SEMANTIC_BODY_TIMEOUT``).

A plain ASGI middleware around ``receive``: it adds one clock read per body chunk.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send


class BodyTimeout(HTTPException):
    status_code = 408


def body_deadline_middleware(seconds: float) -> Callable[[ASGIApp], ASGIApp]:
    """A middleware (Litestar calls it with the app) with a ``seconds`` deadline."""

    def middleware(app: ASGIApp) -> ASGIApp:
        async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP:
                await app(scope, receive, send)
                return
            deadline = time.monotonic() + seconds
            complete = False

            async def receive_by_deadline() -> ReceiveMessage:
                nonlocal complete
                if complete:  # after the body, only the disconnect is left to wait for
                    return await receive()
                remaining = deadline - time.monotonic()
                try:
                    if remaining <= 0:
                        raise TimeoutError
                    message = await asyncio.wait_for(receive(), remaining)
                except TimeoutError:
                    raise BodyTimeout(detail=f"the request body did not arrive within "
                                      f"{seconds:g} s (SEMANTIC_BODY_TIMEOUT)") from None
                if message["type"] != "http.request" or not message.get("more_body", False):
                    complete = True
                return message

            await app(scope, receive_by_deadline, send)

        return guarded

    return middleware
