"""The change and change ratio of a comparison (``m__change``, ``m__change_ratio``), computed
from each row's ``m`` and ``m__compare`` after the statement has run, exactly as ClickHouse
computes ``m - c`` and ``m / nullIf(c, 0) - 1``.

On a small rollup the engine's cost is mostly analysing the statement, about 0.2 ms per
expression: the four expressions of a two-measure comparison cost more than its windows.
The statement therefore returns ``m`` and ``m__compare`` only, the JSON answer gets the two
columns from here, and answers ClickHouse formats (CSV, Parquet, Arrow) get them from the same
expressions in the statement that wraps the plan's (``engine.serving.output``). A query that
orders by a change computes it in the statement, as before.

Values as ClickHouse has them:

- integers: the change in ClickHouse's ``Int64`` (wrapping around past it), the ratio a
  ``Float64`` division of the two values converted to ``Float64``;
- floats (``Float32`` is widened to ``Float64`` by both): IEEE arithmetic, as ClickHouse's;
- decimals (their exponent is the column's scale): the change exact, the ratio the quotient
  cut toward zero at the dividend's scale, then minus 1;
- null when either value is null, and the ratio null when the compared value is 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal, localcontext

from sqlglot import exp

from engine.dialect.functions import call
from engine.query.request import QueryError

#: digits of the decimal arithmetic: enough for any Decimal256 without rounding
_DIGITS = 160


@dataclass(frozen=True, slots=True)
class Change:
    """``column`` (``m__change`` or ``m__change_ratio``) computed from ``of`` and ``before``
    (``m`` and ``m__compare``)."""

    column: str
    of: str
    before: str
    ratio: bool


def changes(measures: Sequence[str]) -> tuple[Change, ...]:
    """The change columns of a comparison of ``measures``, in answer order."""
    return tuple(Change(f"{m}{suffix}", m, f"{m}__compare", ratio)
                 for m in measures
                 for suffix, ratio in (("__change", False), ("__change_ratio", True)))


def change_sql(change: Change, current: exp.Expr, before: exp.Expr) -> exp.Expr:
    """The change as ClickHouse computes it, from the expressions of ``m`` and its compared
    value.

    >>> c = Change("m__change_ratio", "m", "m__compare", True)
    >>> change_sql(c, exp.column("m"), exp.column("p")).sql()
    '(m) / NULLIF(p, 0) - 1'
    """
    if not change.ratio:
        return exp.Sub(this=exp.Paren(this=current), expression=exp.Paren(this=before))
    return exp.Sub(this=exp.Div(this=exp.Paren(this=current),
                                expression=call("nullIf", before, exp.Literal.number(0))),
                   expression=exp.Literal.number(1))


def _number(change: Change, value: object) -> int | float | Decimal:
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return value
    raise QueryError("compare", f"'{change.column}' needs numbers; '{change.of}' is "
                                f"{type(value).__name__}")


def _wrapped(difference: int, a: int, b: int) -> int:
    """An integer difference as ClickHouse has it: in Int64 for 64-bit values (and Int128 or
    Int256 for wider ones), wrapping around past its range.

    >>> _wrapped(2**64 - 1 - 3, 2**64 - 1, 3), _wrapped(-3, 7, 10)
    (-4, -3)
    """
    for bits in (64, 128, 256):
        half = 1 << (bits - 1)
        if all(-half <= v < 2 * half for v in (a, b)):
            return (difference + half) % (2 * half) - half
    return difference


def change_value(change: Change, value: object, before: object) -> object:
    """One row's change.

    >>> c, r = changes(["m"])
    >>> change_value(c, 7, 10), change_value(r, 7, 10), change_value(r, 7, 0)
    (-3, -0.30000000000000004, None)
    >>> change_value(r, Decimal("-10.00"), Decimal("3.00")), change_value(c, 1.5, None)
    (Decimal('-4.33'), None)
    """
    if value is None or before is None:
        return None
    current, past = _number(change, value), _number(change, before)
    if isinstance(current, Decimal) or isinstance(past, Decimal):
        with localcontext() as context:
            context.prec = _DIGITS
            current, past = Decimal(current), Decimal(past)
            if not change.ratio:
                return current - past
            if past == 0:
                return None
            scale = Decimal((0, (1,), min(0, int(current.as_tuple().exponent))))
            return (current / past).quantize(scale, rounding=ROUND_DOWN) - 1
    if not change.ratio:
        if isinstance(current, int) and isinstance(past, int):
            return _wrapped(current - past, current, past)
        return float(current) - float(past)
    if past == 0:
        return None
    return float(current) / float(past) - 1


def complete(columns: Sequence[str], computed: Sequence[Change],
             values: Sequence[list[object]]) -> list[list[object]]:
    """Every column of an answer in ``columns`` order, from ``values`` (the statement's
    columns: ``columns`` less those ``computed``) and the changes computed from them.

    >>> complete(["m", "m__compare", "m__change", "m__change_ratio"], changes(["m"]),
    ...          [[4, 5], [2, None]])
    [[4, 5], [2, None], [2, None], [1.0, None]]
    """
    later = {change.column: change for change in computed}
    run = iter(values)
    found: dict[str, list[object]] = {name: next(run) for name in columns if name not in later}
    for name in columns:
        change = later.get(name)
        if change is not None:
            found[name] = [change_value(change, value, before) for value, before in
                           zip(found[change.of], found[change.before], strict=True)]
    return [found[name] for name in columns]
