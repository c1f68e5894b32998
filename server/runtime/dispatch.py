"""Where a request's warehouse call runs: on the event loop when the request is the only one
being answered, on a worker thread when several are.

A query on a small rollup costs the embedded engine about 2-3 ms. Handing it to a worker thread
and back costs two thread wake-ups, which on a busy 2-core machine can cost as much as the query
(each waits for a core); a lone request therefore runs its query on the loop itself, where
nothing else is waiting. As soon as a second request is being answered, queries go to worker
threads, one ClickHouse client each, and run in parallel (the engine releases the GIL).

Only cheap queries are run in place: those reading rollups alone, estimated at most
``INLINE_MAX_MS`` by the cost model; the rest always go to a thread. A query run in place never
waits for a ClickHouse client: when none is idle it goes to a thread too.

Cheap queries sent to threads run on as many threads as the pool has clients
(``server.runtime.handoff``: a queue and one wake-up of the loop per answer, a third of an
executor's round trip), and beyond that wait their turn in the threads' queue: a thread that
ends a query takes the next one with the client it has just given back. (With a thread per
query, the threads past the pool's size each wait for a client and are woken to take it,
about 6 % of the throughput at 8 and 32 connections.) A query that waited longer than the
queue timeout is answered ``busy``, as one waiting for a client is. Other queries (raw tables,
long ones) keep threads of their own, so
they never hold up answers from rollups.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from engine.serving.plan import Plan
from server.runtime.handoff import Handoff
from server.warehouse.pool import NoIdleClient
from server.warehouse.statements import Warehouse

T = TypeVar("T")

#: estimated engine time (ms) up to which a lone request's query runs on the event loop
INLINE_MAX_MS = 25.0
#: worker threads for warehouse calls (anyio's default limit, which they used before)
WORKERS = 40


def runs_in_place(plan: Plan) -> bool:
    """Whether a plan is cheap enough to run on the event loop: rollups only, estimated at
    most ``INLINE_MAX_MS``."""
    if any(piece.rollup is None for piece in plan.pieces):
        return False
    chosen = next((c for c in plan.candidates if c.chosen), None)
    return chosen is not None and chosen.estimate is not None and chosen.estimate <= INLINE_MAX_MS


class Dispatcher:
    """Counts the requests waiting for a warehouse call and places each call."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        #: the worker threads of warehouse calls: a plain executor (a hand-off through it
        #: costs less than through anyio's, and a request pays two); made on first use
        self._executor: ThreadPoolExecutor | None = None
        #: the threads of cheap queries, one per client of the pool (the hand-off costing
        #: least, as every request pays it at a few connections)
        self._cheap = Handoff(warehouse.pool.size, "rollup-query")
        #: requests between asking for a warehouse call and its end
        self.active = 0
        #: calls run on the loop and on threads (for tests and monitoring)
        self.in_place = 0
        self.threaded = 0
        #: plans made on the loop (for tests and monitoring)
        self.planned_in_place = 0

    @property
    def executor(self) -> ThreadPoolExecutor:
        executor = self._executor
        if executor is None:
            executor = self._executor = ThreadPoolExecutor(max_workers=WORKERS,
                                                           thread_name_prefix="query")
        return executor

    def close(self) -> None:
        """Let the worker threads end once idle (a later call starts new ones)."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False)
        self._cheap.close()

    async def offload(self, call: Callable[[], T]) -> T:
        """The result of ``call`` run on a worker thread, with the request's context (its
        caller, id and statistics)."""
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(self.executor, context.run,
                                                                call)

    async def plan(self, small: bool, call: Callable[[], T]) -> T:
        """The result of ``call``, which plans a query (no warehouse call): in place when
        ``small``, else on a worker thread, so a large plan never holds up the loop. A small
        plan takes a fraction of a millisecond of the interpreter's time wherever it runs:
        on a thread it holds the interpreter's lock as long, and the hand-off there and back
        adds its own cost, to every request when several are answered at once."""
        if small:
            self.planned_in_place += 1
            return call()
        return await self.offload(call)

    async def _queued(self, call: Callable[[], T]) -> T:
        """The result of a cheap query's ``call``, run on one of the pool's size of threads
        (``busy`` if it waited for one past the queue timeout)."""
        pool = self.warehouse.pool
        latest = time.monotonic() + pool.limits.queue_timeout

        def in_turn() -> T:
            if time.monotonic() > latest:
                raise pool.busy()
            return call()

        return await self._cheap.run(in_turn)

    async def run(self, cheap: bool, call: Callable[[], T]) -> T:
        """The result of ``call`` (which runs a query), run in place when ``cheap`` and no
        other request is waiting for one, else on a worker thread."""
        self.active += 1
        try:
            if cheap:
                # Requests read in the same turn of the loop reach this point first, so a
                # burst is seen as one and goes to threads.
                await asyncio.sleep(0)
                if self.active == 1:
                    try:
                        with self.warehouse.without_waiting():
                            result = call()
                    except NoIdleClient:
                        pass
                    else:
                        self.in_place += 1
                        return result
            self.threaded += 1
            return await (self._queued(call) if cheap else self.offload(call))
        finally:
            self.active -= 1
