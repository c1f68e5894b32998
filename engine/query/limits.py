"""Bounds on the size of one query, so that what a request costs stays small and predictable.

Every check walks the query once, without recursion, so a query far beyond the limits is
refused as cheaply as a small one is accepted. The server reads the values from its settings
(``server/settings.py``); these defaults are the documented ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.query.request import Filter, FilterGroup, FilterNode, Query, QueryError


@dataclass(frozen=True, slots=True)
class QueryLimits:
    """The most one query may ask for (each a setting, see docs/query-api.md#limits)."""

    #: measures plus dimensions
    members: int = 50
    #: conditions and groups, at every level of nesting
    filters: int = 200
    #: groups inside groups: ``[{"and": [{"or": [...]}]}]`` is 2 deep
    filter_depth: int = 8
    #: ``order`` entries
    order: int = 50
    #: values in one ``in`` / ``not_in`` list
    list_values: int = 10_000
    #: the largest ``limit`` (rows in one answer)
    rows: int = 100_000
    #: the largest ``offset``
    offset: int = 1_000_000


def check_query_limits(query: Query, limits: QueryLimits) -> None:
    """Raise ``QueryError`` naming the field if ``query`` asks for more than ``limits`` allow.

    >>> check_query_limits(Query("s", ("a",) * 3), QueryLimits(members=2))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    engine.query.request.QueryError: a query may ask for at most 2 measures and dimensions ...
    """
    members = len(query.measures) + len(query.dimensions)
    if members > limits.members:
        field = "measures" if len(query.measures) > limits.members else "dimensions"
        raise QueryError(field, f"a query may ask for at most {limits.members} measures and "
                         f"dimensions (it asks for {members}); set SEMANTIC_MAX_MEMBERS to "
                         "allow more")
    if len(query.order) > limits.order:
        raise QueryError("order", f"a query may have at most {limits.order} 'order' entries "
                         f"(it has {len(query.order)}); set SEMANTIC_MAX_ORDER to allow more")
    check_filter_limits(query.filters, limits)
    if query.limit is not None and not isinstance(query.limit, bool) and \
            isinstance(query.limit, int) and query.limit > limits.rows:
        raise QueryError("limit", f"limit must be an integer from 1 to {limits.rows}; set "
                         "SEMANTIC_MAX_ROWS to allow more")
    if not isinstance(query.offset, bool) and isinstance(query.offset, int) and \
            query.offset > limits.offset:
        raise QueryError("offset", f"offset must be an integer from 0 to {limits.offset}; set "
                         "SEMANTIC_MAX_OFFSET to allow more")


def check_filter_limits(filters: tuple[FilterNode, ...], limits: QueryLimits,
                        prefix: str = "filters") -> None:
    """Count, depth and list lengths of a filter tree, walked with a stack."""
    count = 0
    stack: list[tuple[FilterNode, str, int]] = [
        (node, f"{prefix}[{i}]", 0) for i, node in reversed(list(enumerate(filters)))]
    while stack:
        node, where, depth = stack.pop()
        count += 1
        if count > limits.filters:
            raise QueryError(where, f"a query may have at most {limits.filters} filters, "
                             "counting conditions and groups at every level; set "
                             "SEMANTIC_MAX_FILTERS to allow more")
        if isinstance(node, FilterGroup):
            if depth >= limits.filter_depth:
                raise QueryError(where, f"filter groups may nest at most {limits.filter_depth} "
                                 "deep; set SEMANTIC_MAX_FILTER_DEPTH to allow more")
            stack += [(item, f"{where}.{node.op}[{i}]", depth + 1)
                      for i, item in reversed(list(enumerate(node.items)))]
        elif isinstance(node, Filter) and len(node.values) > limits.list_values:
            raise QueryError(f"{where}.value", f"a filter may list at most "
                             f"{limits.list_values} values (it lists {len(node.values)}); set "
                             "SEMANTIC_MAX_LIST_VALUES to allow more")
