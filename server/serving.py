"""The answering path shared by ``/v1/query`` and the generated endpoints.

On the event loop: the plan of a query asked before (a dict lookup) and the result cache (a
dict lookup), so a repeated query is answered without leaving the loop. The first planning of
a query runs on a worker thread; the query of a miss runs where ``server.dispatch`` places it
(in place for a lone request on a cheap plan, else on a worker thread).

A miss on a query over an aligned time range (``engine.slices``) is cut from the answer to the
same query over all time, kept in the result cache beside the encoded answers (at the same data
version, so never stale) when that answer is read from rollups alone, cheaply, and is complete.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import replace

from anyio import to_thread

from engine.planner import Plan
from engine.query import Query
from engine.slices import cut, whole_query
from server.cache import Cached, ResultCache
from server.dispatch import INLINE_MAX_MS, runs_in_place
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
            answer = None
            if cache.enabled and not force_raw:
                answer = cut_answer(runtime, cache, plan)
            if answer is None:
                answer = runtime.run(plan)
            used = answer.plan
            return Cached(render(answer), used.table, used.tables, answer.count,
                          used.rollup.name if used.rollup else None, plan.query.source or "")

        found = await state.dispatcher.run(runs_in_place(plan),
                                           lambda: cache.fetch(key, compute))
    count_answer(found.source, found.rollup, force_raw)
    note_answer(found.tables, found.rows, route=route)
    return found, hit


def cut_answer(runtime: Runtime, cache: ResultCache, plan: Plan) -> Answer | None:
    """The answer to ``plan``'s query cut from the kept answer to its whole range (computed and
    kept now if missing), or None when it cannot be: the query is not one of an aligned range,
    the whole answer would read the raw table or cost more than an in-place query, or it has
    more rows than are kept. The answer's plan names the tables its numbers were read from.

    The whole answer must be estimated as cheap as a query run in place: read from rollups,
    with at most empty raw edges (all time in a zone whose days a rollup's buckets do not
    align with starts with an edge before any stored time)."""
    source = runtime.compiled.sources[plan.query.source]
    whole = whole_query(source, plan.query)
    if whole is None or source.time is None:
        return None
    whole_plan = runtime.cached_plan(whole, secured=True) or runtime.plan(whole, secured=True)
    chosen = next((c for c in whole_plan.candidates if c.chosen), None)
    if whole_plan.rollup is None or chosen is None or chosen.estimate is None or \
            chosen.estimate > INLINE_MAX_MS:
        return None

    def keep() -> Cached:
        answer = runtime.run(whole_plan)
        return Cached(b"", whole_plan.table, whole_plan.tables, answer.count,
                      whole_plan.rollup.name if whole_plan.rollup else None,
                      whole.source, answer.values, answer.truncated)

    kept = cache.fetch(("whole", whole_plan.query), keep)
    if kept.values is None or kept.truncated:
        return None
    started = time.perf_counter()
    found = cut(kept.values, plan.columns, plan.query, source.time.name)
    if found is None:
        return None
    values, truncated = found
    cache.cuts += 1
    used = replace(plan, rollup=whole_plan.rollup, table=whole_plan.table,
                   pieces=whole_plan.pieces, statement=whole_plan.statement, sql=whole_plan.sql,
                   parameters=whole_plan.parameters)
    return Answer(used, values, truncated, (time.perf_counter() - started) * 1000)
