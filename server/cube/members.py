"""Cube's view of a source: the source is the cube, members are ``<source>.<member>``, and each
member has the type, title and aggregation type Cube's meta and annotations carry.

A dimension the source reaches through joins (``airline.name``) is a member of the source's
cube with the dots of its path written ``__`` (``flights.airline__name``), as Cube's member
names allow no dots: the source's cube is then what a Cube view over the joined cubes would be.
A source's own member of the same name keeps it (the joined one is left out of the cube).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from sqlglot import exp

from engine.model.compiled import CompiledSource
from engine.query.request import QueryError
from semantic.model import GRAINS
from semantic.suggest import did_you_mean, shown

logger = logging.getLogger(__name__)

#: what stands for each dot of a joined dimension's name in its Cube name
JOIN_SEPARATOR = "__"

#: our aggregations -> Cube's ``aggType``
AGG_TYPES = {"count": "count", "sum": "sum", "avg": "avg", "min": "min", "max": "max",
             "count_distinct": "countDistinct", "count_distinct_approx": "countDistinctApprox"}
_NUMBER_TYPES = ("Int", "UInt", "Float", "Decimal")


def base_type(type_text: str) -> str:
    while type_text.startswith(("Nullable(", "LowCardinality(")):
        type_text = type_text[type_text.index("(") + 1:-1]
    return type_text


def cube_type(type_text: str) -> str:
    """A ClickHouse type as Cube's member type: ``string``, ``number``, ``time``, ``boolean``.

    >>> cube_type("LowCardinality(String)"), cube_type("Nullable(UInt8)"), cube_type("Date")
    ('string', 'number', 'time')
    """
    base = base_type(type_text)
    if base.startswith(_NUMBER_TYPES):
        return "number"
    if base.startswith(("Date", "DateTime")):
        return "time"
    if base == "Bool":
        return "boolean"
    return "string"


def cube_name(name: str) -> str:
    """Our member name as Cube names it in the source's cube.

    >>> cube_name("region"), cube_name("airline.name"), cube_name("plane.maker.country")
    ('region', 'airline__name', 'plane__maker__country')
    """
    return name.replace(".", JOIN_SEPARATOR)


def humanize(name: str) -> str:
    """Cube's default title of a name: ``total_events`` -> ``Total Events``."""
    return " ".join(word[:1].upper() + word[1:] for word in name.replace("_", " ").split())


@dataclass(frozen=True, slots=True)
class Member:
    """One member of a cube: ``kind`` is ``measure``, ``dimension`` or ``time``; ``name`` is
    Cube's (``airline__name``), ``query_name`` ours (``airline.name``, what queries name)."""

    cube: str
    name: str
    kind: str
    type: str
    description: str
    agg_type: str | None = None
    nullable: bool = False
    query_name: str = ""
    #: the joins a joined dimension is reached through, and the source declaring it
    path: tuple[str, ...] = ()
    origin: str | None = None
    primary_key: bool = False

    def __post_init__(self) -> None:
        if not self.query_name:
            object.__setattr__(self, "query_name", self.name)

    @property
    def key(self) -> str:
        return f"{self.cube}.{self.name}"

    @property
    def meta(self) -> dict[str, object] | None:
        """Cube's custom ``meta`` of a member: where a joined dimension comes from."""
        if not self.path:
            return None
        return {"join": ".".join(self.path), "source": self.origin, "member": self.query_name}

    def annotation(self) -> dict[str, object]:
        """The member's entry in a load response's ``annotation``."""
        entry: dict[str, object] = {
            "title": f"{humanize(self.cube)} {humanize(self.name)}",
            "shortTitle": humanize(self.name), "description": self.description or None,
            "type": self.type, "meta": self.meta}
        if self.kind == "measure":
            entry["drillMembers"] = []
            entry["drillMembersGrouped"] = {"measures": [], "dimensions": []}
        return entry


