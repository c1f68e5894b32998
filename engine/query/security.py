"""Row-level security: what a caller may see, turned into conditions on its queries before they
are planned.

A source's ``security:`` maps claims of the caller's credential to dimensions. Each claim
becomes an ``in`` condition on its dimension, kept in ``Query.security``: it holds like any
filter, so only rollups holding the dimension can serve the query (the others are reported as
``security_filter_not_covered``), and anything keyed on the query (the plan cache) is keyed on
the caller's restriction too. A caller without a claim the source requires is refused, never
shown every row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from sqlglot import exp

from engine.model.compiled import CompiledSource
from engine.query.request import Filter, Query
from semantic.errors import FieldError

#: ClickHouse type prefixes whose values are numbers
_NUMERIC = ("Int", "UInt", "Float", "Decimal", "Bool")


class AccessDenied(FieldError):
    """The caller's credential does not allow this request (HTTP 403)."""

    code = "forbidden"
    status = 403


@dataclass(frozen=True, slots=True)
class Access:
    """A caller's restriction: claim values (each a tuple of allowed values) and, optionally,
    the only members (measures, metrics, dimensions) it may ask for."""

    claims: tuple[tuple[str, tuple[object, ...]], ...] = ()
    members: frozenset[str] | None = None

    @classmethod
    def of(cls, claims: Mapping[str, object],
           members: Iterable[str] | None = None) -> Access:
        """From a mapping of claims (a value or a list of values each).

        >>> Access.of({"tenant": 42, "regions": ["eu", "us"]}).claim("regions")
        ('eu', 'us')
        """
        pairs = tuple(sorted(
            (str(name), tuple(value) if isinstance(value, list | tuple) else (value,))
            for name, value in claims.items()))
        return cls(pairs, frozenset(members) if members is not None else None)

    def claim(self, name: str) -> tuple[object, ...] | None:
        return next((values for claim, values in self.claims if claim == name), None)


def _base_type(type_text: str) -> str:
    while type_text.startswith(("Nullable(", "LowCardinality(")):
        type_text = type_text[type_text.index("(") + 1:-1]
    return type_text


def _claim_value(value: object, type_text: str, claim: str) -> object:
    """A claim value as the dimension's type needs it bound (numbers for numeric columns,
    text otherwise); anything else refuses the request."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise AccessDenied(claim, f"the credential's claim '{claim}' holds {value!r}; security "
                           "claims hold strings or numbers")
    if _base_type(type_text).startswith(_NUMERIC):
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                try:
                    return float(value)
                except ValueError:
                    raise AccessDenied(claim, f"the credential's claim '{claim}' holds "
                                       f"{value!r}, but its dimension is {type_text}") from None
        return value
    return value if isinstance(value, str) else str(value)


def _check_members(source: CompiledSource, query: Query, allowed: frozenset[str]) -> None:
    time = source.time.name if source.time else None
    for field, names in (("measures", query.measures), ("dimensions", query.dimensions)):
        for index, name in enumerate(names):
            if name != time and name not in allowed:
                raise AccessDenied(f"{field}[{index}]", f"this credential may not read '{name}'")
    filtered = (query.filter_members() - query.security_members()) | query.having_members()
    for name in sorted(filtered - allowed - {time}):
        raise AccessDenied("filters", f"this credential may not filter on '{name}'")


def secure_query(source: CompiledSource, query: Query, access: Access) -> Query:
    """The query restricted to what ``access`` may see.

    Raises ``AccessDenied`` when the source requires a claim the caller lacks, or the query
    names a member the caller may not read.
    """
    if access.members is not None:
        _check_members(source, query, access.members)
    conditions = []
    for secured in source.source.security:
        values = access.claim(secured.claim)
        if not values:
            raise AccessDenied("source", f"source '{source.name}' is restricted by the claim "
                               f"'{secured.claim}', which this credential does not carry")
        dimension = source.dimensions[secured.dimension.name]
        conditions.append(Filter(dimension.name, "in", tuple(
            _claim_value(v, dimension.type, secured.claim) for v in values)))
    if not conditions:
        return query
    return replace(query, security=(*query.security, *conditions))


@dataclass(frozen=True, slots=True)
class WriteRestriction:
    """A column a credential may write only some values into (from one of its claims)."""

    claim: str
    column: str
    allowed: frozenset[object]

    def outside(self) -> exp.Condition:
        """Rows this restriction refuses, as a condition on the source's columns."""
        values = [exp.convert(v) for v in sorted(self.allowed, key=str)]
        return exp.not_(exp.column(self.column).isin(*values))


def write_restrictions(source: CompiledSource, columns: Sequence[str],
                       access: Access) -> list[WriteRestriction]:
    """What ``access`` may write into ``source``: a credential carrying one of the source's
    security claims writes only rows whose column holds an allowed value (one without the
    claim is a trusted writer, as the ``ingest`` scope grants). A claim with no values (an
    empty list) allows no rows, for writes as for reads, and a null claim is refused as it is
    when reading. A claim on a dimension that is an expression rather than a column cannot be
    checked per row: such a credential is refused."""
    restrictions = []
    for secured in source.source.security:
        values = access.claim(secured.claim)
        if values is None:
            continue
        if not values:
            raise AccessDenied("source", f"the credential's claim '{secured.claim}' holds no "
                               f"values: it may write no rows of source '{source.name}'")
        dimension = source.dimensions[secured.dimension.name]
        expression = dimension.expression
        if not isinstance(expression, exp.Column) or expression.name not in columns:
            what = (f"reached through join '{'.'.join(dimension.path)}'" if dimension.path
                    else "an expression")
            raise AccessDenied("source", f"the credential's claim '{secured.claim}' restricts "
                               f"dimension '{dimension.name}', {what}: rows cannot be checked "
                               "against it; write with a credential that does not carry the "
                               "claim")
        restrictions.append(WriteRestriction(secured.claim, expression.name, frozenset(
            _claim_value(v, dimension.type, secured.claim) for v in values)))
    return restrictions


def check_written_rows(source: CompiledSource, columns: Sequence[str],
                       rows: Sequence[Sequence[object]], access: Access,
                       names: Sequence[str] | None = None) -> None:
    """Refuse a batch with a row outside what ``access`` may write (``write_restrictions``)."""
    for restriction in write_restrictions(source, columns, access):
        index = list(columns).index(restriction.column)
        for number, row in enumerate(rows):
            if row[index] not in restriction.allowed:
                where = names[number] if names else f"rows[{number}]"
                raise AccessDenied(where, f"{where}: {restriction.column} = {row[index]!r} is "
                                   f"outside the credential's claim '{restriction.claim}'")
