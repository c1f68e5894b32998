"""Cube's view of a source: the source is the cube, members are ``<source>.<member>``, and each
member has the type, title and aggregation type Cube's meta and annotations carry."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from engine.model.compiler import CompiledSource
from engine.query.request import QueryError
from semantic.model import GRAINS
from semantic.suggest import did_you_mean, shown

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


def humanize(name: str) -> str:
    """Cube's default title of a name: ``total_events`` -> ``Total Events``."""
    return " ".join(word[:1].upper() + word[1:] for word in name.replace("_", " ").split())


@dataclass(frozen=True, slots=True)
class Member:
    """One member of a cube: ``kind`` is ``measure``, ``dimension`` or ``time``."""

    cube: str
    name: str
    kind: str
    type: str
    description: str
    agg_type: str | None = None
    nullable: bool = False

    @property
    def key(self) -> str:
        return f"{self.cube}.{self.name}"

    def annotation(self) -> dict[str, object]:
        """The member's entry in a load response's ``annotation``."""
        entry: dict[str, object] = {
            "title": f"{humanize(self.cube)} {humanize(self.name)}",
            "shortTitle": humanize(self.name), "description": self.description or None,
            "type": self.type, "meta": None}
        if self.kind == "measure":
            entry["drillMembers"] = []
            entry["drillMembersGrouped"] = {"measures": [], "dimensions": []}
        return entry


def cube_members(source: CompiledSource) -> dict[str, Member]:
    """Every member of a source, by our name (the time column included)."""
    model = source.source
    members: dict[str, Member] = {}
    for name, dimension in source.dimensions.items():
        declared = model.dimension(name)
        members[name] = Member(source.name, name, "dimension", cube_type(dimension.type),
                               declared.description if declared else "",
                               nullable=dimension.type.startswith(("Nullable(",
                                                                   "LowCardinality(Nullable(")))
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
