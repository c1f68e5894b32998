"""The OpenAPI 3.1 document: every route with its parameters, bodies, answers and errors,
and one operation per generated endpoint, typed from the compiled model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.query.limits import QueryLimits
from engine.query.normalize import COMPARE_SUFFIXES
from engine.query.request import DEFAULT_LIMIT
from semantic.joins import dimension_names, joined_dimensions
from semantic.model import Endpoint, Model
from server.http.formats import FORMATS, JSON_FORMAT
from server.openapi.components import (
    COMPONENTS,
    STRING,
    Schema,
    filter_schema,
    query_schema,
    ref,
)
from server.openapi.cube import cube_paths
from server.openapi.operations import (
    ERROR_TEXT,
    JSON,
    REQUEST_ID,
    TABLE,
    admin_paths,
    flag,
    load_paths,
    other_paths,
    responses,
)

VERSION = "0.1.0"

#: ClickHouse base types -> JSON Schema types of their values in answers
_NUMBERS = {"Int": "integer", "UInt": "integer", "Float": "number", "Decimal": "number",
            "Bool": "boolean"}


FORMAT_PARAMETER: dict[str, Any] = {
    "name": "format", "in": "query", "required": False,
    "description": "the answer's format; wins over the Accept header",
    "schema": {"type": "string", "enum": list(FORMATS), "default": "json"}}


def _in_formats(answers: dict[str, Any], download: str) -> dict[str, Any]:
    """``answers`` with the 200 answer in every format, and the 406 of an ``Accept`` header
    that admits none."""
    ok = answers["200"]
    content = dict(ok["content"])
    for answer_format in FORMATS.values():
        if answer_format is JSON_FORMAT:
            continue
        schema: Schema = {"type": "string", "description": f"the rows in {answer_format.name}"}
        if answer_format.binary:
            schema["format"] = "binary"
        content[answer_format.media_type] = {"schema": schema}
    headers = {**ok["headers"], "Content-Disposition": {
        "description": f"a binary answer's file name, e.g. {download}.parquet",
        "schema": STRING}}
    not_acceptable = {"description": ERROR_TEXT[406], "headers": REQUEST_ID,
                      "content": {JSON: {"schema": ref("Error")}}}
    return {**answers, "200": {**ok, "headers": headers, "content": content},
            "406": not_acceptable}


def value_schema(type_text: str | None) -> Schema:
    """The JSON Schema of a ClickHouse value as answers show it.

    >>> value_schema("Nullable(UInt32)"), value_schema("LowCardinality(String)")
    ({'type': ['integer', 'null']}, {'type': 'string'})
    """
    if type_text is None:
        return {}
    nullable = False
    while type_text.startswith(("Nullable(", "LowCardinality(")):
        nullable = nullable or type_text.startswith("Nullable(")
        type_text = type_text[type_text.index("(") + 1:-1]
    kind = next((json for prefix, json in _NUMBERS.items() if type_text.startswith(prefix)),
                "string" if type_text.startswith(("String", "FixedString", "Enum", "Date",
                                                  "UUID", "IPv")) else None)
    if kind is None:
        return {}
    return {"type": [kind, "null"]} if nullable else {"type": kind}


def _endpoint_operation(endpoint: Endpoint, model: Model, types: Mapping[str, Mapping[str, str]],
                        limits: QueryLimits) -> dict[str, Any]:
    source = model.source(endpoint.source.name)
    assert source is not None
    dimension_types = types.get(source.name, {})
    parameters: list[dict[str, Any]] = [
        {"name": "from", "in": "query", "schema": STRING,
         "description": "range start, inclusive (2026-01-01, 2026-01-01T06:00, with an offset)"},
        {"name": "to", "in": "query", "schema": STRING, "description": "range end, exclusive"},
        {"name": "range", "in": "query", "schema": STRING,
         "description": "relative range instead of from/to: today, 'last 7 days', ..."},
        {"name": "timezone", "in": "query", "schema": STRING,
         "description": f"IANA zone (default {source.timezone})"},
        {"name": "compare", "in": "query", "schema": STRING,
         "description": "'1 year' (any 'N unit') or 'previous_period': adds <field>__compare, "
                        "<field>__change and <field>__change_ratio for each measure field"},
        {"name": "limit", "in": "query", "schema": {
            "type": "integer", "minimum": 1, "maximum": min(endpoint.limit or limits.rows,
                                                            limits.rows),
            "default": min(endpoint.limit or DEFAULT_LIMIT, limits.rows)}},
        {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0,
                                                     "maximum": limits.offset}},
        FORMAT_PARAMETER,
    ]
    dimensions = [(d.name, d) for d in source.dimensions]
    dimensions += [(name, d) for name, (_, d) in joined_dimensions(model, source).items()]
    for name, dimension in dimensions:
        item = value_schema(dimension_types.get(name)) or STRING
        if isinstance(item.get("type"), list):
            item = {"type": item["type"][0]}
        parameters.append({
            "name": name, "in": "query", "style": "form", "explode": True,
            "description": f"only rows whose {name} is one of these values"
                           + (f" ({dimension.description})" if dimension.description else ""),
            "schema": {"type": "array", "items": item}})
    fields: dict[str, Schema] = {}
    for field in endpoint.fields:
        member = field.member.name
        if member == source.time_column:
            schema: Schema = {"type": "string", "description": f"{member} at {endpoint.grain}"}
        elif source.is_aggregate(member):
            schema = {"type": ["number", "null"]}
        else:
            schema = value_schema(dimension_types.get(member))
        if endpoint.returns == "object" and isinstance(schema.get("type"), str):
            schema = {**schema, "type": [schema["type"], "null"]}
        fields[field.name] = schema
    required = list(fields)
    for field in endpoint.fields:  # with ?compare= only
        if source.is_aggregate(field.member.name):
            fields.update({field.name + suffix: {"type": ["number", "null"]}
                           for suffix in COMPARE_SUFFIXES})
    row: Schema = {"type": "object", "properties": fields, "required": required}
    body = row if endpoint.returns == "object" else {"type": "array", "items": row}
    return {"get": {
        "summary": endpoint.description or f"Endpoint {endpoint.path}",
        "operationId": "endpoint" + endpoint.path.replace("/", "_").replace("-", "_"),
        "tags": ["endpoints"], "parameters": parameters,
        "responses": _in_formats(responses(body, "The endpoint's answer",
                                           (400, 401, 403, 404, 502, 503), TABLE),
                                 endpoint.path.strip("/").replace("/", "-")),
    }}


def _query_operation(name: str, summary: str, ok: Schema, description: str,
                     formats: bool = False) -> dict[str, Any]:
    answers = responses(ok, description, (400, 401, 403, 413, 502, 503), TABLE)
    operation: dict[str, Any] = {
        "summary": summary, "operationId": name, "tags": ["query"],
        "requestBody": {"required": True, "content": {JSON: {"schema": ref("Query")}}},
        "responses": _in_formats(answers, "<source>") if formats else answers,
    }
    if formats:
        operation["parameters"] = [FORMAT_PARAMETER]
    return {"post": operation}


def build_document(model: Model, types: Mapping[str, Mapping[str, str]], secured: bool,
                   assets: Mapping[str, str] | None = None,
                   limits: QueryLimits | None = None) -> dict[str, Any]:
    """The document for ``model``; ``types`` maps source -> dimension -> ClickHouse type
    (empty when the warehouse has not been reached); ``secured``: access control is on;
    ``assets``: the explore page's files and their content types; ``limits``: the server's
    query limits (default: the engine's defaults)."""
    limits = limits or QueryLimits()
    public: dict[str, Any] = {"security": []} if secured else {}
    sources = [s.name for s in model.sources]
    paths: dict[str, Any] = {
        "/healthz": {"get": {
            "summary": "Liveness: the process serves HTTP (200 even while ClickHouse is down)",
            "operationId": "healthz", "tags": ["health"], **public,
            "responses": {"200": {"description": "Alive", "headers": REQUEST_ID,
                                  "content": {JSON: {"schema": ref("Health")}}}},
        }},
        "/readyz": {"get": {
            "summary": "Readiness: queries can be answered", "operationId": "readyz",
            "tags": ["health"], **public,
            "responses": {
                "200": {"description": "Ready", "headers": REQUEST_ID,
                        "content": {JSON: {"schema": ref("Health")}}},
                "503": {"description": "Not ready (the reason); retry later",
                        "headers": {**REQUEST_ID, "Retry-After": {
                            "required": True, "schema": {"type": "string"}}},
                        "content": {JSON: {"schema": ref("Health")}}}},
        }},
        "/openapi.json": {"get": {
            "summary": "This document", "operationId": "openapi", "tags": ["docs"], **public,
            "responses": {"200": {"description": "OpenAPI 3.1", "headers": REQUEST_ID,
                                  "content": {JSON: {"schema": {"type": "object"}}}}}}},
        "/docs": {"get": {
            "summary": "A page listing every route of this document", "operationId": "docs",
            "tags": ["docs"], **public,
            "responses": {"200": {"description": "HTML", "headers": REQUEST_ID,
                                  "content": {"text/html": {"schema": STRING}}}}}},
        "/v1/meta": {"get": {
            "summary": "The model: sources, members, rollups and endpoints",
            "operationId": "meta", "tags": ["query"],
            "responses": responses(ref("Meta"), "The model", (401, 403, 503)),
        }},
        "/v1/query": _query_operation("query", "Run a query, answered from the cheapest "
                                      "rollups that answer it exactly", ref("Answer"), "Rows",
                                      formats=True),
        "/v1/explain": _query_operation("explain", "How a query would be answered, without "
                                        "running it", ref("Explain"), "The plan"),
        "/v1/sources/{source}/rows": {"post": {
            "summary": "Insert rows into a source (all or nothing per request)",
            "operationId": "ingest", "tags": ["ingestion"],
            "parameters": [
                {"name": "source", "in": "path", "required": True,
                 "schema": {"type": "string", "enum": sources}},
                flag("dry_run", "check the rows without inserting them"),
                {"name": "load", "in": "query", "schema": STRING,
                 "description": "stage the rows under this load id instead of inserting them "
                                "(then POST .../loads/{load}/commit)"},
                {"name": "line_offset", "in": "query",
                 "schema": {"type": "integer", "minimum": 0, "maximum": 10**12 - 1},
                 "description": "added to line numbers in errors (a batch cut from a file)"},
            ],
            "requestBody": {"required": True, "content": {
                JSON: {"schema": {"oneOf": [
                    {"type": "array", "items": {"type": "object"}},
                    {"type": "object", "required": ["rows"], "additionalProperties": False,
                     "properties": {"rows": {"type": "array", "items": {"type": "object"}}}},
                ]}},
                "application/x-ndjson": {"schema": {"type": "string",
                                                    "description": "one JSON object a line"}},
                "text/csv": {"schema": {"type": "string",
                                        "description": "a header line, then rows"}},
                "application/vnd.apache.parquet": {"schema": {"type": "string",
                                                              "format": "binary"}},
            }},
            "responses": responses(ref("Ingested"), "Rows checked (and inserted or staged)",
                                    (400, 401, 403, 408, 413, 415, 502)),
        }},
        **load_paths(sources),
    }
    paths.update(admin_paths())
    paths.update(cube_paths())
    # joined dimensions (airline.name) by their dotted names, as queries name them
    dimensions = sorted({d for s in model.sources for d in dimension_names(model, s)})
    paths.update(other_paths(sources, dimensions, assets or {}, public))
    for endpoint in model.endpoints:
        paths[endpoint.path] = _endpoint_operation(endpoint, model, types, limits)
    measures = sorted({m.name for s in model.sources for m in s.measures}
                      | {m.name for s in model.sources for m in s.metrics})
    times = sorted({s.time_column for s in model.sources if s.time_column})
    schemas = {**COMPONENTS, "Query": query_schema(measures, dimensions + times, sources,
                                                     limits),
               "Filter": filter_schema(sorted(set(measures + dimensions)))}
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "semantic", "version": VERSION,
                 "description": "A declarative semantic layer for ClickHouse."},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {"bearer": {
            "type": "http", "scheme": "bearer",
            "description": "An API key (`semantic keys create`) or a JWT"}}},
    }
    if secured:
        document["security"] = [{"bearer": []}]
    return document

