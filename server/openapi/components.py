"""JSON Schemas of the request and response bodies, as ``components`` of the document."""

from __future__ import annotations

from typing import Any

from engine.query.limits import QueryLimits
from semantic.model import FILTER_OPS, GRAINS
from server.http.formats import FORMATS

Schema = dict[str, Any]

STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer"}
NULLABLE_STRING: Schema = {"type": ["string", "null"]}
NULLABLE_INTEGER: Schema = {"type": ["integer", "null"]}
#: a value of a result cell: whatever ClickHouse returns, as JSON
ANY_VALUE: Schema = {}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict[str, Schema], required: tuple[str, ...] | None = None,
            description: str = "") -> Schema:
    schema: Schema = {"type": "object", "properties": properties,
                      "required": list(properties if required is None else required)}
    if description:
        schema["description"] = description
    return schema


ERROR = _object({
    "error": _object({
        "code": STRING,
        "message": STRING,
        "field": {**NULLABLE_STRING, "description": "the offending part of the request"},
        "request_id": {**NULLABLE_STRING, "description": "also in the X-Request-Id header"},
        "issues": {"type": "array", "items": {"type": "object"},
                   "description": "model issues (422 of the admin routes)"},
    }, required=("code", "message")),
}, description="Every error answer.")

def _names(names: list[str]) -> Schema:
    return {"type": "string", "enum": names} if names else STRING


def filter_schema(members: list[str]) -> Schema:
    """A filter: a condition on one of ``members`` (a dimension: WHERE; a measure or metric:
    HAVING), or an and/or group of filters."""
    return {
        "description": "A condition on a dimension (WHERE) or a measure (HAVING), or an and/or "
                       "group of them.",
        "oneOf": [
            {"type": "object", "additionalProperties": False, "required": ["member"],
             "properties": {
                 "member": _names(members),
                 "op": {"type": "string", "enum": list(FILTER_OPS)},
                 "value": {"oneOf": [{"type": ["string", "number"]},
                                     {"type": "array", "items": {"type": ["string", "number"]}}]},
                 "values": {"type": "array", "items": {"type": ["string", "number"]}},
             }},
            {"type": "object", "additionalProperties": False, "required": ["and"],
             "properties": {"and": {"type": "array", "items": ref("Filter")}}},
            {"type": "object", "additionalProperties": False, "required": ["or"],
             "properties": {"or": {"type": "array", "items": ref("Filter")}}},
        ],
    }


def query_schema(measures: list[str], dimensions: list[str], sources: list[str],
                 limits: QueryLimits) -> Schema:
    """The query body; member names are the model's (``dimensions`` include time columns),
    sizes the server's limits."""
    returned = measures + dimensions
    return {
        "type": "object",
        "additionalProperties": False,
        "description": "Measures by dimensions at a grain, filtered, over a time range.",
        "properties": {
            "measures": {"type": "array", "items": _names(measures)},
            "dimensions": {"type": "array", "items": _names(dimensions)},
            "grain": {"type": ["string", "null"], "enum": [*GRAINS, None]},
            "filters": {"type": "array", "items": ref("Filter"), "maxItems": limits.filters},
            "time_range": {"oneOf": [
                {"type": "string", "description": "relative: today, 'last 7 days', ..."},
                {"type": "object", "additionalProperties": False,
                 "properties": {"from": NULLABLE_STRING, "to": NULLABLE_STRING}},
                {"type": "null"},
            ]},
            "timezone": NULLABLE_STRING,
            "order": {"type": "array", "maxItems": limits.order, "items": {"oneOf": [
                {**_names(returned + [f"-{n}" for n in returned]),
                 "description": "a returned member; '-' prefix for descending"},
                {"type": "object", "additionalProperties": False, "required": ["member"],
                 "properties": {"member": _names(returned),
                                "direction": {"type": "string", "enum": ["asc", "desc"]}}},
            ]}},
            "limit": {"type": ["integer", "null"], "minimum": 1, "maximum": limits.rows},
            "offset": {"type": "integer", "minimum": 0, "maximum": limits.offset},
            "source": {"type": ["string", "null"], "enum": [*sources, None]},
            "force_raw": {"type": "boolean"},
            "format": {"type": ["string", "null"], "enum": [*FORMATS, None],
                       "description": "the answer's format (default json); the Accept header "
                                      "can ask for it too"},
        },
    }


TIME_RANGE = {"type": ["object", "null"], "properties": {
    "from": NULLABLE_STRING, "to": NULLABLE_STRING}, "required": ["from", "to"]}

ANSWER = _object({
    "data": {"type": "array", "items": {"type": "object", "additionalProperties": ANY_VALUE}},
    "meta": _object({
        "table": STRING, "tables": {"type": "array", "items": STRING},
        "rollup": NULLABLE_STRING, "source": STRING, "time_range": TIME_RANGE,
        "timezone": NULLABLE_STRING, "rows": INTEGER, "truncated": {"type": "boolean"},
        "limit": INTEGER, "elapsed_ms": {"type": "number"},
        "columns": {"type": "array", "items": STRING},
    }),
})

CANDIDATE = _object({
    "rollup": STRING, "table": STRING, "usable": {"type": "boolean"},
    "chosen": {"type": "boolean"},
    "reason": {**NULLABLE_STRING, "description": "why it cannot answer, e.g. "
               "missing_dimension, filter_not_covered, security_filter_not_covered"},
    "detail": STRING, "rows": NULLABLE_INTEGER, "bytes": NULLABLE_INTEGER,
    "read_bytes": NULLABLE_INTEGER,
})

EXPLAIN = _object({
    "table": STRING, "tables": {"type": "array", "items": STRING}, "rollup": NULLABLE_STRING,
    "sql": STRING, "parameters": {"type": "object"},
    "pieces": {"type": "array", "items": _object({
        "table": STRING, "rollup": NULLABLE_STRING, "from": NULLABLE_STRING,
        "to": NULLABLE_STRING})},
    "candidates": {"type": "array", "items": ref("Candidate")},
    "time_range": TIME_RANGE, "timezone": NULLABLE_STRING,
})

META = _object({
    "sources": {"type": "array", "items": {"type": "object", "required": [
        "name", "table", "dimensions", "measures", "metrics", "rollups"]}},
    "endpoints": {"type": "array", "items": {"type": "object", "required": ["path", "source"]}},
}, description="The model: sources with their members and rollups, and the endpoints.")

INGESTED = _object({
    "source": STRING, "table": STRING, "inserted": INTEGER, "checked": INTEGER,
    "elapsed_ms": {"type": "number"},
})

RELOADED = _object({
    "status": {"const": "reloaded"}, "rollups": INTEGER, "rollups_ready": INTEGER,
    "endpoints": {"type": "array", "items": STRING},
})

HEALTH = _object({"status": STRING, "warehouse": STRING}, required=("status",),
                 description="Liveness or readiness, and the warehouse's state.")

COMPONENTS: dict[str, Schema] = {
    "Error": ERROR, "Answer": ANSWER,
    "Candidate": CANDIDATE, "Explain": EXPLAIN, "Meta": META, "Ingested": INGESTED,
    "Reloaded": RELOADED, "Health": HEALTH,
}
