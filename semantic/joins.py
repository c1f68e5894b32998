"""Joins between sources: the paths a source reaches through its joins, and the dimensions
along them (``airline.name``, ``plane.maker.country``).

A path never visits a source twice (the rules refuse cycles), so every source reaches finitely
many paths; the same source may appear under several join names (an airport as origin and as
destination).
"""

from __future__ import annotations

from dataclasses import dataclass

from semantic.model import Dimension, Join, Model, Source

#: joins followed from a source, at most (a path longer than this is refused as unknown)
MAX_HOPS = 4


@dataclass(frozen=True, slots=True)
class JoinPath:
    """The joins from a root source to ``target``, in order."""

    joins: tuple[Join, ...]
    target: Source

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(j.name for j in self.joins)

    @property
    def name(self) -> str:
        return ".".join(self.names)


def join_paths(model: Model, source: Source) -> dict[tuple[str, ...], JoinPath]:
    """Every path from ``source`` through its joins (and theirs), breadth first."""
    found: dict[tuple[str, ...], JoinPath] = {}
    frontier = [((), source, (source.name,))]
    while frontier:
        step: list[tuple[tuple[Join, ...], Source, tuple[str, ...]]] = []
        for joins, at, visited in frontier:
            if len(joins) >= MAX_HOPS:
                continue
            for join in at.joins:
                target = model.source(join.source.name)
                if target is None or target.name in visited:
                    continue  # unknown sources and cycles are the rules' to report
                path = (*joins, join)
                found[tuple(j.name for j in path)] = JoinPath(path, target)
                step.append((path, target, (*visited, target.name)))
        frontier = step  # type: ignore[assignment]
    return found


def split_member(name: str) -> tuple[tuple[str, ...], str]:
    """``"plane.maker.country"`` -> ``(("plane", "maker"), "country")``."""
    *path, member = name.split(".")
    return tuple(path), member


def joined_dimensions(model: Model, source: Source) -> dict[str, tuple[JoinPath, Dimension]]:
    """Every dimension reachable through joins, by its dotted name."""
    found: dict[str, tuple[JoinPath, Dimension]] = {}
    for names, path in join_paths(model, source).items():
        for dimension in path.target.dimensions:
            found[".".join((*names, dimension.name))] = (path, dimension)
    return found


def dimension_names(model: Model, source: Source) -> list[str]:
    """The source's own dimensions, then every joined one."""
    return [d.name for d in source.dimensions] + list(joined_dimensions(model, source))
