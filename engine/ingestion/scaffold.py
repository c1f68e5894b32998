"""The ``metrics.yaml`` ``semantic init`` writes for a table: its time column, dimensions,
measures, a rollup and an endpoint, and the joins suggested to other tables of its database
(``engine.ingestion.joins``), each joined table a source of its own with its primary key.

Only text: the caller reads the columns, counts and checks from the warehouse.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from engine.dialect.types import base_type
from engine.ingestion.files import time_column
from engine.ingestion.joins import SuggestedJoin, attribute_columns
from engine.model.compiler import unique_name

NUMBER_TYPES = ("Int", "UInt", "Float", "Decimal")
#: string columns with at most this many distinct values become dimensions
DIMENSION_CARDINALITY = 1000
#: plain YAML words that read as booleans or null, not as names
_YAML_WORDS = frozenset({"yes", "no", "true", "false", "on", "off", "null"})
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _quoted(text: str) -> str:
    """A YAML double-quoted scalar (a column named ``yes`` or ``null`` stays a string)."""
    return json.dumps(text)


def _member_name(column: str, prefix: str = "") -> str:
    """A name for a member (or source or join) made from a column's (or table's) name: an
    identifier, never a word YAML reads as a boolean or null.

    >>> _member_name("unit price"), _member_name("2nd"), _member_name("on")
    ('unit_price', 'c_2nd', 'c_on')
    """
    name = re.sub(r"[^A-Za-z0-9_]", "_", f"{prefix}{column}")
    return name if _IDENTIFIER.match(name) and name.lower() not in _YAML_WORDS else f"c_{name}"


@dataclass(slots=True)
class _Joined:
    """A joined table as a source of the scaffolded model."""

    table: str
    name: str
    key: str
    key_rows: int
    #: (dimension name, column)
    dimensions: list[tuple[str, str]]
    #: (join name, the join) of the described table to it
    joins: list[tuple[str, SuggestedJoin]] = field(default_factory=list)


def _attributes(columns: Mapping[str, str], key: str) -> list[tuple[str, str]]:
    taken: set[str] = set()
    return [(unique_name(_member_name(column), taken), column)
            for column in attribute_columns(columns, key)]


def _plan_joins(source: str, members: set[str], joins: Sequence[SuggestedJoin],
                joined: Mapping[str, Mapping[str, str]]) -> list[_Joined]:
    """The joined sources and the names of the joins to them: a join never takes the name of
    a member of the described source (``carrier.name`` would be ambiguous next to a
    ``carrier`` dimension), nor a source the name of another."""
    sources: dict[tuple[str, str], _Joined] = {}
    source_names = {source}
    join_names = set(members)
    for join in joins:
        candidate = join.candidate
        place = (candidate.table, candidate.key)
        if place not in sources:
            attributes = _attributes(joined.get(candidate.table, {}), candidate.key)
            if not attributes:
                continue  # nothing to add (the caller gave no columns)
            table_name = candidate.table.split(".", 1)[1]
            name = unique_name(_member_name(table_name), source_names)
            sources[place] = _Joined(candidate.table, name, candidate.key, join.key_rows,
                                     attributes)
        target = sources[place]
        name = _member_name(candidate.name)
        if name in join_names:  # e.g. a `carrier` dimension and `carrier` -> carriers.carrier
            name = _member_name(candidate.table.split(".", 1)[1])
        target.joins.append((unique_name(name, join_names), join))
    return list(sources.values())


def _commented(lines: list[str]) -> list[str]:
    """Lines left in the file as comments: ``# `` after their indentation (removing it
    restores them)."""
    out = []
    for line in lines:
        stripped = line.lstrip(" ")
        out.append(f"{line[:len(line) - len(stripped)]}# {stripped}")
    return out


def _join_lines(targets: list[_Joined]) -> list[str]:
    pairs = [(name, join, target) for target in targets for name, join in target.joins]
    name, _, target = pairs[0]
    lines = [f"    joins:                       # columns holding other tables' keys: query "
             f"{name}.{target.dimensions[0][0]}, ..."]
    for name, join, target in pairs:
        candidate = join.candidate
        lines.append(f"      {name}: {{source: {target.name}, keys: "
                     f"{{{_quoted(candidate.column)}: {_quoted(candidate.key)}}}}}   "
                     f"# {join.found:,} of {join.distinct:,} {candidate.column} values are "
                     f"keys of {candidate.table}")
    return lines


def _source_lines(target: _Joined, described: str) -> list[str]:
    names = ", ".join(name for name, _ in target.joins)
    lines = [f"{f'  {target.name}:':<33}# joined from {described} as {names}",
             f"    table: {target.table}",
             f"    primary_key: {_quoted(target.key)}   # one row per key in its "
             f"{target.key_rows:,} rows",
             f"    dimensions:                  # read from {described} as "
             f"{', '.join(f'{name}.<dimension>' for name, _ in target.joins)}"]
    lines += [f"      {name}: {{column: {_quoted(column)}}}" for name, column in target.dimensions]
    return lines


def scaffold_model(source: str, table: str, columns: Mapping[str, str],
                   distinct: Mapping[str, int], rows: int,
                   joins: Sequence[SuggestedJoin] = (),
                   joined: Mapping[str, Mapping[str, str]] | None = None,
                   refused: str = "") -> str:
    """A ``metrics.yaml`` for a table: its time column, dimensions from low-cardinality text
    columns, a count, a sum per numeric column, one rollup and one endpoint; with comments
    saying what to edit.

    ``joins`` (their tables' columns in ``joined``) add a ``joins:`` entry and a source with
    a ``primary_key`` per joined table; with a ``refused`` reason they are written commented
    out, with the reason."""
    time = time_column(columns)
    dimensions = [c for c, kind in columns.items() if c != time
                  and base_type(kind).split("(")[0] in ("String", "FixedString", "Enum8",
                                                        "Enum16", "Bool")
                  and distinct.get(c, DIMENSION_CARDINALITY + 1) <= DIMENSION_CARDINALITY]
    numbers = [c for c, kind in columns.items() if c != time and c not in dimensions
               and base_type(kind).startswith(NUMBER_TYPES)]
    lines = [
        "# Scaffolded by `semantic init`: edit freely, then `semantic validate` and",
        "# `semantic plan` / `semantic apply`. Every key is described in docs/model.md.",
        "version: 1",
        "rollup_database: semantic",
        "",
        "sources:",
        f"  {source}:",
        f"    table: {table}",
    ]
    if time is not None:
        lines.append(f"    time: {_quoted(time)}   # rollups and ranges bucket this column")
    else:
        lines.append("    # no Date/DateTime column was found: add `time:` to get time grains")
    taken = {"row_count"}
    dimension_names = [unique_name(_member_name(column), taken) for column in dimensions]
    measure_names = ["row_count"] + [unique_name(_member_name(column, "total_"), taken)
                                     for column in numbers]
    targets = _plan_joins(source, {*taken, *([time] if time else [])}, joins, joined or {})
    if targets:
        if refused:
            lines.append("    # suggested joins, left commented out because `semantic validate` "
                         f"refused them: {refused}")
        lines += _commented(_join_lines(targets)) if refused else _join_lines(targets)
    lines.append(f"    dimensions:                  # text columns with at most "
                 f"{DIMENSION_CARDINALITY} distinct values in {rows:,} rows")
    for name, column in zip(dimension_names, dimensions, strict=True):
        lines.append(f"      {name}: {{column: {_quoted(column)}}}   # {distinct.get(column, 0)} "
                     "values")
    if not dimensions:
        lines[-1] = "    dimensions: {}              # none found: add the columns you group by"
    lines.append("    measures:                    # a count, and a sum per numeric column")
    lines.append("      row_count: {agg: count}")
    for name, column in zip(measure_names[1:], numbers, strict=True):
        lines.append(f"      {name}: {{agg: sum, column: {_quoted(column)}}}   # or avg, min, max")
    rollup_dimensions = dimension_names[:1]
    grain = "day" if time is not None else None
    rollup_name = "daily" if grain else "summary"
    lines += ["    rollups:                     # what to precompute; add more as queries need",
              f"      {rollup_name}:",
              f"        dimensions: [{', '.join(rollup_dimensions)}]"]
    if grain:
        lines.append(f"        grain: {grain}")
    lines.append(f"        measures: [{', '.join(measure_names)}]")
    for target in targets:
        block = _source_lines(target, source)
        lines += _commented(block) if refused else block
    lines += ["",
              "endpoints:                       # GET paths answering a saved query",
              f"  /api/{source}:"]
    if targets:  # several sources (once the joins are in): say which one
        lines.append(f"    source: {source}")
    if grain:
        lines.append(f"    grain: {grain}")
    fields = list(rollup_dimensions) + ([f"{grain}: {_quoted(time or '')}"] if grain else []) \
        + measure_names
    lines.append("    fields:")
    lines += [f"      {f}" if ":" in f else f"      {f}: {f}" for f in fields]
    return "\n".join(lines) + "\n"
