"""Endpoints generated from the model's ``endpoints:``: the saved query of each with the
caller's query parameters, and which table serves each one now."""

from __future__ import annotations

from collections.abc import Iterator

from engine.query.normalize import COMPARE_SUFFIXES
from engine.query.request import Filter, Order, Query, QueryError, TimeRange
from semantic.errors import FieldError, SemanticError
from semantic.joins import dimension_names
from semantic.model import Endpoint, Model
from semantic.suggest import did_you_mean, shown
from server.runtime.compiled import Runtime

#: query parameters every generated endpoint takes besides dimension filters
ENDPOINT_PARAMETERS = ("from", "to", "range", "timezone", "compare", "limit", "offset",
                       "format")


class UnknownEndpoint(FieldError):
    """No endpoint of the current model has this path."""

    code = "not_found"
    status = 404


def _integer(name: str, values: list[str]) -> int:
    try:
        return int(values[-1])
    except ValueError:  # also for more digits than Python reads (about 4,300)
        raise QueryError(name, f"{name} must be an integer, not '{shown(values[-1])}'") from None


def parameter_field(field: str, params: list[str | None]) -> str:
    """The query parameter behind a field of the engine's query (``filters[2].value`` ->
    ``region``, ``time_range.from`` -> ``from``), so errors name what the caller sent."""
    if field.startswith("filters["):
        index = field[len("filters["):].split("]", 1)[0]
        if index.isdigit() and int(index) < len(params) and params[int(index)] is not None:
            return str(params[int(index)])
        return field
    return {"time_range.from": "from", "time_range.to": "to",
            "time_range": "range"}.get(field, field)


def endpoint_query(endpoint: Endpoint, model: Model,
                    params: dict[str, list[str]]) -> tuple[Query, list[str | None]]:
    """The saved query of an endpoint with the caller's parameters: ``?region=eu`` (repeat for
    several values) filters a dimension (``?airline.name=United`` a joined one);
    ``from``/``to`` or ``range`` (``last 7 days``) and ``timezone`` set the time range;
    ``compare`` (``1 year``, ``previous_period``) adds each measure's compared columns;
    ``limit``/``offset`` page. Also returns, per filter, the parameter it came from (None for
    the endpoint's own filters)."""
    source = model.source(endpoint.source.name)
    assert source is not None
    measures = tuple(f.member.name for f in endpoint.fields if source.is_aggregate(f.member.name))
    dimensions = tuple(f.member.name for f in endpoint.fields
                       if not source.is_aggregate(f.member.name))
    by_field = {f.name: f.member.name for f in endpoint.fields}
    filters = [Filter(f.dimension.name, f.op, f.values) for f in endpoint.filters]
    origins: list[str | None] = [None] * len(filters)
    limit, offset = endpoint.limit, 0
    start = end = relative = timezone = compare = None
    for key, values in params.items():
        if key == "format":  # the answer's format, not part of the query
            continue
        if key == "limit":
            limit = _integer("limit", values)  # replaces the endpoint's own (query bounds)
        elif key == "offset":
            offset = _integer("offset", values)
        elif key in ("from", "to", "range", "timezone", "compare"):
            value = values[-1]
            if key == "compare":
                compare = value
            elif key == "from":
                start = value
            elif key == "to":
                end = value
            elif key == "range":
                relative = value
            else:
                timezone = value
        elif source.dimension(key) is not None or "." in key and key in dimension_names(
                model, source):
            filters.append(Filter(key, "in" if len(values) > 1 else "eq", tuple(values)))
            origins.append(key)
        else:
            known = dimension_names(model, source) + list(ENDPOINT_PARAMETERS)
            raise QueryError(shown(key), f"unknown query parameter '{shown(key)}'"
                             f"{did_you_mean(key, known)}; use a dimension filter or one of "
                             f"{', '.join(known)}")
    if relative is not None and (start is not None or end is not None):
        raise QueryError("range", "give 'range' or 'from'/'to', not both")
    time_range = None
    if relative is not None:
        time_range = TimeRange(relative=relative)
    elif start is not None or end is not None:
        time_range = TimeRange(start, end)
    return Query(
        source=source.name,
        measures=measures,
        dimensions=dimensions,
        grain=endpoint.grain,
        filters=tuple(filters),
        order=tuple(Order(by_field[o.name.name], o.descending) for o in endpoint.order),
        limit=limit,
        offset=offset,
        time_range=time_range,
        timezone=timezone,
        compare=compare,
    ), origins


def endpoint_fields(endpoint: Endpoint, model: Model, compared: bool) -> list[tuple[str, str]]:
    """An endpoint's (JSON name, member) pairs; with a comparison, each measure field's
    compared columns too, named after the field (``n__compare`` for ``n: total_events``)."""
    fields = [(f.name, f.member.name) for f in endpoint.fields]
    source = model.source(endpoint.source.name)
    if not compared or source is None:
        return fields
    return fields + [(name + suffix, member + suffix) for name, member in fields
                     if source.is_aggregate(member) for suffix in COMPARE_SUFFIXES]


def endpoint_routing(runtime: Runtime) -> Iterator[str]:
    """Which table serves each endpoint's saved query now."""
    for endpoint in runtime.model.endpoints:
        try:
            plan = runtime.plan(endpoint_query(endpoint, runtime.model, {})[0])
        except SemanticError as exc:
            yield f"  GET {endpoint.path}: cannot be planned: {exc.message}"
            continue
        served = f"rollup {plan.rollup.name} ({plan.table})" if plan.rollup else \
            f"the raw table {plan.table} (no ready rollup can serve it)"
        yield f"  GET {endpoint.path} <- {served}"
