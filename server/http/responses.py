"""JSON responses and the one error shape every route answers with:

``{"error": {"code", "message", "field", "request_id"}}`` (plus ``issues`` for model errors).
Client errors say what was wrong in our own words; server errors say only what kind of
failure it was, while the details (ClickHouse's text, the driver's, a traceback) go to the log
under the same request id.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException

from semantic.errors import SemanticError
from semantic.suggest import shown
from server.http.request_ids import current_request_id
from server.http.serialize import encode

logger = logging.getLogger(__name__)

TABLE_HEADER = "X-Semantic-Table"
JSON = "application/json"
#: the longest message an error body carries (echoed input is shortened long before)
MAX_MESSAGE = 2000

#: HTTP errors raised by the framework (routing, body size) -> our code and message
HTTP_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request", "the request is malformed"),
    401: ("unauthorized", "credentials are missing or not valid"),
    403: ("forbidden", "these credentials do not allow this"),
    404: ("not_found", "no route here; see /v1/meta for the endpoints"),
    405: ("method_not_allowed", "this route does not take that method"),
    413: ("body_too_large", "the request body is larger than this route accepts"),
    415: ("unsupported_media_type", "this route does not take that content type"),
    408: ("request_timeout", "the request body did not arrive in time (SEMANTIC_BODY_TIMEOUT)"),
    429: ("too_many_requests", "too many requests; try again shortly"),
    503: ("unavailable", "the service is unavailable; try again shortly"),
    504: ("timeout", "the answer took too long"),
}
#: what a client is told about a server-side failure, by code (details are logged)
SERVER_MESSAGES: dict[str, str] = {
    "warehouse_error": "the warehouse could not answer this query; the server log has the "
                       "details under this request id",
    "warehouse_unavailable": "the warehouse is unavailable; try again shortly",
    "warehouse_timeout": "the warehouse did not answer in time; try again shortly",
    "invalid_model": "the model does not match the warehouse; the server log lists the issues "
                     "under this request id",
}
INTERNAL = "internal server error; the server log has the details under this request id"
#: server-side failures whose own message is shown: it names a limit and its setting, nothing
#: of ClickHouse's or the driver's
OWN_MESSAGES = frozenset({"query_timeout", "busy"})


def json_response(payload: Any, status: int = 200,
                  headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(content=encode(payload), status_code=status, media_type=JSON,
                    headers=headers or {})


def error_body(code: str, message: str, field: str | None = None,
               **extra: object) -> dict[str, Any]:
    """The ``{"error": ...}`` payload, with the current request's id."""
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE - 3] + "..."
    return {"error": {"code": code, "message": message,
                      "field": shown(field, 200) if field is not None else None,
                      "request_id": current_request_id(), **extra}}


def semantic_error_json(exc: SemanticError, status: int | None = None) -> Response[bytes]:
    """A domain error as its JSON answer (``status`` overrides the error's own)."""
    details = exc.to_dict()
    extra = {k: v for k, v in details.items() if k not in ("code", "message", "field")}
    field = details.get("field")
    return json_response(error_body(exc.code, exc.message,
                                    field if isinstance(field, str) else None, **extra),
                         status=status or exc.status)


def error_response(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    rid = current_request_id()
    where = f"{request.method} {shown(request.url.path, 200)}"
    if isinstance(exc, SemanticError) and exc.status < 500:
        return semantic_error_json(exc)
    if isinstance(exc, SemanticError):
        # an outage is logged once per change of state by the warehouse, not per request
        if exc.code != "warehouse_unavailable":
            logger.warning("request %s: %s failed (%s): %s", rid, where, exc.code, exc.message)
        message = exc.message if exc.code in OWN_MESSAGES else \
            SERVER_MESSAGES.get(exc.code, INTERNAL)
        retry_after = getattr(exc, "retry_after", None)
        return json_response(error_body(exc.code, message), status=exc.status,
                             headers={"Retry-After": str(retry_after)} if retry_after else None)
    if isinstance(exc, HTTPException) and exc.status_code != 500:
        status = exc.status_code
        code, message = HTTP_ERRORS.get(status, ("invalid_request", "bad request") if status < 500
                                        else ("internal_error", INTERNAL))
        if status >= 500:
            logger.warning("request %s: %s failed (%s): %s", rid, where, status, exc.detail)
        return json_response(error_body(code, message), status=status,
                             headers=dict(exc.headers or {}))
    logger.error("request %s: %s failed", rid, where, exc_info=exc)
    return json_response(error_body("internal_error", INTERNAL), status=500)
