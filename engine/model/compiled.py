"""The compiled model's types: sources, dimensions, measures and their stored partials
(components), metrics and rollups, as ``engine.model.compiler`` makes them from the model and
the warehouse's types, and as routing, SQL building and DDL read them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sqlglot import exp

from engine.dialect.aggregations import Aggregation, ComponentKind
from engine.model.joins import Needs, merge_needs
from engine.time.ranges import Calendar
from semantic.joins import JoinPath
from semantic.model import Model, Source, TimeFunction

#: (component kind, argument SQL, filter SQL)
ComponentKey = tuple[str, str, str]
ProbeKey = tuple[str, ...]
#: the joins an expression reads: (path, attributes) pairs, hashable
JoinNeeds = tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]
Paths = Mapping[tuple[str, ...], JoinPath]


def needs_of(components: Iterable[CompiledComponent]) -> Needs:
    """The joins reading the components' arguments and conditions need, merged."""
    return merge_needs(*({p: a for p, a in c.needs} for c in components))


def frozen_needs(needs: Needs) -> JoinNeeds:
    return tuple(sorted((path, tuple(sorted(attributes))) for path, attributes in needs.items()))


@dataclass(frozen=True, slots=True)
class SourceEngine:
    """The source table's engine and keys, from ``system.tables`` ("" when unknown)."""

    engine: str = ""
    partition_key: str = ""
    sorting_key: str = ""
    primary_key: str = ""

    @property
    def replicated(self) -> bool:
        return self.engine.startswith("Replicated")


@dataclass(frozen=True, slots=True)
class CompiledDimension:
    name: str
    expression: exp.Expression
    type: str
    #: the joins it is reached through (``("plane",)`` for ``plane.manufacturer``); () if own
    path: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CompiledComponent:
    key: ComponentKey
    kind: ComponentKind
    argument: exp.Expression | None
    condition: exp.Expression | None
    argument_type: str
    result_type: str
    #: joined columns its argument or condition reads (``plane.seats``)
    needs: JoinNeeds = ()

    @property
    def column_type(self) -> str:
        return self.kind.column_type(self.argument_type, self.result_type)


@dataclass(frozen=True, slots=True)
class CompiledMeasure:
    name: str
    aggregation: Aggregation
    argument: exp.Expression | None
    condition: exp.Expression | None
    #: parameters the stored partials are read with (the level of a quantile)
    params: tuple[float, ...]
    components: tuple[ComponentKey, ...]
    description: str
    exact: bool
    note: str


@dataclass(frozen=True, slots=True)
class CompiledMetric:
    """A derived metric: ``expression`` names measures and metrics as columns."""

    name: str
    expression: exp.Expression
    #: the measures it is computed from, directly or through other metrics
    leaves: tuple[str, ...]
    description: str
    exact: bool
    note: str
    #: a time function of the measure ``expression`` names (rolling, to_date, ...)
    time: TimeFunction | None = None


@dataclass(frozen=True, slots=True)
class CompiledRollup:
    name: str
    source: str
    database: str
    table: str
    view: str
    grain: str | None
    bucket: str | None
    dimensions: tuple[tuple[str, CompiledDimension], ...]
    components: tuple[tuple[str, CompiledComponent], ...]
    measures: tuple[str, ...]
    #: on a cluster: ``table`` is a Distributed table over ``local_table`` on every node
    cluster: str | None = None
    #: PARTITION BY of the rollup: the source's time partitioning applied to the bucket
    partition: exp.Expression | None = None
    #: a rollup with neither grain nor dimensions is ordered by this constant column: with an
    #: empty sorting key (``ORDER BY tuple()``) AggregatingMergeTree merges parts without
    #: aggregating their rows, so every insert would add a state to merge at read time
    constant_key: str | None = None
    #: root columns stored so that joined dimensions can be looked up at query time:
    #: (rollup column, source column, type); a joined dimension's attribute is never stored
    keys: tuple[tuple[str, str, str], ...] = ()
    #: tables whose attributes the rollup stores (measures over joined columns): it is stale
    #: once one of them changes, until rebuilt
    stores_from: tuple[str, ...] = ()
    #: the joined dimensions the rollup declares (looked up through ``keys``)
    joined: tuple[str, ...] = ()
    #: ``database.table`` (made once: routing asks for it many times per query)
    qualified_table: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "qualified_table", f"{self.database}.{self.table}")

    @property
    def local_table(self) -> str:
        """The table the view feeds: ``table`` itself, or its per-node table on a cluster."""
        return f"{self.table}_local" if self.cluster else self.table

    def dimension_column(self, name: str) -> str | None:
        return next((column for column, d in self.dimensions if d.name == name), None)

    def component_column(self, key: ComponentKey) -> str | None:
        return next((column for column, c in self.components if c.key == key), None)

    def stored_column(self, column: str) -> str | None:
        """Where the rollup keeps the source column ``column`` as it is (a join key, or a
        dimension that is that column), if it does."""
        found = next((c for c, own, _ in self.keys if own == column), None)
        if found is not None:
            return found
        return next((c for c, d in self.dimensions if not d.path and
                     isinstance(d.expression, exp.Column) and not d.expression.table and
                     d.expression.name == column), None)

    @property
    def needs(self) -> Needs:
        """The joins filling the rollup reads (measures over joined columns)."""
        return needs_of(c for _, c in self.components)


