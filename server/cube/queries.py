"""Requests that hold several queries, as Cube's gateway splits them: a time dimension's
``compareDateRange`` (one query per range: ``compareDateRangeQuery``) and a list of queries
(``blendingQuery``, which must all bucket time the same way). Each query is translated and
answered on its own; the rows and the ``pivotQuery`` carry what Cube adds to tell them apart.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from engine.query.limits import QueryLimits
from engine.query.request import QueryError
from server.cube.members import Cubes
from server.cube.translate import Translated, translate_query

#: the most queries one request may hold (ranges of a compareDateRange, blended queries)
MAX_QUERIES = 20
REGULAR = "regularQuery"
COMPARE = "compareDateRangeQuery"
BLENDING = "blendingQuery"


def split_queries(value: object) -> tuple[str, list[object]]:
    """Cube's query type of a request's ``query`` and the queries it stands for."""
    if isinstance(value, list):
        if not value:
            raise QueryError("query", "an empty list of queries")
        return BLENDING, value
    times = value.get("timeDimensions") if isinstance(value, dict) else None
    if isinstance(value, dict) and isinstance(times, list):
        for index, item in enumerate(times):
            if isinstance(item, dict) and "compareDateRange" in item:
                where = f"timeDimensions[{index}]"
                if "dateRange" in item:
                    raise QueryError(where, "give 'dateRange' or 'compareDateRange', not both")
                ranges = item["compareDateRange"]
                if not isinstance(ranges, list) or not ranges:
                    raise QueryError(f"{where}.compareDateRange", "'compareDateRange' is a "
                                     "list of date ranges")
                queries: list[object] = []
                for date_range in ranges:
                    entry = {k: v for k, v in item.items() if k != "compareDateRange"}
                    entry["dateRange"] = date_range
                    queries.append({**value, "timeDimensions": [
                        *times[:index], entry, *times[index + 1:]]})
                return COMPARE, queries
    return REGULAR, [value]


def translate_queries(value: object, cubes: Cubes, now: datetime,
                      limits: QueryLimits) -> tuple[str, list[Translated]]:
    """Every query of a request, translated, with what its rows carry for Cube."""
    query_type, queries = split_queries(value)
    if len(queries) > MAX_QUERIES:
        raise QueryError("query", f"at most {MAX_QUERIES} queries (or compared date ranges) in "
                         "one request")
    translated = [translate_query(q, cubes, now, limits) for q in queries]
    if query_type == COMPARE:
        translated = [replace(t, compare=" - ".join(_first_range(t))) for t in translated]
    if query_type == BLENDING:
        grains = {t.time_key.rsplit(".", 1)[1] if t.time_key else None for t in translated}
        if None in grains:
            raise QueryError("query", "Data blending query without granularity is not "
                             "supported: give every query a time granularity")
        if len(grains) > 1:
            raise QueryError("query", "Data blending query granularities must match")
        translated = [replace(t, blend=True) for t in translated]
    return query_type, translated


def _first_range(translated: Translated) -> list[str]:
    for entry in translated.normalized["timeDimensions"]:
        if "dateRange" in entry:
            return list(entry["dateRange"])
    raise QueryError("timeDimensions", "compareDateRange needs a date range")  # pragma: no cover


def pivot_query(query_type: str, translated: list[Translated]) -> dict[str, Any]:
    """Cube's ``pivotQuery`` for the queries of one request."""
    first = translated[0].normalized
    if query_type == BLENDING:
        grain = translated[0].time_key.rsplit(".", 1)[1] if translated[0].time_key else None
        return {"measures": _union(t.normalized["measures"] for t in translated),
                "dimensions": _union(t.normalized["dimensions"] for t in translated),
                "timeDimensions": [{"dimension": "time", "granularity": grain}],
                "queryType": query_type}
    if query_type == COMPARE:
        return {**first, "dimensions": ["compareDateRange", *first["dimensions"]],
                "queryType": query_type}
    return {**first, "queryType": query_type}


def _union(lists: Any) -> list[str]:
    seen: dict[str, None] = {}
    for names in lists:
        seen.update(dict.fromkeys(names))
    return list(seen)
