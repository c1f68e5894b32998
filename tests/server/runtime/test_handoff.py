"""Calls handed to threads come back to the event loop: results, exceptions, the caller's
context; a cancelled caller and a closed loop harm nothing; closed threads end."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time

import pytest

from server.runtime.handoff import Handoff

CALLER: contextvars.ContextVar[str] = contextvars.ContextVar("caller", default="nobody")


def test_results_exceptions_and_the_callers_context_come_back() -> None:
    handoff = Handoff(2, "test")

    def who() -> tuple[str, str]:
        return CALLER.get(), threading.current_thread().name

    def fails() -> None:
        raise KeyError("missing")

    async def main() -> None:
        CALLER.set("alice")
        caller, thread = await handoff.run(who)
        assert caller == "alice" and thread.startswith("test-")
        assert thread != threading.current_thread().name
        with pytest.raises(KeyError, match="missing"):
            await handoff.run(fails)
        found = await asyncio.gather(*(handoff.run(lambda n=n: n * n) for n in range(20)))
        assert found == [n * n for n in range(20)]

    try:
        asyncio.run(main())
    finally:
        handoff.close()


def test_a_cancelled_caller_and_a_closed_loop_harm_nothing() -> None:
    handoff = Handoff(1, "test")
    started, finished = threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        time.sleep(0.2)
        finished.set()
        return "late"

    async def cancelled() -> None:
        task = asyncio.ensure_future(handoff.run(slow))
        await asyncio.to_thread(started.wait)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await handoff.run(lambda: "next") == "next"  # after the slow one, in turn

    async def abandoned() -> None:
        finished.clear()
        asyncio.ensure_future(handoff.run(slow))
        await asyncio.to_thread(started.wait)

    try:
        asyncio.run(cancelled())
        started.clear()
        asyncio.run(abandoned())  # the loop closes while the call runs
        assert finished.wait(2)
        assert asyncio.run(handoff.run(lambda: "still serving")) == "still serving"
    finally:
        handoff.close()


def test_closed_threads_end_and_later_calls_start_new_ones() -> None:
    handoff = Handoff(3, "test")
    asyncio.run(handoff.run(lambda: None))
    first = list(handoff._threads)
    assert len(first) == 3
    handoff.close()
    for thread in first:
        thread.join(2)
        assert not thread.is_alive()
    assert asyncio.run(handoff.run(lambda: threading.current_thread())) not in first
    handoff.close()
