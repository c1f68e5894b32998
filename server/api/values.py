"""Distinct values of a dimension, for pickers (the explore page's filters):
``GET /v1/sources/{source}/dimensions/{dimension}/values``.

Read-only and bounded: an ordinary query (one dimension, no measure) through the normal
planner, so a rollup holding the dimension answers it and the raw table is read only when
none does.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.handlers import HTTPRouteHandler

from engine.query.request import QueryError
from semantic.suggest import did_you_mean, shown
from server.http.responses import TABLE_HEADER, json_response
from server.runtime.state import State
from server.service.values import DEFAULT_LIMIT, dimension_values

PARAMETERS = ("limit", "contains")


def _limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    try:
        limit = int(text)
    except ValueError:
        raise QueryError("limit", f"limit must be an integer, not '{shown(text)}'") from None
    return limit



def route_handlers(state: State) -> list[HTTPRouteHandler]:
    @get("/v1/sources/{source_name:str}/dimensions/{dimension:str}/values", sync_to_thread=True)
    def values(request: Request[Any, Any, Any]) -> Response[bytes]:
        for key in request.query_params:
            if key not in PARAMETERS:
                raise QueryError(shown(key), f"unknown query parameter '{shown(key)}'"
                                 f"{did_you_mean(key, PARAMETERS)}; use "
                                 f"{', '.join(PARAMETERS)}")
        answer = dimension_values(state, request.path_params["source_name"],
                                  request.path_params["dimension"],
                                  _limit(request.query_params.get("limit")),
                                  request.query_params.get("contains"))
        return json_response(answer, headers={TABLE_HEADER: answer["table"]})

    return [values]
