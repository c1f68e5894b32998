"""Operations of the Cube-compatible API (``server.api.cube``): Cube's query travels as JSON
text in the ``query`` parameter (GET) or as ``{"query": ...}`` (POST); errors have Cube's
shape, ``{"error": "..."}``."""

from __future__ import annotations

from typing import Any

from server.openapi.components import STRING, Schema
from server.openapi.operations import ALWAYS, ERROR_TEXT, JSON, REQUEST_ID, TABLE

PREFIX = "/cubejs-api/v1"
CUBE_ERROR: Schema = {
    "type": "object", "required": ["error"],
    "properties": {"error": {**STRING, "description": "what went wrong, in Cube's words"},
                   "type": STRING, "field": {"type": ["string", "null"]},
                   "requestId": {"type": ["string", "null"]}}}
#: a Cube query: members, timeDimensions, filters, order, limit, offset, timezone, total
CUBE_QUERY: Schema = {"type": "object", "description": "A Cube query (see docs/cube-api.md), "
                      "e.g. {\"measures\": [\"events.total_events\"]}"}
QUERY_PARAMETER = {"name": "query", "in": "query", "required": True,
                   "description": "the Cube query as JSON text", "schema": STRING}


def _responses(ok: Schema, description: str, errors: tuple[int, ...],
               headers: dict[str, Any] | None = None) -> dict[str, Any]:
    answers: dict[str, Any] = {"200": {"description": description,
                                       "headers": {**REQUEST_ID, **(headers or {})},
                                       "content": {JSON: {"schema": ok}}}}
    for status in sorted(set(errors) | set(ALWAYS)):
        answers[str(status)] = {"description": ERROR_TEXT[status], "headers": REQUEST_ID,
                                "content": {JSON: {"schema": CUBE_ERROR}}}
    return answers


def _pair(name: str, summary: str, ok: Schema, headers: dict[str, Any] | None,
          extra: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    errors = (400, 403, 502)
    body_properties: dict[str, Schema] = {"query": CUBE_QUERY}
    if name == "load":
        body_properties["queryType"] = {"type": "string", "enum": ["multi"]}
    return {
        "get": {"summary": summary, "operationId": f"cube_{name}_get", "tags": ["cube"],
                "parameters": [QUERY_PARAMETER, *(extra or [])],
                "responses": _responses(ok, "Done", errors, headers)},
        "post": {"summary": summary, "operationId": f"cube_{name}_post", "tags": ["cube"],
                 "requestBody": {"required": True, "content": {JSON: {"schema": {
                     "type": "object", "required": ["query"],
                     "properties": body_properties}}}},
                 "responses": _responses(ok, "Done", (*errors, 413), headers)},
    }


def cube_paths() -> dict[str, Any]:
    multi = [{"name": "queryType", "in": "query", "required": False,
              "description": "'multi' (what Cube's client sends): answer "
                             "{queryType, results, pivotQuery}",
              "schema": {"type": "string", "enum": ["multi"]}}]
    answer: Schema = {"type": "object", "description": "Cube's load response: query, data, "
                      "annotation, ... (or, with queryType=multi, {queryType, results, "
                      "pivotQuery})"}
    return {
        f"{PREFIX}/load": _pair("load", "Run a Cube query", answer, TABLE, multi),
        f"{PREFIX}/sql": _pair("sql", "The SQL a Cube query runs", {"type": "object"}, TABLE),
        f"{PREFIX}/dry-run": _pair("dry_run", "A Cube query normalized and routed, not run",
                                   {"type": "object"}, TABLE),
        f"{PREFIX}/meta": {"get": {
            "summary": "The cubes (sources) with their measures and dimensions",
            "operationId": "cube_meta", "tags": ["cube"],
            "responses": _responses({"type": "object", "required": ["cubes"],
                                     "properties": {"cubes": {"type": "array"}}},
                                    "The cubes", (403,))}},
    }
