"""Walking located YAML: typed access to keys and values, collecting located issues instead of
stopping at the first."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from semantic.errors import Issue
from semantic.location import Location
from semantic.model import Ref
from semantic.parsing import YamlMap, YamlSeq
from semantic.suggest import did_you_mean

T = TypeVar("T")

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Reader:
    """Walks located YAML, collecting issues instead of stopping at the first."""

    def __init__(self) -> None:
        self.issues: list[Issue] = []

    def error(self, location: Location, message: str, code: str) -> None:
        self.issues.append(Issue(location, message, code))

    def mapping(self, value: Any, location: Location, what: str) -> YamlMap | None:
        if isinstance(value, YamlMap):
            return value
        self.error(location, f"{what} must be a mapping, got {kind_of(value)}", "type")
        return None

    def keys(self, node: YamlMap, path: tuple[str, ...], allowed: tuple[str, ...], what: str,
             required: tuple[str, ...] = ()) -> None:
        for key in node:
            if key not in allowed:
                hint = did_you_mean(str(key), allowed)
                self.error(
                    node.key_locations[key].at(*path, str(key)),
                    f"unknown key '{key}' in {what}{hint}; allowed keys: {', '.join(allowed)}",
                    "unknown-key",
                )
        for key in required:
            if key not in node or node[key] is None:
                self.error(node.location.at(*path), f"{what} is missing required key '{key}'",
                           "missing-key")

    def value_location(self, node: YamlMap, key: str, path: tuple[str, ...]) -> Location:
        return node.value_locations[key].at(*path, key)

    def key_location(self, node: YamlMap, key: str, path: tuple[str, ...]) -> Location:
        return node.key_locations[key].at(*path, key)

    def scalar(self, node: YamlMap, key: str, path: tuple[str, ...], kind: type[T],
               what: str) -> T | None:
        if key not in node or node[key] is None:
            return None
        value = node[key]
        if kind is int and isinstance(value, bool) or not isinstance(value, kind):
            self.error(self.value_location(node, key, path),
                       f"{what} must be {kind_name(kind)}, got {kind_of(value)}", "type")
            return None
        return value

    def identifier(self, name: Any, location: Location, what: str) -> bool:
        if isinstance(name, str) and IDENTIFIER.match(name):
            return True
        self.error(location, f"{what} name {name!r} must be an identifier "
                   "(letters, digits and _, not starting with a digit)", "invalid-name")
        return False

    def choice(self, node: YamlMap, key: str, path: tuple[str, ...], choices: tuple[str, ...],
               what: str) -> str | None:
        value = self.scalar(node, key, path, str, what)
        if value is not None and value not in choices:
            self.error(self.value_location(node, key, path),
                       f"{what} '{value}' is not one of {', '.join(choices)}"
                       f"{did_you_mean(value, choices)}", f"unknown-{key}")
            return None
        return value

    def refs(self, node: YamlMap, key: str, path: tuple[str, ...], what: str) -> tuple[Ref, ...]:
        if key not in node or node[key] is None:
            return ()
        items = node[key]
        if not isinstance(items, YamlSeq):
            self.error(self.value_location(node, key, path),
                       f"{what} must be a list of names, got {kind_of(items)}", "type")
            return ()
        refs = []
        for index, (item, location) in enumerate(zip(items, items.item_locations, strict=True)):
            item_location = location.at(*path, key, str(index))
            if not isinstance(item, str):
                self.error(item_location, f"{what} items must be names, got {kind_of(item)}",
                           "type")
                continue
            refs.append(Ref(item, item_location))
        return tuple(refs)

    def entries(self, node: YamlMap, key: str, path: tuple[str, ...], what: str,
                build: Callable[[str, Any, Location, tuple[str, ...]], T | None],
                identifiers: bool = True) -> tuple[T, ...]:
        if key not in node or node[key] is None:
            return ()
        children = self.mapping(node[key], self.value_location(node, key, path), what)
        if children is None:
            return ()
        built = []
        for name, value in children.items():
            child_path = (*path, key, str(name))
            name_location = children.key_locations[name].at(*child_path)
            if identifiers and not self.identifier(name, name_location, what):
                continue
            value_location = children.value_locations[name].at(*child_path)
            item = build(str(name), value, value_location if value is not None else name_location,
                         child_path)
            if item is not None:
                built.append(item)
        return tuple(built)


def kind_of(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int | float):
        return f"number {value}"
    return f"string {value!r}"


def kind_name(kind: type) -> str:
    return {str: "a string", int: "an integer", bool: "true or false"}.get(kind, kind.__name__)
