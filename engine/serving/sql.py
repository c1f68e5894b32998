"""Serving SQL for a planned query: one SELECT for one piece, or partial aggregates of every
piece (rollup middle, raw or finer edges) merged by an outer SELECT, in one statement.

Every request value is bound as a ``{pN:Type}`` parameter; identifiers come from the model.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlglot import exp

from engine.dialect.aggregations import zero_when_empty
from engine.dialect.functions import bucket_call, call, grain_step
from engine.dialect.types import can_be_nullable, data_type, is_date_type
from engine.model.compiled import CompiledRollup, CompiledSource, ComponentKey
from engine.model.joins import Needs, join_clauses, with_joins
from engine.query.request import Filter, FilterNode, Query
from engine.rollups.ddl import bucket_expression
from engine.serving.clauses import (
    alias_for,
    connect,
    filter_shape,
    filter_value,
    filter_values,
    filtered,
    instant_text,
    ordered,
    over_members,
)
from engine.time.ranges import ceil_instant, floor_instant

if TYPE_CHECKING:
    from engine.serving.plan import Piece

#: the operator -> sqlglot node for comparisons with one bound value
_COMPARISONS: dict[str, type[exp.Binary]] = {
    "eq": exp.EQ, "ne": exp.NEQ, "gt": exp.GT, "gte": exp.GTE, "lt": exp.LT, "lte": exp.LTE,
}
INSTANT_TYPE = "DateTime64(6, 'UTC')"


class SqlBuilder:
    """Builds the statement for one normalized query; collects its parameters."""

    def __init__(self, source: CompiledSource, query: Query) -> None:
        self.source = source
        self.query = query
        self.parameters: dict[str, object] = {}
        #: whether a piece of the statement joins dimension tables
        self.joins = False
        self.time = source.time.name if source.time else None
        self.zone = query.timezone or source.timezone

    # values -----------------------------------------------------------------------------
    def _bind(self, value: object, type_text: str) -> exp.Placeholder:
        name = f"p{len(self.parameters)}"
        self.parameters[name] = value
        return exp.Placeholder(this=name, kind=data_type(type_text))

    def _condition(self, target: exp.Expr, item: Filter,
                   type_text: str) -> exp.Expr:
        op = item.op
        if op == "is_null":
            return call("isNull", target)
        if op == "is_not_null":
            return call("isNotNull", target)
        value = filter_value(item)
        if op in ("in", "not_in"):
            condition: exp.Expr = exp.In(
                this=target, field=self._bind(value, f"Array({type_text})"))
            return exp.Not(this=condition) if op == "not_in" else condition
        if op == "contains":
            return exp.GT(this=call("position", target, self._bind(value, "String")),
                          expression=exp.Literal.number(0))
        if op == "starts_with":
            return call("startsWith", target, self._bind(value, "String"))
        if op in ("ilike", "not_ilike"):
            return call("ilike" if op == "ilike" else "notILike", target,
                        self._bind(value, "String"))
        comparison: exp.Expr = _COMPARISONS[op](
            this=target, expression=self._bind(value, type_text))
        return comparison

    def _tree(self, node: FilterNode, leaf: Callable[[Filter], exp.Expr]) -> exp.Expr:
        if isinstance(node, Filter):
            return leaf(node)
        parts = [self._tree(item, leaf) for item in node.items]
        combined = connect(parts, exp.And if node.op == "and" else exp.Or)
        return exp.Paren(this=combined) if len(parts) > 1 else combined

    # members ----------------------------------------------------------------------------
    def dimension(self, name: str, rollup: CompiledRollup | None) -> exp.Expr:
        """A dimension (or the time bucket at the query grain) as the piece's table has it."""
        if name == self.time:
            return self._bucket(rollup)
        dimension = self.source.dimensions[name]
        if rollup is None or dimension.path:  # a joined one is read through its join
            return dimension.expression.copy()
        column = rollup.dimension_column(name)
        if column is None:  # a dimension that is a column the rollup keeps as a join key
            assert isinstance(dimension.expression, exp.Column)
            column = rollup.stored_column(dimension.expression.name)
        assert column is not None
        return exp.column(column)

    def _bucket(self, rollup: CompiledRollup | None) -> exp.Expr:
        grain = self.query.grain
        assert grain is not None
        if rollup is None:
            return bucket_expression(self.source, grain, self.zone, self.query.calendar)
        assert rollup.bucket is not None and rollup.grain is not None
        column = exp.column(rollup.bucket)
        if grain == rollup.grain and self.zone == self.source.timezone:
            return column  # (a week rollup serves only its own week start: coverage)
        # instants are cut again in the query's zone; days are calendar days of the same zone
        zone = self.zone if rollup.grain in ("minute", "hour") else None
        return bucket_call(grain, column, zone, self.query.calendar)

    def instant_output(self) -> bool:
        """Whether the time column is returned as epoch seconds (minute and hour buckets), for
        the caller to show in the query's zone: drivers disagree on zones of DateTime values."""
        return (self.time in self.query.dimensions and self.query.grain in ("minute", "hour")
                and self.source.time is not None and not is_date_type(self.source.time.type))

    def _shown(self, name: str, expression: exp.Expr) -> exp.Expr:
        if name == self.time and self.instant_output():
            return call("toUnixTimestamp", expression)
        return expression

    def measure(self, name: str, part: Callable[[ComponentKey, tuple[float, ...]],
                                                 exp.Expr]) -> exp.Expr:
        """A measure or metric finished from its parts (``part(key, params)``)."""
        metric = self.source.metrics.get(name)
        if metric is not None:
            return over_members(metric.expression, lambda member: self.measure(member, part))
        measure = self.source.measures[name]
        return measure.aggregation.finish([part(key, measure.params)
                                           for key in measure.components])

    def _stored(self, rollup: CompiledRollup) -> Callable[[ComponentKey, tuple[float, ...]],
                                                          exp.Expr]:
        def part(key: ComponentKey, params: tuple[float, ...]) -> exp.Expr:
            column = rollup.component_column(key)
            assert column is not None
            return self.source.components[key].kind.combine(exp.column(column), params)
        return part

    def _raw(self, key: ComponentKey, params: tuple[float, ...]) -> exp.Expr:
        component = self.source.components[key]
        argument = component.argument.copy() if component.argument is not None else None
        condition = component.condition.copy() if component.condition is not None else None
        return component.kind.raw(argument, condition, params)

    # pieces -----------------------------------------------------------------------------
    def _needs(self, rollup: CompiledRollup | None) -> Needs:
        """The joins a piece reads: those of joined dimensions the query groups or filters by,
        and on raw rows those of measures over joined columns."""
        needs: Needs = {}
        query = self.query
        for name in (*query.dimensions, *sorted(query.filter_members())):
            dimension = self.source.dimensions.get(name)
            if dimension is not None and dimension.path:
                needs.setdefault(dimension.path, set()).add(name.rsplit(".", 1)[1])
        if rollup is None:
            for name in (*query.measures, *sorted(query.having_members())):
                for key in self.source.components_of(name):
                    for path, attributes in self.source.components[key].needs:
                        needs.setdefault(path, set()).update(attributes)
        return needs

    def _from(self, select: exp.Select, rollup: CompiledRollup | None) -> exp.Select:
        """``select`` reading the piece's table, with the joins it needs."""
        table, _ = self._table(rollup)
        select = select.from_(table, copy=False)
        needs = self._needs(rollup)
        if not needs:
            return select

        def left(column: str) -> exp.Expr:
            if rollup is None:
                return exp.column(column)
            stored = rollup.stored_column(column)
            assert stored is not None, (rollup.name, column)
            return exp.column(stored)
        plain = frozenset(name for name, d in self.source.dimensions.items()
                          if d.path and not can_be_nullable(d.type))
        self.joins = True
        return with_joins(select, join_clauses(self.source.paths, needs, left, plain))

    def _table(self, rollup: CompiledRollup | None) -> tuple[exp.Table, set[str]]:
        if rollup is None:
            return self.source.table, set(self.source.columns)
        columns = {c for c, _ in rollup.dimensions} | {c for c, _ in rollup.components}
        columns |= {rollup.bucket} if rollup.bucket else set()
        columns |= {c for c, _, _ in rollup.keys}
        return exp.table_(rollup.table, db=rollup.database), columns

    def _where(self, piece: Piece, more: tuple[Piece, ...] = ()) -> list[exp.Expr]:
        """Filters and the time range of ``piece`` (or of it and ``more`` pieces of the same
        table, any of whose ranges a row may fall in)."""
        rollup = piece.rollup
        conditions = []
        for node in (*self.query.security, *self.query.filters):
            def leaf(item: Filter) -> exp.Expr:
                type_text = self.source.dimensions[item.member].type
                return self._condition(self.dimension(item.member, rollup), item, type_text)
            conditions.append(self._tree(node, leaf))
        ranges = [self._time_conditions(p) for p in (piece, *more)]
        if len(ranges) == 1:
            conditions += ranges[0]
        elif all(ranges):
            conditions.append(exp.Paren(this=exp.or_(*[exp.and_(*r) for r in ranges])))
        return conditions

    def _time_conditions(self, piece: Piece) -> list[exp.Expr]:
        rollup = piece.rollup
        if piece.start is None and piece.end is None:
            return []
        assert self.source.time is not None
        bounds = ((piece.start, exp.GTE), (piece.end, exp.LT))
        if rollup is None:
            target = self.source.time.expression.copy()
            if is_date_type(self.source.time.type):  # a day starts at midnight in the model zone
                target = call("toDateTime", target, exp.Literal.string(self.source.timezone))
            return [op(this=target.copy(), expression=self._bind(
                self._bound_value(piece, t), INSTANT_TYPE)) for t, op in bounds if t is not None]
        assert rollup.bucket is not None and rollup.grain is not None
        column = exp.column(rollup.bucket)
        zone = ZoneInfo(self.source.timezone)
        kind = "DateTime('UTC')" if rollup.grain in ("minute", "hour") else "Date"
        conditions: list[exp.Expr] = []
        for t, op in bounds:
            if t is None:
                continue
            # Exact only on a bucket boundary, which the planner guarantees for rollup pieces.
            assert floor_instant(t, rollup.grain, zone, self.source.calendar) == t, \
                (t, rollup.grain)
            value = self._bind(self._bound_value(piece, t), kind)
            conditions.append(op(this=column.copy(), expression=value))
        return conditions

    def _bound_value(self, piece: Piece, t: datetime) -> str:
        """The parameter a bound of a piece's range is compared with: an instant for raw rows,
        a bucket's start in UTC for minute and hour rollups, else the bucket's date (midnight
        in the model zone)."""
        rollup = piece.rollup
        if rollup is None:
            return instant_text(t)
        if rollup.grain in ("minute", "hour"):
            return t.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="seconds")
        return t.astimezone(ZoneInfo(self.source.timezone)).date().isoformat()

    def values(self, pieces: tuple[Piece, ...]) -> dict[str, object]:
        """The parameters ``build(pieces, ...)`` binds, without building the statement: for a
        query of a shape built before (``shape``), whose statement and text are kept. In
        ``build``'s order: for each table read (one branch of the statement each, in the order
        of their first pieces), the row conditions, then the time bounds of its pieces; then
        the measure conditions; then the range ``fill`` spans."""
        found: list[object] = []
        tables: dict[str | None, list[Piece]] = {}
        for piece in pieces:
            tables.setdefault(piece.rollup.name if piece.rollup else None, []).append(piece)
        for same_table in tables.values():
            for node in (*self.query.security, *self.query.filters):
                filter_values(node, found)
            found += [self._bound_value(piece, t) for piece in same_table
                      for t in (piece.start, piece.end) if t is not None]
        for node in self.query.having:
            filter_values(node, found)
        if self.query.fill is not None:
            found += [value for value, _ in self._fill_range()]
        return {f"p{n}": value for n, value in enumerate(found)}

    def _having(self, finish: Callable[[str], exp.Expr]) -> list[exp.Expr]:
        def leaf(item: Filter) -> exp.Expr:
            return self._condition(finish(item.member), item, "Float64")
        return [self._tree(node, leaf) for node in self.query.having]

    def build(self, pieces: tuple[Piece, ...], fetch_limit: int | None,
              ) -> tuple[exp.Select, dict[str, object], tuple[str, ...]]:
        statement = (self._single(pieces[0]) if len(pieces) == 1 else self._merged(pieces))
        if self.query.fill is not None:
            statement = self._filled(statement)
        if self._order:
            statement = statement.order_by(*(ordered(alias, descending, nulls_first)
                                             for alias, descending, nulls_first in self._order),
                                           copy=False)
        # No LIMIT without dimensions (one row at most) or without ``fetch_limit`` (the router
        # knows the answer has fewer rows): the engine plans a step less, 0.03-0.25 ms.
        # Literals, not ints: sqlglot parses an int given to limit/offset as SQL.
        if fetch_limit is not None and (self.query.dimensions or self.query.offset):
            statement = statement.limit(exp.Literal.number(fetch_limit), copy=False)
        if self.query.offset:
            statement = statement.offset(exp.Literal.number(self.query.offset), copy=False)
        columns = tuple(self.query.dimensions) + tuple(self.query.measures)
        return statement, self.parameters, columns

    def shape(self, pieces: tuple[Piece, ...], fetch_limit: int | None) -> Hashable:
        """Everything the text of ``build(pieces, fetch_limit)`` depends on besides the source:
        the query without its values (each bound as a parameter, in an order this fixes too)
        and, per piece, the table it reads and which bounds of its range it has. Queries of
        one shape render the same text and differ only in their parameters, so anything
        ``build`` writes into the text as a literal (the zone, the limit, the offset) is here.
        """
        query = self.query
        return (query.measures, query.dimensions, query.grain, self.zone, query.order,
                fetch_limit, query.offset, query.fill, query.calendar,
                tuple(filter_shape(node) for node in query.security),
                tuple(filter_shape(node) for node in query.filters),
                tuple(filter_shape(node) for node in query.having),
                tuple((piece.rollup.name if piece.rollup else None, piece.start is not None,
                       piece.end is not None) for piece in pieces))

    def _finish_order(self, aliases: dict[str, str]) -> None:
        self._order = [(aliases[s.member], s.descending, s.nulls_first)
                       for s in self.query.order]
        self._aliases = aliases

    def _filled(self, answer: exp.Select) -> exp.Select:
        """``answer`` with every bucket of the range at the query's grain, for each group of
        the other dimensions that appears in it: ``ORDER BY <dimensions>, <bucket> WITH FILL``
        fills each group (sorting prefix) from the range's first bucket to the bucket after
        its last. A filled row holds its type's default, so a measure that is not 0 over no
        rows (or every measure, ``fill: null``) is made Nullable first; the query's own order
        and limit apply to the filled rows (by the caller, around this)."""
        query = self.query
        assert self.time is not None and query.grain is not None
        aliases = self._aliases
        (low_value, kind), (high_value, _) = self._fill_range()
        low, high = self._bind(low_value, kind), self._bind(high_value, kind)
        step: exp.Expr = exp.Literal.number(60 if query.grain == "minute" else 3600) \
            if self.instant_output() else grain_step(query.grain)
        inner = exp.Subquery(this=answer, alias=exp.TableAlias(this=exp.to_identifier("_a")))
        selects: list[exp.Expr] = []
        for name in query.dimensions:
            selects.append(exp.alias_(exp.column(aliases[name], "_a"), aliases[name]))
        for name in query.measures:
            value: exp.Expr = exp.column(aliases[name], "_a")
            if query.fill == "null" or not self._zero_when_empty(name):
                value = call("toNullable", value)
            selects.append(exp.alias_(value, aliases[name]))
        prefix = [exp.Ordered(this=exp.column(aliases[n]), nulls_first=False)
                  for n in query.dimensions if n != self.time]
        bucket = exp.Ordered(this=exp.column(aliases[self.time]), nulls_first=False,
                             with_fill=exp.WithFill(from_=low, to=high, step=step))
        names = [aliases[n] for n in (*query.dimensions, *query.measures)]
        if prefix:
            # over no rows at all, WITH FILL still fills one series, its dimensions at their
            # types' defaults: keep only groups with a row of the answer
            here = alias_for("_here", None, set(), set(names))
            answer.select(exp.alias_(exp.Literal.number(1), here), copy=False)
            selects.append(exp.alias_(exp.column(here, "_a"), here))
        filled = exp.select(*selects).from_(inner).order_by(*prefix, bucket, copy=False)
        rows = exp.Subquery(this=filled, alias=exp.TableAlias(this=exp.to_identifier("_filled")))
        if not prefix:
            return exp.select(*(exp.column(n) for n in names)).from_(rows)
        group = alias_for("_group", None, set(), {*names, here})
        marked = exp.select(*(exp.column(n) for n in (*names, here)), exp.alias_(
            exp.Window(this=call("max", exp.column(here)),
                       partition_by=[o.this.copy() for o in prefix]), group)).from_(rows)
        return exp.select(*(exp.column(n) for n in names)).from_(exp.Subquery(
            this=marked, alias=exp.TableAlias(this=exp.to_identifier("_groups")))).where(
            exp.EQ(this=exp.column(group), expression=exp.Literal.number(1)), copy=False)

    def _fill_range(self) -> tuple[tuple[object, str], tuple[object, str]]:
        """The first bucket of the range and the one after its last, as ``fill`` binds them
        (with their types): epoch seconds for minute and hour buckets, else dates of the
        query's zone."""
        query = self.query
        assert query.grain is not None and query.interval is not None
        start, end = query.interval
        assert start is not None and end is not None
        zone = ZoneInfo(self.zone)
        first = floor_instant(start, query.grain, zone, query.calendar)
        after = ceil_instant(end, query.grain, zone, query.calendar)
        if self.instant_output():
            return (int(first.timestamp()), "Int64"), (int(after.timestamp()), "Int64")
        return ((first.astimezone(zone).date().isoformat(), "Date"),
                (after.astimezone(zone).date().isoformat(), "Date"))

    def _zero_when_empty(self, name: str) -> bool:
        """Whether a measure is 0 over no rows (counts and sums), as a filled bucket shows."""
        measure = self.source.measures.get(name)
        return measure is not None and zero_when_empty(measure.aggregation)

    def _single(self, piece: Piece) -> exp.Select:
        rollup = piece.rollup
        table, table_columns = self._table(rollup)
        part = self._stored(rollup) if rollup is not None else self._raw
        used: set[str] = set()
        aliases: dict[str, str] = {}
        selects: list[exp.Expr] = []
        groups: list[exp.Expr] = []
        for name in self.query.dimensions:
            expression = self.dimension(name, rollup)
            aliases[name] = alias_for(name, expression, table_columns, used)
            selects.append(exp.alias_(self._shown(name, expression.copy()), aliases[name],
                                      copy=False))
            groups.append(expression)
        for name in self.query.measures:
            expression = self.measure(name, part)
            aliases[name] = alias_for(name, expression, table_columns, used)
            selects.append(exp.alias_(expression, aliases[name], copy=False))
        select = filtered(self._from(exp.select(*selects), rollup), self._where(piece),
                           groups, self._having(lambda m: self.measure(m, part)))
        self._finish_order(aliases)
        return select

    def components(self, names: tuple[str, ...]) -> list[ComponentKey]:
        """The partials ``names`` and the query's measure conditions need, each once."""
        keys: list[ComponentKey] = []
        for name in (*names, *sorted(self.query.having_members())):
            keys += [k for k in self.source.components_of(name) if k not in keys]
        return keys

    def columns_of(self, pieces: tuple[Piece, ...]) -> set[str]:
        """Every column of the tables ``pieces`` read (names an outer query must not reuse)."""
        columns: set[str] = set()
        for piece in pieces:
            columns |= self._table(piece.rollup)[1]
        return columns

    def partials(self, pieces: tuple[Piece, ...], dimension_names: list[str],
                 part_names: dict[ComponentKey, str],
                 extra: tuple[exp.Expr, ...] = ()) -> exp.Query:
        """``piece UNION ALL piece ...``: each piece's dimensions (as ``dimension_names``) and
        partial aggregates (as ``part_names``), grouped; one branch per table, its ranges
        OR-ed. ``extra``: aliased constants every branch selects too."""
        by_table: dict[str | None, list[Piece]] = {}
        for piece in pieces:
            by_table.setdefault(piece.rollup.name if piece.rollup else None, []).append(piece)
        branches: list[exp.Select] = []
        for same_table in by_table.values():
            piece = same_table[0]
            rollup = piece.rollup
            selects: list[exp.Expr] = [e.copy() for e in extra]
            groups: list[exp.Expr] = []
            for name, alias in zip(self.query.dimensions, dimension_names, strict=True):
                expression = self.dimension(name, rollup)
                selects.append(exp.alias_(expression, alias, copy=False))
                groups.append(expression.copy())
            for key, alias in part_names.items():
                component = self.source.components[key]
                if rollup is not None:
                    column = rollup.component_column(key)
                    assert column is not None
                    partial = component.kind.merge_state(exp.column(column))
                else:
                    partial = component.kind.fill(
                        component.argument.copy() if component.argument else None,
                        component.condition.copy() if component.condition else None)
                selects.append(exp.alias_(partial, alias, copy=False))
            # an empty piece yields no row, not a row of defaults (max() = 0) to merge
            nonempty: list[exp.Expr] = [] if groups else [
                exp.GT(this=call("count"), expression=exp.Literal.number(0))]
            branches.append(filtered(self._from(exp.select(*selects), rollup),
                                      self._where(piece, tuple(same_table[1:])), groups,
                                      nonempty))
        union: exp.Query = branches[0]
        for branch in branches[1:]:
            union = exp.union(union, branch, distinct=False, copy=False)
        return union

    def _merged(self, pieces: tuple[Piece, ...]) -> exp.Select:
        """``SELECT ... FROM (piece UNION ALL piece ...) GROUP BY ...``: each piece yields
        partial aggregates (states, or sums/mins/maxes) that the outer query merges."""
        keys = self.components(self.query.measures)
        used = self.columns_of(pieces)
        dimension_names = [alias_for(f"_d{i}", None, set(), used)
                           for i in range(len(self.query.dimensions))]
        part_names = {key: alias_for(f"_c{i}", None, set(), used) for i, key in enumerate(keys)}
        union = self.partials(pieces, dimension_names, part_names)

        def part(key: ComponentKey, params: tuple[float, ...]) -> exp.Expr:
            return self.source.components[key].kind.combine(exp.column(part_names[key]), params)

        outer_used = set(dimension_names) | set(part_names.values())
        aliases: dict[str, str] = {}
        selects = []
        groups = []
        for name, inner in zip(self.query.dimensions, dimension_names, strict=True):
            aliases[name] = alias_for(name, None, outer_used, set())
            outer_used.add(aliases[name])
            selects.append(exp.alias_(self._shown(name, exp.column(inner)), aliases[name],
                                      copy=False))
            groups.append(exp.column(inner))
        for name in self.query.measures:
            aliases[name] = alias_for(name, None, outer_used, set())
            outer_used.add(aliases[name])
            selects.append(exp.alias_(self.measure(name, part), aliases[name], copy=False))
        derived = exp.Subquery(this=union, alias=exp.TableAlias(this=exp.to_identifier("pieces")))
        select = filtered(exp.select(*selects).from_(derived, copy=False), [], groups,
                           self._having(lambda m: self.measure(m, part)))
        self._finish_order(aliases)
        return select
