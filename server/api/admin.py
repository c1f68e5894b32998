"""Admin routes: what the command line needs while the server holds the engine.

Reload and apply the model file; validate or plan a posted model without switching to it;
verify and repair rollups; load the demo data. A model with errors is answered with ``422`` and
its located issues (the running model keeps serving).
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response, post
from litestar.handlers import HTTPRouteHandler
from litestar.params import RawBody

from engine.ingestion.demo import DEMO_TABLE
from semantic import load_model_text
from semantic.errors import FieldError, ModelError
from semantic.loader import TABLE
from semantic.model import Model
from server.http.responses import json_response, semantic_error_json
from server.operations.apply import (
    fill_demo,
    migration_steps,
    render_steps,
    repair_model,
    verify_model,
)
from server.operations.validation import check_offline, validate_model
from server.runtime.compile import compile_against
from server.runtime.state import State

logger = logging.getLogger(__name__)


class PostedModel(msgspec.Struct, forbid_unknown_fields=True):
    #: the text of metrics.yaml
    model: str
    #: the file name issues are reported against
    file: str = "metrics.yaml"
    keep_unused: bool = False


def _posted(body: bytes) -> tuple[PostedModel, Model]:
    try:
        posted = msgspec.json.decode(body, type=PostedModel)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise FieldError("body", f"send {{\"model\": <metrics.yaml text>, \"file\": <name>}}: "
                         f"{exc}") from exc
    return posted, load_model_text(posted.model, posted.file)


def _flag(request: Request[Any, Any, Any], name: str) -> bool:
    return request.query_params.get(name, "false").lower() in ("1", "true")


def _number(request: Request[Any, Any, Any], name: str, default: int) -> int:
    text = request.query_params.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise FieldError(name, f"{name} must be an integer, got {text!r}") from None


def _invalid(exc: ModelError) -> Response[bytes]:
    return semantic_error_json(exc, status=422)


def _refused(action: str, exc: ModelError) -> Response[bytes]:
    """The model file is wrong, not the server: say so in the log, keep serving the old."""
    logger.warning("%s refused, the model has %d error(s); still serving the previous model:"
                   "\n%s", action, len(exc.issues),
                   "\n".join(issue.render() for issue in exc.issues))
    return _invalid(exc)


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
        try:
            log, summary = state.apply(_flag(request, "keep_unused"))
        except ModelError as exc:
            return _refused("apply", exc)
        logger.info("applied the model: %s", "; ".join(log))
        return json_response({"status": "applied", "log": log, "summary": summary})

    @post("/v1/admin/validate", sync_to_thread=True, status_code=200)
    def validate(body: RawBody) -> Response[bytes]:
        try:
            _, model = _posted(body)
            validation = validate_model(model, state.warehouse)
        except ModelError as exc:
            return _invalid(exc)
        return json_response(validation.to_dict())

    @post("/v1/admin/plan", sync_to_thread=True, status_code=200)
    def plan(body: RawBody) -> Response[bytes]:

        try:
            posted, model = _posted(body)
            check_offline(model)
            compiled = compile_against(model, state.warehouse)
        except ModelError as exc:
            return _invalid(exc)
        steps = migration_steps(compiled, state.warehouse, posted.keep_unused)
        return json_response({"plan": render_steps(compiled, steps)})

    @post("/v1/admin/verify", sync_to_thread=True, status_code=200)
    def verify() -> Response[bytes]:

        log: list[str] = []
        drifts = verify_model(state.runtime().compiled, state.warehouse, log.append)
        return json_response({"log": log, "drifted": len(drifts)})

    @post("/v1/admin/repair", sync_to_thread=True, status_code=200)
    def repair(request: Request[Any, Any, Any]) -> Response[bytes]:

        log: list[str] = []
        runtime = state.runtime()
        repaired = repair_model(runtime.compiled, state.warehouse, _flag(request, "all"),
                                log.append)
        runtime.refresh()
        return json_response({"log": log, "repaired": repaired})

    @post("/v1/admin/demo", sync_to_thread=True, status_code=200)
    def demo(request: Request[Any, Any, Any]) -> Response[bytes]:

        table = request.query_params.get("table", DEMO_TABLE)
        if not TABLE.match(table):
            raise FieldError("table", f"table {table!r} must be written database.table")
        log: list[str] = []
        total = fill_demo(state.warehouse, _number(request, "rows", 5_000_000),
                          _number(request, "seed", 1), table, _flag(request, "append"),
                          log.append)
        if state.started is not None:
            state.started.refresh()
        return json_response({"log": log, "rows": total})

    return [reload, apply, validate, plan, verify, repair, demo]
