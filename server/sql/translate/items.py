"""Select items: the dimensions, the grain of the time column (``date_trunc``, ``::date``,
``EXTRACT(YEAR ...)``) and the measures a statement asks (``MEASURE(m)``, a measure's name,
or an aggregate matching its kind)."""

from __future__ import annotations

from dataclasses import replace

from sqlglot import exp

from server.sql.errors import SYNTAX_ERROR, UNSUPPORTED, SqlError
from server.sql.schema import DIMENSION, MEASURE, METRIC, TIME, Column, Table
from server.sql.translate.builder import Builder, Item, columns_hint, keeps_values, output_name
from server.sql.types import (
    DATE,
    INT8,
    TIMESTAMP,
    PgType,
)

GRAINS = {"minute": "minute", "hour": "hour", "day": "day", "week": "week", "month": "month",
          "quarter": "quarter", "year": "year"}
#: the aggregate functions that stand for a measure of a matching kind
_AGGREGATES: dict[type[exp.Expression], tuple[str, ...]] = {
    exp.Sum: ("sum", "count"), exp.Min: ("min",), exp.Max: ("max",), exp.Avg: ("avg",),
}

# -- select items -------------------------------------------------------------------------


def _measure(table: Table, column: Column) -> tuple[str, PgType]:
    if column.kind not in (MEASURE, METRIC):
        raise SqlError(UNSUPPORTED, f"{column.name} is a dimension, not a measure; aggregates "
                       "stand for the model's measures", hint=_measures_hint(table))
    return column.name, column.type


def _measures_hint(table: Table) -> str:
    names = [c.name for c in table.columns if c.kind in (MEASURE, METRIC)]
    return (f"write MEASURE(name) with one of: {', '.join(names)}" if names else
            f"{table.name} has no measures")


def aggregate_measure(builder: Builder, node: exp.Expression) -> tuple[str, PgType]:
    """The measure an aggregate call stands for."""
    table = builder.table
    shown = node.sql("postgres")[:200]
    if isinstance(node, exp.Anonymous) and str(node.this).lower() == "measure":
        if len(node.expressions) != 1:
            raise SqlError(SYNTAX_ERROR, "MEASURE takes one measure or metric name")
        column = builder.column(node.expressions[0], "MEASURE's argument")
        return _measure(table, column)
    if isinstance(node, exp.Count):
        argument = node.this
        if isinstance(argument, exp.Star) or (isinstance(argument, exp.Literal) and
                                              not argument.is_string):  # COUNT(1)
            found = table.measure_for("count", None)
            if found is None:
                raise SqlError(UNSUPPORTED, f"{table.name} has no unfiltered count measure for "
                               "COUNT(*)", hint=_measures_hint(table))
            return found.name, INT8
        if isinstance(argument, exp.Distinct) and len(argument.expressions) == 1 and \
                isinstance(argument.expressions[0], exp.Column):
            name = argument.expressions[0].name
            found = table.measure_for("count_distinct", name)
            if found is None:
                raise SqlError(UNSUPPORTED, f"no exact distinct count of {name} is defined for "
                               f"{shown}; add a measure with agg: count_distinct and column: "
                               f"{name}", hint=_measures_hint(table))
            return found.name, INT8
        raise SqlError(UNSUPPORTED, f"{shown} cannot be answered: COUNT(*) counts rows with the "
                       "model's count measure, COUNT(DISTINCT column) uses its exact distinct "
                       "count", hint=_measures_hint(table))
    kinds = _AGGREGATES.get(type(node))
    if kinds is None:
        raise SqlError(UNSUPPORTED, f"{shown} cannot be answered exactly from the model; "
                       "select dimensions, date_trunc of the time column and measures",
                       hint=_measures_hint(table))
    function = type(node).__name__.upper()
    argument = node.this
    if isinstance(argument, exp.Distinct):
        raise SqlError(UNSUPPORTED, f"{shown}: DISTINCT is supported in COUNT only")
    if isinstance(argument, exp.Column) and table.column(argument.name) is None:
        # a column of the source's table the model aggregates (SUM(amount)): its measure
        found = next((m for kind in kinds if (m := table.measure_for(kind, argument.name))),
                     None)
        if found is not None:
            return found.name, found.type
    column = builder.column(argument, f"{function}'s argument")
    if column.kind in (MEASURE, METRIC):
        if column.agg in kinds:
            return column.name, column.type
        what = f"a {column.agg}" if column.agg else "a metric"
        raise SqlError(UNSUPPORTED, f"{shown} cannot be answered exactly: {column.name} is "
                       f"{what.replace('_', ' ')}, which {function} of its groups does "
                       f"not give; write MEASURE({column.name})")
    found = next((table.measure_for(kind, column.name) for kind in kinds
                  if table.measure_for(kind, column.name) is not None), None)
    if found is None:
        raise SqlError(UNSUPPORTED, f"{shown}: the model defines no unfiltered "
                       f"{kinds[0]} of {column.name}", hint=_measures_hint(table))
    return found.name, found.type


