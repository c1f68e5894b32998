"""Threads that run calls the event loop hands them, each result handed back with one
wake-up of the loop.

``loop.run_in_executor`` over a ``ThreadPoolExecutor`` chains two futures (the executor's and
the loop's) through callbacks, locks and a state copy: about 34 us of CPU per round trip on a
warm cache, and several times that on the cold one a request meets right after a query. A
queue the threads block on and ``call_soon_threadsafe`` with the result cost about a third of
it. At 8 connections every request on a 2-core machine makes a round trip, so this is a few
percent of its CPU.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

logger = logging.getLogger(__name__)

#: a call handed to the threads: the loop and future to answer, the caller's context, the call
_Item = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", contextvars.Context,
              Callable[[], Any]]


def _deliver(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():  # its caller may have been cancelled meanwhile
        future.set_result(result)


def _fail(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


class Handoff:
    """``size`` threads (started on first use) running the calls handed to them in turn."""

    def __init__(self, size: int, name: str) -> None:
        self.size = size
        self.name = name
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._start = threading.Lock()

    async def run(self, call: Callable[[], T]) -> T:
        """The result of ``call``, run on one of the threads in the caller's context (its
        request id, caller and statistics); its exception, raised here."""
        if len(self._threads) < self.size:
            self._grow()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((loop, future, contextvars.copy_context(), call))
        return await future

    def _grow(self) -> None:
        with self._start:
            while len(self._threads) < self.size:
                thread = threading.Thread(target=self._work, args=(self._queue,), daemon=True,
                                          name=f"{self.name}-{len(self._threads)}")
                thread.start()
                self._threads.append(thread)

    def _work(self, calls: queue.SimpleQueue[_Item | None]) -> None:
        while (item := calls.get()) is not None:
            self._run(*item)
            item = None  # nothing of a request outlives its answer here

    def _run(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any],
             context: contextvars.Context, call: Callable[[], Any]) -> None:
        try:
            result = context.run(call)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            self._answer(loop, _fail, future, exc)
        else:
            self._answer(loop, _deliver, future, result)

    @staticmethod
    def _answer(loop: asyncio.AbstractEventLoop, how: Callable[..., None],
                future: asyncio.Future[Any], value: object) -> None:
        try:
            loop.call_soon_threadsafe(how, future, value)
        except RuntimeError:  # the loop has closed: nobody waits for it any more
            logger.debug("a call ended after its event loop closed")

    def close(self) -> None:
        """End the threads once the calls handed to them are done (a later call starts new
        ones, on a queue of their own)."""
        with self._start:
            threads, self._threads = self._threads, []
            calls, self._queue = self._queue, queue.SimpleQueue()
        for _ in threads:
            calls.put(None)