def _key_column(source: CompiledSource, name: str) -> bool:
    """Whether the own dimension ``name`` is a column of the source's primary key."""
    expression = source.dimensions[name].expression
    return isinstance(expression, exp.Column) and not expression.table and \
        expression.name in source.source.primary_key


def _joined(source: CompiledSource, name: str) -> tuple[str, str]:
    """A joined dimension's description and the source declaring it."""
    dimension = source.dimensions[name]
    target = source.paths[dimension.path].target
    declared = target.dimension(name.rsplit(".", 1)[1])
    return (declared.description if declared else ""), target.name


def cube_members(source: CompiledSource) -> dict[str, Member]:
    """Every member of a source, by its Cube name (the time column included)."""
    model = source.source
    members: dict[str, Member] = {}
    own = set(model.member_names())
    for name, dimension in source.dimensions.items():
        nullable = dimension.type.startswith(("Nullable(", "LowCardinality(Nullable("))
        if not dimension.path:
            declared = model.dimension(name)
            members[name] = Member(source.name, name, "dimension", cube_type(dimension.type),
                                   declared.description if declared else "",
                                   nullable=nullable, primary_key=_key_column(source, name))
            continue
        flat = cube_name(name)
        if flat in own or flat in members:
            logger.warning("cube '%s': joined dimension '%s' is left out: its Cube name '%s' "
                           "is taken", source.name, name, flat)
            continue
        description, origin = _joined(source, name)
        members[flat] = Member(source.name, flat, "dimension", cube_type(dimension.type),
                               description, nullable=nullable, query_name=name,
                               path=dimension.path, origin=origin)
    if source.time is not None:
        members[source.time.name] = Member(source.name, source.time.name, "time", "time",
                                           "", nullable=source.time.type.startswith("Nullable("))
    for name, measure in source.measures.items():
        declared_measure = model.measure(name)
        agg = declared_measure.agg if declared_measure else ""
        members[name] = Member(source.name, name, "measure", "number", measure.description,
                               AGG_TYPES.get(agg, "number"), nullable=True)
    for name, metric in source.metrics.items():
        members[name] = Member(source.name, name, "measure", "number", metric.description,
                               "number", nullable=True)
    return members


class Cubes:
    """Members of every source, looked up by their Cube names."""

    def __init__(self, sources: Mapping[str, CompiledSource]) -> None:
        self.sources = sources
        self.members = {name: cube_members(source) for name, source in sources.items()}

    def resolve(self, key: object, field: str, kinds: tuple[str, ...]) -> Member:
        """The member named ``<cube>.<member>``; ``kinds`` are the kinds allowed here."""
        if not isinstance(key, str) or key.count(".") != 1:
            raise QueryError(field, f"a member is named '<cube>.<member>', got "
                             f"{shown(key) if isinstance(key, str) else type(key).__name__}")
        cube, name = key.split(".")
        members = self.members.get(cube)
        if members is None:
            raise QueryError(field, f"unknown cube '{shown(cube)}'"
                             f"{did_you_mean(cube, list(self.members))}; cubes: "
                             f"{', '.join(self.members)}")
        member = members.get(name)
        if member is None or member.kind not in kinds:
            known = [m.key for m in members.values() if m.kind in kinds]
            what = " or ".join(_KIND_WORDS[k] for k in kinds)
            raise QueryError(field, f"'{shown(key)}' is not a {what} of cube '{cube}'"
                             f"{did_you_mean(key, known)}; known: {', '.join(known)}")
        return member


_KIND_WORDS = {"measure": "measure", "dimension": "dimension", "time": "time dimension"}


def check_granularity(value: object, field: str) -> str:
    if not isinstance(value, str) or value not in GRAINS:
        hint = " ('second' is finer than any bucket we keep)" if value == "second" else ""
        raise QueryError(field, f"unsupported granularity {shown(str(value))}{hint}; use one "
                         f"of {', '.join(GRAINS)}")
    return value
