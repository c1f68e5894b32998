"""Operations of the admin, values, metrics and explore routes (the query, ingestion and
generated endpoints are in ``document``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server.openapi.components import INTEGER, STRING, Schema, ref

JSON = "application/json"
ERROR_TEXT = {400: "Invalid request (the error names the field)",
              401: "No credential, or an invalid one (see WWW-Authenticate)",
              403: "The credential lacks the scope or the row-level claim; or a cross-site "
                   "request to a route that changes the server",
              404: "Not found", 406: "The Accept header admits no format this route answers",
              413: "The body is too large",
              415: "A form content type, which admin and ingestion routes refuse",
              422: "The model has errors (located issues); the running model keeps serving",
              408: "The body arrived too slowly", 429: "Too many queries at once; retry later",
              502: "ClickHouse refused the query",
              503: "ClickHouse is unavailable, or the server is busy; retry later",
              504: "The query ran out of time"}
#: what any route that runs queries may answer besides its own errors
ALWAYS = (429, 503, 504)
REQUEST_ID = {"X-Request-Id": {"description": "The request's id (also in error bodies and "
                               "the log)", "required": True, "schema": STRING}}
TABLE = {"X-Semantic-Table": {"description": "The main table the answer was read from",
                              "required": True, "schema": STRING}}
LOG: Schema = {"type": "array", "items": STRING, "description": "the lines the command prints"}


def responses(ok: Schema, description: str, errors: tuple[int, ...],
              headers: dict[str, Any] | None = None) -> dict[str, Any]:
    answers: dict[str, Any] = {"200": {"description": description,
                                       "headers": {**REQUEST_ID, **(headers or {})},
                                       "content": {JSON: {"schema": ok}}}}
    for status in sorted(set(errors) | set(ALWAYS)):
        answers[str(status)] = {"description": ERROR_TEXT[status], "headers": REQUEST_ID,
                                "content": {JSON: {"schema": ref("Error")}}}
    return answers


def load_paths(sources: list[str]) -> dict[str, Any]:
    """Committing or cancelling a load staged over several requests."""
    parameters = [{"name": "source", "in": "path", "required": True,
                   "schema": {"type": "string", "enum": sources}},
                  {"name": "load", "in": "path", "required": True, "schema": STRING}]
    errors = (400, 401, 403, 404, 415, 502)
    return {
        "/v1/sources/{source}/loads/{load}/commit": {"post": {
            "summary": "Insert a staged load whole", "operationId": "commit_load",
            "tags": ["ingestion"], "parameters": parameters,
            "responses": responses(_object({"source": STRING, "table": STRING,
                                            "inserted": INTEGER, "load": STRING,
                                            "elapsed_ms": {"type": "number"}}),
                                   "Inserted", errors)}},
        "/v1/sources/{source}/loads/{load}": {"delete": {
            "summary": "Drop a staged load", "operationId": "cancel_load",
            "tags": ["ingestion"], "parameters": parameters,
            "responses": responses(_object({"load": STRING, "cancelled": {"const": True}}),
                                   "Cancelled", errors)}},
    }


def flag(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": {"type": "boolean", "default": False}}


def _object(properties: dict[str, Schema]) -> Schema:
    return {"type": "object", "properties": properties, "required": list(properties)}


def _admin(name: str, summary: str, ok: Schema, errors: tuple[int, ...],
           parameters: list[dict[str, Any]] | None = None,
           body: Schema | None = None) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "operationId": name, "tags": ["admin"],
                                 "responses": responses(ok, "Done", errors)}
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {JSON: {"schema": body}}}
    return {"post": operation}


POSTED_MODEL: Schema = {
    "type": "object", "additionalProperties": False, "required": ["model"],
    "properties": {"model": {"type": "string", "description": "the text of metrics.yaml"},
                   "file": {"type": "string", "default": "metrics.yaml",
                            "description": "the file name issues are reported against"},
                   "keep_unused": {"type": "boolean", "default": False}},
}
ADMIN_ERRORS = (400, 401, 403, 415, 502, 503)


def admin_paths() -> dict[str, Any]:
    return {
        "/v1/admin/reload": _admin(
            "reload", "Load the model file again and switch to it", ref("Reloaded"),
            (401, 403, 415, 422, 503)),
        "/v1/admin/apply": _admin(
            "apply", "Build the model file's rollups while serving, switch, drop unused",
            {**_object({"status": {"const": "applied"}, "log": LOG, "summary": STRING})},
            (401, 403, 415, 422, 502, 503),
            [flag("keep_unused", "keep rollup tables the model no longer uses")]),
        "/v1/admin/validate": _admin(
            "validate", "Every check of `semantic validate` on a posted model, without "
            "switching", _object({"status": {"const": "ok"}, "summary": STRING,
                                  "checked_against": {"type": ["string", "null"]},
                                  "reason": {"type": ["string", "null"]},
                                  "warnings": {"type": "array"}}),
            (400, 401, 403, 413, 415, 422, 503), body=POSTED_MODEL),
        "/v1/admin/plan": _admin(
            "plan", "What `apply` would do for a posted model", _object({"plan": STRING}),
            (400, 401, 403, 413, 415, 422, 502, 503), body=POSTED_MODEL),
        "/v1/admin/verify": _admin(
            "verify", "Compare every rollup with the raw table, group by group",
            _object({"log": LOG, "drifted": INTEGER}), ADMIN_ERRORS),
        "/v1/admin/repair": _admin(
            "repair", "Rebuild drifted rollups (all of them with all=true)",
            _object({"log": LOG, "repaired": INTEGER}), ADMIN_ERRORS,
            [flag("all", "rebuild every rollup, drifted or not")]),
        "/v1/admin/demo": _admin(
            "demo", "Create and fill the reference table", _object({"log": LOG, "rows": INTEGER}),
            ADMIN_ERRORS, [
                {"name": "rows", "in": "query", "schema": {"type": "integer", "minimum": 0,
                                                           "default": 5_000_000}},
                {"name": "seed", "in": "query", "schema": {"type": "integer", "default": 1}},
                {"name": "table", "in": "query", "schema": {
                    "type": "string", "pattern": r"^[A-Za-z_]\w*\.[A-Za-z_]\w*$"}},
                flag("append", "insert even if the table has rows")]),
    }


def other_paths(sources: list[str], dimensions: list[str], assets: Mapping[str, str],
                public: dict[str, Any]) -> dict[str, Any]:
    """The values API, Prometheus metrics and the explore page."""
    html = {"text/html": {"schema": STRING}}
    return {
        "/v1/sources/{source}/dimensions/{dimension}/values": {"get": {
            "summary": "Distinct values of a dimension, sorted (for pickers)",
            "operationId": "values", "tags": ["query"],
            "parameters": [
                {"name": "source", "in": "path", "required": True,
                 "schema": {"type": "string", "enum": sources}},
                {"name": "dimension", "in": "path", "required": True,
                 "schema": {"type": "string", "enum": dimensions}},
                {"name": "limit", "in": "query",
                 "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
                {"name": "contains", "in": "query", "schema": STRING,
                 "description": "only values containing this text"},
            ],
            "responses": responses(_object({
                "source": STRING, "dimension": STRING, "values": {"type": "array"},
                "truncated": {"type": "boolean"}, "table": STRING}), "The values",
                (400, 401, 403, 502, 503), TABLE),
        }},
        "/metrics": {"get": {
            "summary": "Prometheus metrics", "operationId": "metrics", "tags": ["health"],
            "responses": {"200": {"description": "The text exposition format",
                                  "headers": REQUEST_ID,
                                  "content": {"text/plain": {"schema": STRING}}},
                          **{k: v for k, v in responses({}, "", (401, 403)).items()
                             if k != "200"}},
        }},
        "/": {"get": {
            "summary": "Redirects to the explore page", "operationId": "root",
            "tags": ["explore"], **public,
            "responses": {"302": {"description": "To /explore", "headers": REQUEST_ID},
                          "200": {"description": "The explore page (redirect followed)",
                                  "content": html}},
        }},
        **{path: {"get": {
            "summary": summary, "operationId": name, "tags": ["explore"], **public,
            "responses": {"200": {"description": "HTML", "headers": REQUEST_ID,
                                  "content": html}}}}
           for path, name, summary in (
               ("/explore", "explore", "The explore page: query builder, chart, routing"),
               ("/explore/model", "explore_model", "The explore page's model view"))},
        "/explore/static/{name}": {"get": {
            "summary": "The explore page's scripts and style", "operationId": "explore_asset",
            "tags": ["explore"], **public,
            "parameters": [{"name": "name", "in": "path", "required": True,
                            "schema": {"type": "string", "enum": sorted(assets)}}],
            "responses": {
                "200": {"description": "The asset", "headers": REQUEST_ID,
                        "content": {kind: {"schema": STRING}
                                    for kind in sorted(set(assets.values()))}},
                "404": {"description": "No such asset", "headers": REQUEST_ID,
                        "content": {JSON: {"schema": ref("Error")}}}},
        }},
    }
