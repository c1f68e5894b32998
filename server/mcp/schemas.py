"""JSON Schemas of the MCP tools' arguments and structured answers.

The query tools take exactly a ``/v1/query`` body (the schema of the OpenAPI document, made
self-contained). The schemas describe; the arguments are checked by the same code as the HTTP
API, so an error names the field the same way.
"""

from __future__ import annotations

from typing import Any

from engine.query.limits import QueryLimits
from server.openapi.components import (
    NULLABLE_STRING,
    Schema,
    filter_schema,
    query_schema,
)

MEMBER_KINDS = ("dimensions", "measures", "metrics")
STRINGS: Schema = {"type": "array", "items": {"type": "string"}}


def _local_refs(schema: Any) -> Any:
    """``#/components/schemas/X`` references as ``#/$defs/X`` (a tool schema stands alone)."""
    if isinstance(schema, dict):
        return {key: f"#/$defs/{value.rsplit('/', 1)[1]}" if key == "$ref" else
                _local_refs(value) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_local_refs(item) for item in schema]
    return schema


def query_input(limits: QueryLimits) -> Schema:
    """A ``/v1/query`` body, any member names (``list_members`` lists them)."""
    schema: Schema = _local_refs(query_schema([], [], [], limits))
    properties = schema["properties"]
    properties["source"] = {**NULLABLE_STRING,
                            "description": "the source; needed when the model has several"}
    notes = {
        "measures": "measures and metrics to compute (names from list_members)",
        "dimensions": "dimensions to group by; the time column needs a grain",
        "grain": "buckets the time column, returned under its own name",
        "filters": "all must hold: {\"member\", \"op\", \"value\"|\"values\"} (op: eq, ne, in, "
                   "not_in, gt, gte, lt, lte, contains, starts_with, is_null, is_not_null) or "
                   "{\"and\": [...]} / {\"or\": [...]}; a measure filters groups (HAVING)",
        "time_range": "{\"from\", \"to\"} half-open [from, to), e.g. {\"from\": \"2026-03-01\", "
                      "\"to\": \"2026-03-08\"}, or relative: 'last 7 days', 'this month', ...",
        "timezone": "IANA zone of buckets, dates and relative ranges (default: the source's)",
        "order": "\"member\" or \"-member\" (descending); default: the dimensions ascending",
        "limit": "rows to return (default 10000)",
        "force_raw": "skip the rollups and read the raw table (for comparisons)",
    }
    for name, note in notes.items():
        properties[name] = {**properties[name], "description": note}
    schema["$defs"] = {"Filter": _local_refs(filter_schema([]))}
    return schema


NO_ARGUMENTS: Schema = {"type": "object", "properties": {}, "additionalProperties": False}

MEMBERS_INPUT: Schema = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "source": {"type": "string", "description": "the source (default: the only one)"},
        "kind": {"type": "string", "enum": list(MEMBER_KINDS),
                 "description": "only this kind of member (default: all three)"},
    },
}

VALUES_INPUT: Schema = {
    "type": "object", "additionalProperties": False, "required": ["dimension"],
    "properties": {
        "dimension": {"type": "string", "description": "a dimension of the source"},
        "source": {"type": "string", "description": "the source (default: the only one)"},
        "contains": {"type": "string", "description": "only values containing this text "
                     "(string dimensions)"},
        "limit": {"type": "integer", "minimum": 1, "maximum": 1000,
                  "description": "at most this many values (default 100)"},
    },
}


def _object(properties: dict[str, Schema]) -> Schema:
    return {"type": "object", "properties": properties, "required": list(properties)}


SOURCES_OUTPUT = _object({"sources": {"type": "array", "items": _object({
    "name": {"type": "string"}, "description": NULLABLE_STRING, "table": {"type": "string"},
    "time": {"type": ["object", "null"]}, "timezone": NULLABLE_STRING,
    "dimensions": STRINGS, "measures": STRINGS, "metrics": STRINGS,
})}})

MEMBERS_OUTPUT: Schema = {
    "type": "object", "required": ["source"],
    "properties": {"source": {"type": "string"}, "time": {"type": ["object", "null"]},
                   **{kind: {"type": "array", "items": {"type": "object",
                                                        "required": ["name", "description"]}}
                      for kind in MEMBER_KINDS}},
}

ANSWER_OUTPUT = _object({
    "data": {"type": "array", "items": {"type": "object"}},
    "meta": {"type": "object", "required": ["table", "tables", "rollup", "columns", "rows"]},
    "served_from": {"type": "string", "description": "the rollup (or raw table) that answered"},
})

EXPLAIN_OUTPUT = _object({
    "table": {"type": "string"}, "tables": STRINGS, "rollup": NULLABLE_STRING,
    "sql": {"type": "string"}, "parameters": {"type": "object"},
    "pieces": {"type": "array"}, "candidates": {"type": "array"},
})

VALUES_OUTPUT = _object({
    "source": {"type": "string"}, "dimension": {"type": "string"}, "values": {"type": "array"},
    "truncated": {"type": "boolean"}, "table": {"type": "string"},
})
