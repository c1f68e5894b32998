"""JSON Schemas of the request and response bodies, as ``components`` of the document."""

from __future__ import annotations

from typing import Any

from engine.query.fields import Vocabulary, request_schema
from engine.query.fields import filter_schema as request_filter_schema
from engine.query.limits import QueryLimits
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

FILTER_REF = "#/components/schemas/Filter"


def query_schema(measures: list[str], dimensions: list[str], sources: list[str],
                 limits: QueryLimits) -> Schema:
    """The query body (``engine.query.fields``); member names are the model's (``dimensions``
    include time columns), sizes the server's limits."""
    return request_schema(Vocabulary(tuple(measures), tuple(dimensions), tuple(sources),
                                     tuple(FORMATS), limits, FILTER_REF))


def filter_schema(members: list[str]) -> Schema:
    """A filter on one of ``members``, or an and/or group of filters."""
    return request_filter_schema(members, FILTER_REF)


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
    "reads": {"type": "array", "description": "with time functions or a comparison: the "
              "ranges read (the answer's and the lookback of its windows) and their pieces",
              "items": _object({"purpose": STRING, "from": NULLABLE_STRING,
                                "to": NULLABLE_STRING, "pieces": {"type": "array"}})},
    "windows": {"type": "array", "description": "what each time function and the comparison "
                "compute", "items": _object({
                    "member": NULLABLE_STRING, "function": STRING, "measure": NULLABLE_STRING,
                    "window": NULLABLE_STRING, "period": NULLABLE_STRING,
                    "by": NULLABLE_STRING, "detail": STRING})},
    "candidates": {"type": "array", "items": ref("Candidate")},
    "time_range": TIME_RANGE, "timezone": NULLABLE_STRING,
})

META = _object({
    "sources": {"type": "array", "items": {"type": "object", "required": [
        "name", "table", "primary_key", "joins", "dimensions", "measures", "metrics",
        "rollups"]}},
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