def select_item(builder: Builder, node: exp.Expression) -> Item:
    name = node.alias if isinstance(node, exp.Alias) else None
    inner = node.this if isinstance(node, exp.Alias) else node
    day = _day_of(builder, inner)
    if day is not None:
        return replace(day, name=name or output_name(node))
    casts: list[exp.Cast] = []
    while isinstance(inner, exp.Cast | exp.Paren):
        if isinstance(inner, exp.Cast):
            casts.append(inner)
        inner = inner.this
    item = _plain_item(builder, inner, name or output_name(node))
    for cast in casts:
        if not keeps_values(cast, item.type):
            raise SqlError(UNSUPPORTED, f"{cast.sql('postgres')[:200]}: the cast would change "
                           f"the values of {item.name} ({item.type.name}); cast them in the "
                           "tool, or select them as they are")
    return item


def _plain_item(builder: Builder, inner: exp.Expression, name: str) -> Item:
    key = inner.sql("postgres")
    if isinstance(inner, exp.Extract):
        return _extract(builder, inner, name, key)
    if isinstance(inner, exp.Star):
        raise SqlError(UNSUPPORTED, f"SELECT * over {builder.table.name} would return raw rows, "
                       "which the model does not answer; name dimensions and measures: SELECT "
                       "region, MEASURE(total_events) FROM events GROUP BY 1",
                       hint=columns_hint(builder.table))
    if isinstance(inner, exp.Column):
        column = builder.column(inner, "a select item")
        if column.kind == DIMENSION:
            return Item("dimension", column.name, name, column.type, key)
        if column.kind == TIME:
            raise SqlError(UNSUPPORTED, f"{column.name} is the time column: group by "
                           f"date_trunc('day', {column.name}) (or minute, hour, week, month, "
                           "quarter, year)")
        member, typed = _measure(builder.table, column)
        return Item("measure", member, name, typed, key)
    if isinstance(inner, exp.TimestampTrunc | exp.DateTrunc):
        column = builder.column(inner.this, "date_trunc's second argument")
        if column.kind != TIME:
            raise SqlError(UNSUPPORTED, f"date_trunc applies to the time column only, not "
                           f"{column.name}")
        unit = inner.unit.name.lower() if inner.unit is not None else ""
        grain = GRAINS.get(unit)
        if grain is None:
            raise SqlError(UNSUPPORTED, f"date_trunc('{unit}', ...): the grains are "
                           f"{', '.join(GRAINS)}")
        zone = inner.args.get("zone")
        if zone is not None:
            if not (isinstance(zone, exp.Literal) and zone.is_string):
                raise SqlError(UNSUPPORTED, "date_trunc's zone must be a literal name, "
                               "'Europe/Berlin'")
            if builder.zone not in (None, zone.this):
                raise SqlError(UNSUPPORTED, "a query has one time zone: date_trunc with "
                               f"'{builder.zone}' and '{zone.this}'")
            builder.zone = zone.this
        _grain(builder, grain)
        return Item("grain", column.name, name, TIMESTAMP, key, grain)
    member, typed = aggregate_measure(builder, inner)
    return Item("measure", member, name, typed, key)


def _grain(builder: Builder, grain: str) -> None:
    if builder.grain is not None and builder.grain != grain:
        raise SqlError(UNSUPPORTED, "a query has one grain: date_trunc with "
                       f"'{builder.grain}' and '{grain}'")
    builder.grain = grain


def _day_of(builder: Builder, node: exp.Expression) -> Item | None:
    """``ts::date``, ``CAST(ts AS DATE)``, ``DATE(ts)`` of the time column: the day grain,
    answered as dates."""
    if isinstance(node, exp.Cast) and node.to.this in (exp.DType.DATE, exp.DType.DATE32):
        argument = node.this
    elif isinstance(node, exp.Date) and not node.expressions:
        argument = node.this
    else:
        return None
    time = builder.table.time
    if time is None or not isinstance(argument, exp.Column) or argument.name != time.name:
        return None
    _grain(builder, "day")
    return Item("grain", time.name, "", DATE, node.sql("postgres"), "day")


def _extract(builder: Builder, node: exp.Extract, name: str, key: str) -> Item:
    """``EXTRACT(YEAR FROM ts)`` (or ``date_part('year', ts)``): the year grain, answered as
    the year's number. Other fields repeat across years (a month of every year) and are not a
    grain of the model."""
    column = builder.column(node.expression, "EXTRACT's argument")
    field = node.this.name.lower()
    if column.kind != TIME or field != "year":
        raise SqlError(UNSUPPORTED, f"EXTRACT({field.upper()} FROM {column.name}) cannot be "
                       "answered: EXTRACT(YEAR FROM <time column>) is the year grain; for "
                       f"other buckets write date_trunc('{field}', {column.name})")
    _grain(builder, "year")
    return Item("grain", column.name, name, INT8, key, "year", part="year")
