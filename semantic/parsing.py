"""A YAML loader that remembers where every key and value came from.

PyYAML's ``SafeLoader`` forgets positions once it has built Python objects. This subclass builds
``YamlMap``/``YamlSeq`` containers that keep the mark of every key and every value, and it
reports duplicate keys (which plain PyYAML silently lets the last one win).
"""

from __future__ import annotations

from typing import Any

import yaml

from semantic.errors import Issue
from semantic.location import Location


class YamlMap(dict[Any, Any]):
    """A mapping that knows the location of itself, each key and each value."""

    location: Location
    key_locations: dict[Any, Location]
    value_locations: dict[Any, Location]


class YamlSeq(list[Any]):
    """A sequence that knows the location of itself and each item."""

    location: Location
    item_locations: list[Location]


class _LocatingLoader(yaml.SafeLoader):
    def __init__(self, stream: str, file: str) -> None:
        super().__init__(stream)
        self.file = file
        self.issues: list[Issue] = []

    def locate(self, node: yaml.Node) -> Location:
        mark = node.start_mark
        return Location(self.file, mark.line + 1, mark.column + 1, ())


def _construct_map(loader: _LocatingLoader, node: yaml.MappingNode) -> YamlMap:
    explicit = sum(1 for key_node, _ in node.value if key_node.tag != "tag:yaml.org,2002:merge")
    loader.flatten_mapping(node)
    merged = len(node.value) - explicit  # flatten_mapping puts merged (<<) pairs first
    merged_keys: set[Any] = set()
    result = YamlMap()
    result.location = loader.locate(node)
    result.key_locations = {}
    result.value_locations = {}
    for index, (key_node, value_node) in enumerate(node.value):
        key = loader.construct_object(key_node, deep=True)
        key_location = loader.locate(key_node)
        if not isinstance(key, str | int | float | bool) and key is not None:
            loader.issues.append(Issue(key_location, "a key must be a plain scalar", "bad-key"))
            continue
        if index < merged:
            merged_keys.add(key)
        elif key in merged_keys:  # an explicit key overrides a merged one, as YAML says
            merged_keys.discard(key)
            del result[key]
        if key in result:
            first = result.key_locations[key]
            loader.issues.append(
                Issue(
                    key_location,
                    f"duplicate key '{key}' (first defined at line {first.line}); "
                    "remove one of them",
                    "duplicate-key",
                )
            )
            continue
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_locations[key] = key_location
        result.value_locations[key] = loader.locate(value_node)
    return result


def _construct_seq(loader: _LocatingLoader, node: yaml.SequenceNode) -> YamlSeq:
    result = YamlSeq(loader.construct_object(child, deep=True) for child in node.value)
    result.location = loader.locate(node)
    result.item_locations = [loader.locate(child) for child in node.value]
    return result


_LocatingLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
_LocatingLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_seq)


#: what to do about PyYAML's terser complaints
YAML_HINTS = (
    ("'\\t'", "; indent with spaces, not tabs"),
    ("expected <block end>", "; check this line's indentation against the lines above it"),
    ("mapping values are not allowed", "; check the indentation, or quote a value that "
     "contains ': '"),
)


def parse_yaml(text: str, file: str) -> tuple[Any, list[Issue]]:
    """Parse YAML text into located containers, returning the document and any issues.

    >>> doc, issues = parse_yaml("a: 1\\nb:\\n  - x\\n", "m.yaml")
    >>> doc["b"].item_locations[0].line, issues
    (3, [])
    >>> print(parse_yaml("a: 1\\na: 2\\n", "m.yaml")[1][0].render())
    m.yaml:2:1: error: duplicate key 'a' (first defined at line 1); remove one of them
    [duplicate-key]
    >>> print(parse_yaml("a: 1\\nb: x\\x8ay\\n", "m.yaml")[1][0].render())
    m.yaml:2:5: error: YAML syntax: character U+008A is not allowed in YAML; remove it [yaml]
    """
    try:
        loader = _LocatingLoader(text, file)
    except yaml.reader.ReaderError as exc:  # raised while reading, before any parsing
        before = text[:exc.position]
        line, column = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
        return None, [Issue(Location(file, line, column, ()), f"YAML syntax: character "
                            f"U+{exc.character:04X} is not allowed in YAML; remove it",
                            "yaml")]
    try:
        document = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        problem += next((hint for cause, hint in YAML_HINTS if cause in problem), "")
        return None, [Issue(Location(file, line, column, ()), f"YAML syntax: {problem}", "yaml")]
    except yaml.YAMLError as exc:
        return None, [Issue(Location(file, 1, 1, ()), f"YAML syntax: {exc}", "yaml")]
    finally:
        loader.dispose()
    return document, loader.issues
