"""The query a client asks: measures by dimensions at a grain, filtered, ordered, limited."""

from __future__ import annotations

from dataclasses import dataclass, replace

from engine.compiler import CompiledSource
from semantic.errors import SemanticError
from semantic.model import FILTER_OPS, GRAINS
from semantic.suggest import did_you_mean

DEFAULT_LIMIT = 10_000
MAX_LIMIT = 100_000


class QueryError(SemanticError):
    """The query is invalid; ``field`` names the offending part of the request."""

    code = "invalid_query"
    status = 400

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field

    def to_dict(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message, "field": self.field}


@dataclass(frozen=True, slots=True)
class Filter:
    member: str
    op: str
    values: tuple[object, ...]


@dataclass(frozen=True, slots=True)
class Order:
    member: str
    descending: bool = False


@dataclass(frozen=True, slots=True)
class Query:
    source: str
    measures: tuple[str, ...]
    dimensions: tuple[str, ...] = ()
    grain: str | None = None
    filters: tuple[Filter, ...] = ()
    order: tuple[Order, ...] = ()
    limit: int | None = None
    offset: int = 0


def _check_names(names: tuple[str, ...], known: list[str], field_name: str, kind: str) -> None:
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name not in known:
            raise QueryError(f"{field_name}[{index}]", f"unknown {kind} '{name}'"
                             f"{did_you_mean(name, known)}; known: {', '.join(known)}")
        if name in seen:
            raise QueryError(f"{field_name}[{index}]", f"{kind} '{name}' is listed twice")
        seen.add(name)


def normalize_query(source: CompiledSource, query: Query) -> Query:
    """Check a query against the source and fill defaults (time dimension, order, limit).

    Raises ``QueryError`` naming the offending field.
    """
    time = source.time.name if source.time else None
    dimension_names = list(source.dimensions) + ([time] if time else [])
    _check_names(query.measures, list(source.measures), "measures", "measure")
    _check_names(query.dimensions, dimension_names, "dimensions", "dimension")
    if not query.measures and not query.dimensions:
        raise QueryError("measures", "ask for at least one measure or dimension")
    dimensions = query.dimensions
    if query.grain is not None:
        if query.grain not in GRAINS:
            raise QueryError("grain", f"unknown grain '{query.grain}'"
                             f"{did_you_mean(query.grain, GRAINS)}; use one of {', '.join(GRAINS)}")
        if time is None:
            raise QueryError("grain", f"source '{source.name}' has no time column to bucket")
        if time not in dimensions:
            dimensions = (*dimensions, time)
    elif time is not None and time in dimensions:
        raise QueryError("grain", f"dimension '{time}' is the time column: give a 'grain' "
                         f"({', '.join(GRAINS)})")
    for index, item in enumerate(query.filters):
        where = f"filters[{index}]"
        if item.member == time:
            raise QueryError(f"{where}.member", f"filters on the time column '{time}' are not "
                             "supported; filter on a dimension")
        if item.member not in source.dimensions:
            raise QueryError(f"{where}.member", f"unknown dimension '{item.member}'"
                             f"{did_you_mean(item.member, list(source.dimensions))}")
        if item.op not in FILTER_OPS:
            raise QueryError(f"{where}.op", f"unknown operator '{item.op}'"
                             f"{did_you_mean(item.op, FILTER_OPS)}; use one of "
                             f"{', '.join(FILTER_OPS)}")
        if not item.values or (item.op in ("eq", "ne") and len(item.values) != 1):
            raise QueryError(f"{where}.value", f"operator '{item.op}' takes "
                             f"{'one value' if item.op in ('eq', 'ne') else 'a non-empty list'}")
        for value in item.values:
            if value is None or isinstance(value, dict | list):
                raise QueryError(f"{where}.value", "filter values must be strings or numbers")
    returned = list(dimensions) + list(query.measures)
    for index, sort in enumerate(query.order):
        if sort.member not in returned:
            raise QueryError(f"order[{index}]", f"cannot order by '{sort.member}': it is not "
                             f"returned{did_you_mean(sort.member, returned)}")
    order = query.order or tuple(Order(name) for name in dimensions)
    limit = DEFAULT_LIMIT if query.limit is None else query.limit
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise QueryError("limit", f"limit must be an integer from 1 to {MAX_LIMIT}")
    if isinstance(query.offset, bool) or not isinstance(query.offset, int) or query.offset < 0:
        raise QueryError("offset", "offset must be a non-negative integer")
    return replace(query, dimensions=dimensions, order=order, limit=limit)
