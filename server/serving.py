"""The answering path shared by ``/v1/query`` and the generated endpoints.

On the event loop: the plan of a query asked before (a dict lookup) and the result cache (a
dict lookup), so a repeated query is answered without leaving the loop. The first planning of
a query runs on a worker thread; the query of a miss runs where ``server.dispatch`` places it
(in place for a lone request on a cheap plan, else on a worker thread).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from anyio import to_thread

from engine.query import Query
from server.cache import Cached
from server.dispatch import runs_in_place
from server.observability.metrics import count_answer
from server.observability.requests import note_answer
from server.runtime import Answer, Runtime
from server.state import State

#: response header saying whether the answer came from the result cache
CACHE_HEADER = "X-Semantic-Cache"
HIT, MISS = "hit", "miss"


async def current_runtime(state: State) -> Runtime:
    """The running runtime; compiled on a worker thread the first time (it reads the
    warehouse)."""
    runtime = state.started
    if runtime is None:
        runtime = await to_thread.run_sync(state.runtime)
    return runtime


async def serve_answer(state: State, shape: Hashable, query: Query, force_raw: bool,
                       render: Callable[[Answer], bytes],
                       route: str | None = None) -> tuple[Cached, bool]:
    """The encoded answer to ``query`` (``render`` encodes a fresh one) and whether it was a
    cache hit. ``shape`` tells answers of the same query in different bodies apart; ``route``
    names the answer in the request log."""
    runtime = await current_runtime(state)
    plan = runtime.cached_plan(query, force_raw)
    if plan is None:
        plan = await to_thread.run_sync(runtime.plan, query, force_raw)
    # the normalized query: resolved range and zone, limits, and every filter added before
    # planning (row-level security included)
    key = (shape, plan.query, force_raw)
    cache = state.cache
    found = cache.get(key)
    hit = found is not None
    if found is None:
        def compute() -> Cached:
            answer = runtime.run(plan)
            return Cached(render(answer), plan.table, plan.tables, answer.count,
                          plan.rollup.name if plan.rollup else None, plan.query.source or "")

        found = await state.dispatcher.run(runs_in_place(plan),
                                           lambda: cache.fetch(key, compute))
    count_answer(found.source, found.rollup, force_raw)
    note_answer(found.tables, found.rows, route=route)
    return found, hit
