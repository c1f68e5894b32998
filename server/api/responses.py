"""JSON responses and the one error shape every route answers with."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException

from semantic.errors import SemanticError
from server.serialize import encode

logger = logging.getLogger(__name__)

TABLE_HEADER = "X-Semantic-Table"
JSON = "application/json"


def json_response(payload: Any, status: int = 200,
          headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(content=encode(payload), status_code=status, media_type=JSON,
                    headers=headers or {})


def error_response(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    if isinstance(exc, SemanticError):
        # an outage is logged once per change of state by the warehouse, not per request
        if exc.status >= 500 and exc.code != "warehouse_unavailable":
            logger.warning("%s %s: %s", request.method, request.url.path, exc.message)
        return json_response({"error": exc.to_dict()}, status=exc.status)
    if isinstance(exc, HTTPException):
        return json_response({"error": {"code": "http_error", "message": exc.detail}},
                     status=exc.status_code)
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return json_response({"error": {"code": "internal_error", "message": "internal server error"}},
                 status=500)
