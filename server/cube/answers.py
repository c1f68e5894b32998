"""Cube's use cases over the service layer: a ``load``, ``sql``, ``dry-run`` or ``meta``
request translated (``server.cube.translate``), planned and answered through the same path as
``/v1/query`` (plan cache, result cache, rollup routing, the caller's row-level security), and
its body in Cube's shape. The routes (``server.api.cube``) only read requests and wrap bodies.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

import msgspec

from engine.query.request import QueryError
from engine.serving.plan import Plan
from server.auth.principal import current_access
from server.cube.members import Cubes
from server.cube.meta import cube_meta
from server.cube.queries import REGULAR, pivot_query, translate_queries
from server.cube.results import DATA_SOURCE, query_order, result_object, result_rows, used_rollups
from server.cube.translate import Translated
from server.http.serialize import encode, json_value
from server.runtime.cache import Cached
from server.runtime.compiled import Answer, Runtime
from server.runtime.state import State
from server.service.answers import current_runtime, serve_answer
from server.service.queries import explain_plan


@dataclass(frozen=True, slots=True)
class CubeBody:
    """An answer in Cube's shape: the encoded body, the main table read, whether every
    result came from the cache."""

    body: bytes
    table: str | None = None
    hit: bool | None = None


def parse_query_value(value: object) -> object:
    """The ``query`` parameter: JSON text (GET) or already a JSON value (POST)."""
    if value is None or value == "undefined":
        raise QueryError("query", "Query param is required")
    if isinstance(value, str):
        try:
            return msgspec.json.decode(value)
        except (msgspec.DecodeError, RecursionError) as exc:
            raise QueryError("query", f"Unable to decode query param as JSON, error: "
                             f"{exc}") from None
    return value


def _used(plan: Plan) -> dict[str, Any] | None:
    rollups = {p.rollup.qualified_table: p.rollup.name for p in plan.pieces
               if p.rollup is not None}
    return used_rollups(plan.tables, rollups, plan.query.source)


def _now_text() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


class CubeAnswers:
    """Cube's requests answered from the current runtime; Cube's view of the model is rebuilt
    when the model is."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.limits = state.limits.query
        self._for: object = None
        self._cubes: Cubes | None = None

    def cubes(self, runtime: Runtime) -> Cubes:
        if self._for is not runtime.compiled or self._cubes is None:
            self._cubes, self._for = Cubes(runtime.compiled.sources), runtime.compiled
        return self._cubes

    async def translated(self, raw: object) -> tuple[Runtime, str, list[Translated]]:
        runtime = await current_runtime(self.state)
        query_type, translated = translate_queries(
            parse_query_value(raw), self.cubes(runtime), datetime.now(UTC), self.limits)
        return runtime, query_type, translated

    async def total_rows(self, translated: Translated) -> int:
        """Rows of the whole answer (Cube's ``total``), through the same serving path."""
        query = replace(translated.query, limit=self.limits.rows, offset=0, order=())

        def render(answer: Answer) -> bytes:
            return encode([answer.count, answer.truncated])

        cached, _ = await serve_answer(self.state, "cube-total", query, render)
        count, truncated = msgspec.json.decode(cached.body)
        if truncated:
            raise QueryError("total", f"'total' counts at most {self.limits.rows} rows "
                             "(SEMANTIC_MAX_ROWS); this answer has more")
        return int(count)

    async def result(self, translated: Translated, query_type: str) -> tuple[Cached, bool]:
        """One query's result object, encoded (cached like every answer)."""
        total = await self.total_rows(translated) if translated.total else None
        shape = ("cube", query_type, encode(translated.normalized), translated.compare,
                 translated.blend, total)

        def render(answer: Answer) -> bytes:
            plan = answer.plan
            data = result_rows(translated, plan.columns, answer.values)
            return encode(result_object(translated, query_type, data, _now_text(),
                                        _used(plan), explain_plan(plan), total))

        return await serve_answer(self.state, shape, translated.query, render, route="cube")

    async def load(self, raw: object, multi: object) -> CubeBody:
        """``load``: one result object, or (``queryType=multi``) every query's."""
        _, query_type, translated = await self.translated(raw)
        if query_type != REGULAR and multi != "multi":
            raise QueryError("queryType", f"'{query_type}' query type is not supported by the "
                             "client. Please update the client.")
        answers = [await self.result(t, query_type) for t in translated]
        first, _ = answers[0]
        body = first.body
        if multi == "multi":
            body = (b'{"queryType":' + encode(query_type) + b',"results":[' +
                    b",".join(cached.body for cached, _ in answers) + b'],"pivotQuery":' +
                    encode(pivot_query(query_type, translated)) + b',"slowQuery":false}')
        return CubeBody(body, first.table, all(hit for _, hit in answers))

    async def _planned(self, raw: object) -> tuple[str, list[tuple[Translated, Plan]]]:
        runtime, query_type, translated = await self.translated(raw)
        plans = []
        for each in translated:
            query = each.query
            plans.append((each, await self.state.dispatcher.offload(
                partial(runtime.plan, query))))
        return query_type, plans

    async def sql(self, raw: object) -> CubeBody:
        """``sql``: each query's SQL, parameters and routing."""
        query_type, plans = await self._planned(raw)
        bodies = []
        for translated, plan in plans:
            used = _used(plan)
            bodies.append({"sql": {
                "sql": [plan.sql, [json_value(v) for v in plan.parameters.values()]],
                "parameters": {k: json_value(v) for k, v in plan.parameters.items()},
                "order": query_order(translated.columns, plan.query.order),
                "aliasNameToMember": {c: translated.columns[c].key for c in plan.columns},
                "preAggregations": list((used or {}).values()), "external": False,
                "dataSource": DATA_SOURCE, "routing": explain_plan(plan)},
                "dataSource": DATA_SOURCE})
        return CubeBody(encode(bodies[0] if query_type == REGULAR else bodies),
                        plans[0][1].table)

    async def dry_run(self, raw: object) -> CubeBody:
        """``dry-run``: the queries as Cube normalizes them, and how each would be answered."""
        query_type, plans = await self._planned(raw)
        translated = [t for t, _ in plans]
        body = {"queryType": query_type,
                "normalizedQueries": [{**t.normalized, "queryType": query_type}
                                      for t in translated],
                "queryOrder": [query_order(t.columns, p.query.order) for t, p in plans],
                "transformedQueries": [explain_plan(p) for _, p in plans],
                "pivotQuery": pivot_query(query_type, translated)}
        return CubeBody(encode(body), plans[0][1].table)

    async def meta(self) -> CubeBody:
        """``meta``: the cubes, only the members the caller may read."""
        runtime = await current_runtime(self.state)
        cubes = self.cubes(runtime)
        described = cube_meta(cubes)
        access = current_access()
        if access is not None and access.members is not None:
            allowed = access.members
            for cube in described["cubes"]:
                members = cubes.members[cube["name"]]
                for kind in ("measures", "dimensions"):
                    cube[kind] = [m for m in cube[kind]
                                  if (member := members[m["name"].split(".", 1)[1]]).kind == "time"
                                  or member.query_name in allowed]
        return CubeBody(encode(described))
