"""JSON Schemas of the MCP tools' arguments and structured answers.

The query tools take exactly a ``/v1/query`` body (the request schema of
``engine.query.fields``, as the OpenAPI document has it, self-contained). The schemas describe;
the arguments are read by the same code as the HTTP API's, so an error names the field the
same way.
"""

from __future__ import annotations

from engine.query.fields import (
    NULLABLE_STRING,
    Schema,
    Vocabulary,
    filter_schema,
    request_schema,
)
from engine.query.limits import QueryLimits

MEMBER_KINDS = ("dimensions", "measures", "metrics")
STRINGS: Schema = {"type": "array", "items": {"type": "string"}}


def query_input(limits: QueryLimits) -> Schema:
    """A ``/v1/query`` body, any member names (``list_members`` lists them)."""
    schema = request_schema(Vocabulary(limits=limits))
    schema["$defs"] = {"Filter": filter_schema([])}
    return schema


NO_ARGUMENTS: Schema = {"type": "object", "properties": {}, "additionalProperties": False}

MEMBERS_INPUT: Schema = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "source": {"type": "string",
                   "description": "the source (default: the only one with measures)"},
        "kind": {"type": "string", "enum": list(MEMBER_KINDS),
                 "description": "only this kind of member (default: all three)"},
    },
}

VALUES_INPUT: Schema = {
    "type": "object", "additionalProperties": False, "required": ["dimension"],
    "properties": {
        "dimension": {"type": "string", "description": "a dimension of the source, or one "
                      "it reaches through a join (airline.name)"},
        "source": {"type": "string",
                   "description": "the source (default: the only one with measures)"},
        "contains": {"type": "string", "description": "only values containing this text "
                     "(string dimensions)"},
        "limit": {"type": "integer", "minimum": 1, "maximum": 1000,
                  "description": "at most this many values (default 100)"},
    },
}


def _object(properties: dict[str, Schema]) -> Schema:
    return {"type": "object", "properties": properties, "required": list(properties)}


#: a source's joins, as ``/v1/meta`` lists them
JOINS: Schema = {"type": "array", "items": _object({
    "name": {"type": "string"}, "source": {"type": "string", "description": "the joined source"},
    "keys": {"type": "object", "description": "this source's column -> the joined key column"},
    "relationship": {"type": "string"},
})}

SOURCES_OUTPUT = _object({"sources": {"type": "array", "items": _object({
    "name": {"type": "string"}, "description": NULLABLE_STRING, "table": {"type": "string"},
    "time": {"type": ["object", "null"]}, "timezone": NULLABLE_STRING,
    "dimensions": {**STRINGS, "description": "joined ones as <join>.<dimension>"},
    "measures": STRINGS, "metrics": STRINGS, "joins": JOINS,
})}})

MEMBERS_OUTPUT: Schema = {
    "type": "object", "required": ["source"],
    "properties": {"source": {"type": "string"}, "time": {"type": ["object", "null"]},
                   "joins": JOINS,
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
