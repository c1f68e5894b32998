"""Admin routes: reload the model, apply it (build, switch, drop) while serving."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response, post
from litestar.handlers import HTTPRouteHandler

from semantic.errors import ModelError
from server.api.responses import json_response, semantic_error_json
from server.state import State

logger = logging.getLogger(__name__)


def _refused(action: str, exc: ModelError) -> Response[bytes]:
    """The model file is wrong, not the server: say so in the log, keep serving the old."""
    logger.warning("%s refused, the model has %d error(s); still serving the previous model:"
                   "\n%s", action, len(exc.issues),
                   "\n".join(issue.render() for issue in exc.issues))
    return semantic_error_json(exc, status=422)


def route_handlers(state: State) -> list[HTTPRouteHandler]:
    @post("/v1/admin/reload", sync_to_thread=True, status_code=200)
    def reload() -> Response[bytes]:
        try:
            runtime = state.reload()
        except ModelError as exc:
            return _refused("reload", exc)
        return json_response({"status": "reloaded", "rollups": len(runtime.compiled.rollups),
                              "rollups_ready": sum(r.qualified_table in runtime.ready
                                                   for r in runtime.compiled.rollups),
                              "endpoints": [e.path for e in runtime.model.endpoints]})

    @post("/v1/admin/apply", sync_to_thread=True, status_code=200)
    def apply(request: Request[Any, Any, Any]) -> Response[bytes]:
        keep_unused = request.query_params.get("keep_unused", "false").lower() in ("1", "true")
        try:
            log = state.apply(keep_unused)
        except ModelError as exc:
            return _refused("apply", exc)
        logger.info("applied the model: %s", "; ".join(log))
        return json_response({"status": "applied", "log": log})

    return [reload, apply]
