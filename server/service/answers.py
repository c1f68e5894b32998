"""The answering path shared by ``/v1/query``, the generated endpoints, the Cube API and MCP.

On the event loop: the plan of a query asked before (a dict lookup) and the result cache (a
dict lookup), so a repeated query is answered without leaving the loop. The first planning of
a query runs where ``server.runtime.dispatch`` places it (in place for a query with few filter
values, else on a worker thread), and so does the query of a miss (in place for a
lone request on a cheap plan, else on a worker thread).

A miss on a query over an aligned time range (``engine.serving.slices``) is cut from the answer
to the same query over all time, kept in the result cache beside the encoded answers (at the
same data version, so never stale) when that answer is read from rollups alone, cheaply, and is
complete.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import replace

from anyio import to_thread

from engine.model.compiled import CompiledSource
from engine.query.request import Filter, FilterNode, Query
from engine.serving.plan import Plan
from engine.serving.slices import bucket_starts, cut, whole_query
from server.observability.metrics import FROM_CACHE, count_answer
from server.observability.requests import after_response, note_answer
from server.runtime.cache import Cached, ResultCache
from server.runtime.compiled import Answer, Runtime
from server.runtime.dispatch import INLINE_MAX_MS, runs_in_place
from server.runtime.state import State

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


async def serve_answer(state: State, shape: Hashable, query: Query,
                       render: Callable[[Answer], bytes],
                       route: str | None = None) -> tuple[Cached, bool]:
    """The encoded answer to ``query`` (``render`` encodes a fresh one) and whether it was a
    cache hit. ``shape`` tells answers of the same query in different bodies apart; ``route``
    names the answer in the request log."""
    runtime = await current_runtime(state)
    cache = state.cache
    plan = runtime.cached_plan(query)
    found: Cached | None = None
    hit = False
    if plan is None and cache.enabled and not query.force_raw and _may_cut(query):
        # a query not planned before may be a range of a whole answer kept: cut on the loop
        found, hit = _unplanned(runtime, cache, shape, query, render)
    if found is None:
        if plan is None:
            plan = await state.dispatcher.plan(_small(query), lambda: runtime.plan(query))
        # the normalized query: resolved range and zone, limits, and every filter added
        # before planning (row-level security included)
        key = (shape, plan.query)
        found = cache.get(key)
        hit = found is not None
        if found is None:
            planned = plan

            def compute() -> Cached:
                answer = None
                if cache.enabled and not planned.query.force_raw:
                    answer = cut_answer(runtime, cache, planned)
                return _encoded(render, answer or runtime.run(planned))

            found = await state.dispatcher.run(runs_in_place(plan),
                                               lambda: cache.fetch(key, compute))
    after_response(count_answer, found.source, found.rollup, query.force_raw)
    note_answer(found.tables, found.rows, route=route)
    return found, hit


def whole_query_time(source: CompiledSource) -> str:
    """The time column of a source whose query ``whole_query`` accepted."""
    assert source.time is not None
    return source.time.name


#: filter values up to which a query is normalized and planned on the event loop (more: on
#: a thread)
LOOP_FILTER_VALUES = 64


def _may_cut(query: Query) -> bool:
    """Whether a query may be a range of a kept whole answer, and is small enough to normalize
    on the event loop: a range, a grain, and few filter values."""
    if query.time_range is None or query.grain is None:
        return False
    return _small(query)


def _small(query: Query) -> bool:
    """Whether a query has few enough filter values to be normalized and planned on the
    event loop (its plan takes about a millisecond)."""
    budget = LOOP_FILTER_VALUES
    nodes: list[FilterNode] = [*query.filters, *query.having]
    while nodes:
        node = nodes.pop()
        if isinstance(node, Filter):
            budget -= len(node.values)
        else:
            nodes.extend(node.items)
        if budget < 0:
            return False
    return True


def _encoded(render: Callable[[Answer], bytes], answer: Answer) -> Cached:
    used = answer.plan
    return Cached(render(answer), used.table, used.tables, answer.count,
                  used.rollup.name if used.rollup else None, used.query.source or "")


def _unplanned(runtime: Runtime, cache: ResultCache, shape: Hashable, query: Query,
               render: Callable[[Answer], bytes]) -> tuple[Cached | None, bool]:
    """The answer to a query without a plan yet, if it needs none: stored under its normalized
    query, or cut from a kept whole answer (then stored); (None, False) otherwise. Normalizing
    costs a fraction of planning, and neither needs a thread."""
    normalized = runtime.normalized(query)
    key = (shape, normalized)
    found = cache.get(key)
    if found is not None:
        return found, True
    source = runtime.compiled.sources[runtime.source_name(normalized.source)]
    whole = whole_query(source, normalized)
    whole_plan = runtime.cached_plan(whole, secured=True) if whole is not None else None
    if whole_plan is None:
        return None, False
    version = cache.version
    kept = cache.get(("whole", whole_plan.query))
    answer = _cut(cache, whole_plan, kept, normalized) if kept is not None else None
    if answer is None:
        return None, False
    found = _encoded(render, answer)
    cache.misses += 1
    cache.store(key, found, version)
    return found, False


def cut_answer(runtime: Runtime, cache: ResultCache, plan: Plan) -> Answer | None:
    """The answer to ``plan``'s query cut from the kept answer to its whole range (computed and
    kept now if missing), or None when it cannot be: the query is not one of an aligned range,
    it is the first range asked of its whole query (a query asked once pays for no more than
    itself), the whole answer would cost more than a query run in place, or it has more rows
    than are kept.

    The whole answer must be estimated as cheap as a query run in place: read from rollups,
    with at most empty raw edges (all time in a zone whose days a rollup's buckets do not
    align with starts with an edge before any stored time)."""
    source = runtime.compiled.sources[runtime.source_name(plan.query.source)]
    whole = whole_query(source, plan.query)
    if whole is None:
        return None
    whole_plan = runtime.cached_plan(whole, secured=True)
    if whole_plan is None:
        if not cache.asked_before(whole):  # the first range asked of it: run just that
            return None
        whole_plan = runtime.plan(whole, secured=True)
    chosen = next((c for c in whole_plan.candidates if c.chosen), None)
    if whole_plan.rollup is None or chosen is None or chosen.estimate is None or \
            chosen.estimate > INLINE_MAX_MS:
        return None

    def keep() -> Cached:
        answer = runtime.run(whole_plan)
        assert whole is not None and whole.timezone is not None
        starts = None if answer.truncated else bucket_starts(
            answer.values, whole_plan.columns, whole_query_time(source), whole.timezone)
        # an answer that cannot be cut is kept as a mark (no values), not queried again
        return Cached(b"", whole_plan.table, whole_plan.tables, answer.count,
                      whole_plan.rollup.name if whole_plan.rollup else None, source.name,
                      answer.values if starts is not None else None, answer.truncated, starts)

    return _cut(cache, whole_plan, cache.fetch(("whole", whole_plan.query), keep), plan.query)


def _cut(cache: ResultCache, whole_plan: Plan, kept: Cached, query: Query) -> Answer | None:
    """``query``'s answer cut from ``kept``, the answer to ``whole_plan``; its plan is the
    whole plan over ``query`` (the tables the numbers were read from)."""
    if kept.values is None or kept.starts is None or kept.truncated:
        return None
    started = time.perf_counter()
    values, truncated = cut(kept.values, kept.starts, query)
    cache.cuts += 1
    return Answer(replace(whole_plan, query=query), values, truncated,
                  (time.perf_counter() - started) * 1000, FROM_CACHE)
