"""The tables the SQL interface shows: one per source the caller may read, its columns the
dimensions (joined ones named after their path, ``user.country``), the time column, and the
measures and metrics, each with the PostgreSQL type its values are answered as.

Built from ``/v1/meta`` as the caller sees it (so a credential limited to some members sees
only those columns) and the compiled model's types.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.model.compiled import CompiledModel, CompiledSource
from server.sql.types import FLOAT8, INT8, NUMERIC, TIMESTAMP, PgType, clickhouse_type

#: what a column of a source table is
DIMENSION, TIME, MEASURE, METRIC = "dimension", "time", "measure", "metric"


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: PgType
    kind: str
    #: a measure's aggregation (``sum``, ``count_distinct``, ...)
    agg: str | None = None
    #: a measure's argument as the model writes it (``revenue``), and whether it is filtered
    argument: str | None = None
    filtered: bool = False
    description: str | None = None
    #: the time column's resolution: the next instant after a value (for inclusive bounds)
    step: dt.timedelta = dt.timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    description: str | None
    columns: tuple[Column, ...]

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def time(self) -> Column | None:
        return next((c for c in self.columns if c.kind == TIME), None)

    def measure_for(self, agg: str, argument: str | None) -> Column | None:
        """The unfiltered measure aggregating ``argument`` (None: rows) with ``agg``."""
        return next((c for c in self.columns if c.kind == MEASURE and c.agg == agg
                     and c.argument == argument and not c.filtered), None)


Schema = Mapping[str, Table]


_PRECISION = re.compile(r"DateTime64\((\d)")


def time_step(clickhouse: str) -> dt.timedelta:
    """The smallest difference between two values of a time column's type.

    >>> [str(time_step(t)) for t in ("DateTime64(3, 'UTC')", "Date", "DateTime")]
    ['0:00:00.001000', '1 day, 0:00:00', '0:00:01']
    """
    found = _PRECISION.search(clickhouse)
    if found is not None:
        return dt.timedelta(microseconds=10 ** max(0, 6 - int(found.group(1))))
    if "DateTime" in clickhouse:
        return dt.timedelta(seconds=1)
    return dt.timedelta(days=1)


def _measure_type(source: CompiledSource, name: str, agg: str) -> PgType:
    if agg in ("count", "count_distinct", "count_distinct_approx"):
        return INT8
    if agg in ("sum", "min", "max"):
        measure = source.measures[name]
        result = source.components[measure.components[0]].result_type if \
            measure.components else ""
        typed = clickhouse_type(result)
        return typed if typed in (INT8, NUMERIC, FLOAT8, TIMESTAMP) else FLOAT8
    return FLOAT8


def build_schema(meta: Mapping[str, Any], compiled: CompiledModel) -> dict[str, Table]:
    """The tables of ``meta`` (``/v1/meta`` as the caller may see it)."""
    tables: dict[str, Table] = {}
    for source in meta.get("sources", ()):
        own = compiled.sources.get(source["name"])
        if own is None:
            continue
        columns: list[Column] = []
        for dimension in source.get("dimensions", ()):
            columns.append(Column(dimension["name"], clickhouse_type(dimension["type"]),
                                  DIMENSION, description=dimension.get("description")))
        time = source.get("time")
        if time is not None:
            columns.append(Column(time["name"], TIMESTAMP, TIME,
                                  description="the time column: group by date_trunc('<grain>', "
                                  f"{time['name']}), filter with ranges on it",
                                  step=time_step(time["type"])))
        for measure in source.get("measures", ()):
            columns.append(Column(measure["name"], _measure_type(own, measure["name"],
                                                                 measure["agg"]),
                                  MEASURE, measure["agg"], measure.get("sql"),
                                  measure.get("filter") is not None,
                                  measure.get("description")))
        for metric in source.get("metrics", ()):
            columns.append(Column(metric["name"], FLOAT8, METRIC,
                                  description=metric.get("description")))
        tables[source["name"]] = Table(source["name"], source.get("description"),
                                       tuple(columns))
    return tables
