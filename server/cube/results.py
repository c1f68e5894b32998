"""Our answers in the shape of Cube's load responses.

Values are formatted as Cube's ClickHouse driver formats them: numbers as strings (``"42"``,
``"2.5"``), times as local wall time with milliseconds (``2026-01-01T00:00:00.000``), text as
it is. A bucketed time is returned under ``<cube>.<time>.<granularity>`` and, as Cube does for
compatibility, under ``<cube>.<time>`` too.
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Any

from engine.query.request import Order
from server.cube.members import Member
from server.cube.translate import Translated

DATA_SOURCE = "default"
DB_TYPE = "clickhouse"


def js_number(value: int | float) -> str:
    """A number as JavaScript's ``String(n)`` writes it (Cube's driver does ``${value}``).

    >>> js_number(247486808.0), js_number(2.5), js_number(1e-07), js_number(1e21)
    ('247486808', '2.5', '1e-7', '1e+21')
    """
    if isinstance(value, int):
        return str(value)
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        sign = "-" if exponent.startswith("-") else "+"
        text = f"{mantissa}e{sign}{exponent.lstrip('+-').lstrip('0') or '0'}"
    return text


def cube_value(value: Any) -> Any:
    """One value of an answer as Cube's API returns it."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, int | float):
        return js_number(value) if math.isfinite(value) else None
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}"
    if isinstance(value, dt.date):
        return f"{value.isoformat()}T00:00:00.000"
    return str(value)


def result_rows(translated: Translated, columns: tuple[str, ...],
                values: tuple[list[Any], ...]) -> list[dict[str, Any]]:
    """The answer's rows keyed by Cube member names."""
    keys: list[list[str]] = []
    for name in columns:
        member = translated.columns[name]
        if member.kind == "time" and translated.time_key is not None:
            keys.append([translated.time_key, member.key])
        else:
            keys.append([member.key])
    if translated.blend and translated.time_key is not None:  # Cube's blending: time.<grain>
        for names in keys:
            if translated.time_key in names:
                names.append("time." + translated.time_key.rsplit(".", 1)[1])
    rows = []
    for row in zip(*values, strict=True):
        item: dict[str, Any] = {}
        for names, value in zip(keys, row, strict=True):
            shown = cube_value(value)
            for key in names:
                item[key] = shown
        if translated.compare is not None:
            item["compareDateRange"] = translated.compare
        rows.append(item)
    return rows


def annotation(translated: Translated) -> dict[str, Any]:
    """Cube's ``annotation``: titles and types of the members returned."""
    measures: dict[str, Any] = {}
    dimensions: dict[str, Any] = {}
    times: dict[str, Any] = {}
    for member in translated.columns.values():
        if member.kind == "measure":
            measures[member.key] = member.annotation()
        elif member.kind == "dimension":
            dimensions[member.key] = member.annotation()
        elif translated.time_key is not None:
            grain = translated.time_key.rsplit(".", 1)[1]
            times[translated.time_key] = {**member.annotation(), "granularity": {
                "name": grain, "title": grain, "interval": f"1 {grain}", "type": "built-in"}}
            times[member.key] = member.annotation()
    return {"measures": measures, "dimensions": dimensions, "segments": {},
            "timeDimensions": times}


def used_rollups(tables: tuple[str, ...], rollups: dict[str, str], source: str) -> dict[
        str, Any] | None:
    """Cube's ``usedPreAggregations``: each rollup table the answer read (None: none)."""
    used = {table: {"targetTableName": table, "type": "rollup",
                    "preAggregationId": f"{source}.{rollups[table]}"}
            for table in tables if table in rollups}
    return used or None


def result_object(translated: Translated, query_type: str, data: list[dict[str, Any]],
                  refreshed: str, used: dict[str, Any] | None, routing: dict[str, Any],
                  total: int | None) -> dict[str, Any]:
    """One entry of a load response's ``results`` (or the whole body without ``multi``)."""
    body: dict[str, Any] = {
        "query": {**translated.normalized, "queryType": query_type},
        "data": data,
        "lastRefreshTime": refreshed,
        "annotation": annotation(translated),
        "dataSource": DATA_SOURCE,
        "dbType": DB_TYPE,
        "extDbType": None,
        "external": False,
        "slowQuery": False,
        "total": total,
        "routing": routing,
    }
    if used:
        body["usedPreAggregations"] = used
    return body


def query_order(columns: dict[str, Member], order: tuple[Order, ...]) -> dict[str, str]:
    """The order a query is answered in, as Cube's dry run and SQL responses show it."""
    return {columns[o.member].key: "desc" if o.descending else "asc" for o in order}