# weakly referenced: the planner's memo of rendered SQL must not keep a replaced model alive
@dataclass(frozen=True, slots=True, weakref_slot=True)
class CompiledSource:
    source: Source
    columns: Mapping[str, str]
    time: CompiledDimension | None
    dimensions: Mapping[str, CompiledDimension]
    measures: Mapping[str, CompiledMeasure]
    components: Mapping[ComponentKey, CompiledComponent]
    rollups: tuple[CompiledRollup, ...]
    metrics: Mapping[str, CompiledMetric]
    cluster: str | None = None
    engine: SourceEngine = SourceEngine()
    #: every path through the source's joins (and theirs)
    paths: Paths = field(default_factory=dict)
    #: ``components_of`` answers, by measure or metric (routing asks for them per piece)
    _components_of: dict[str, tuple[ComponentKey, ...]] = field(
        default_factory=dict, init=False, compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def local_table(self) -> exp.Table:
        """The table inserts land in on each node: ``local_table``, by default
        ``<table>_local`` on a cluster, else the source table itself."""
        if self.cluster is None:
            return self.table
        return exp.to_table(self.source.local_table or f"{self.source.table}_local")

    @property
    def timezone(self) -> str:
        return self.source.timezone

    @property
    def calendar(self) -> Calendar:
        """The source's weeks and fiscal years: week rollups are cut in it."""
        return Calendar.named(self.source.week_start, self.source.fiscal_year_start)

    def is_aggregate(self, name: str) -> bool:
        return name in self.measures or name in self.metrics

    def windowed(self, name: str) -> bool:
        """Whether a member is a time function or computed from one (it reads other buckets)."""
        return any(atom in self.metrics for atom in self.atoms(name))

    def atoms(self, name: str) -> tuple[str, ...]:
        """The measures and time functions a measure or metric is computed from, bucket by
        bucket (a time function is one: it reads other buckets of its measure)."""
        metric = self.metrics.get(name)
        if metric is None or metric.time is not None:
            return (name,)
        found: list[str] = []
        for column in metric.expression.find_all(exp.Column):
            found += [atom for atom in self.atoms(column.name) if atom not in found]
        return tuple(found)

    def leaves(self, name: str) -> tuple[str, ...]:
        """The measures a measure or metric is computed from."""
        return self.metrics[name].leaves if name in self.metrics else (name,)

    def components_of(self, name: str) -> tuple[ComponentKey, ...]:
        """Every stored partial a measure or metric needs."""
        found = self._components_of.get(name)
        if found is None:
            keys: list[ComponentKey] = []
            for leaf in self.leaves(name):
                keys += [k for k in self.measures[leaf].components if k not in keys]
            found = self._components_of[name] = tuple(keys)
        return found

    @property
    def table(self) -> exp.Table:
        return exp.to_table(self.source.table)

    def rollup(self, name: str) -> CompiledRollup | None:
        return next((r for r in self.rollups if r.name == name), None)


@dataclass(frozen=True, slots=True)
class CompiledModel:
    model: Model
    sources: Mapping[str, CompiledSource]

    def source(self, name: str) -> CompiledSource | None:
        return self.sources.get(name)

    @property
    def rollups(self) -> tuple[CompiledRollup, ...]:
        return tuple(r for s in self.sources.values() for r in s.rollups)


@dataclass(frozen=True, slots=True)
class SourceTypes:
    """What the warehouse said about a source: its columns and the probed expression types."""

    columns: Mapping[str, str]
    probed: Mapping[ProbeKey, str]
    engine: SourceEngine = SourceEngine()
