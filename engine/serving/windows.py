"""Time functions (rolling, to-date, cumulative, offset) and comparisons, served from the same
pieces as any query: each bucket's partial aggregates are read once (rollup middles, edges
from finer rollups or raw rows), over the answer's range and the lookback its windows need,
then combined across buckets by ClickHouse.

The statement, from the inside out:

1. ``partials``: every piece grouped by the dimensions and the bucket, its partials (states,
   sums, mins, maxes) as ``_c0, _c1, ...`` (``SqlBuilder.partials``, as a merged query).
2. ``buckets``: one row per group and bucket, partials merged but kept partial
   (``uniqExactMergeState``), and ``_here = 1``; with ``fill``, or to compare a window's
   value at a bucket without rows, every bucket of the range (``WITH FILL``: a filled row
   holds empty states, NULL mins and maxes, and ``_here = 0``).
3. ``values``: each measure and time function as a window function over the buckets of its
   group, ordered by the bucket's number (``RANGE`` frames, so a missing bucket is a gap, not
   a row): ``uniqExactMerge(_c0) OVER (PARTITION BY region ORDER BY toRelativeDayNum(day)
   RANGE BETWEEN 6 PRECEDING AND CURRENT ROW)`` is a 7-day distinct count, ``BETWEEN 7
   PRECEDING AND 7 PRECEDING`` the count a week before. A comparison is each value's frame
   moved back (``BETWEEN 13 PRECEDING AND 7 PRECEDING``: the 7-day count a week earlier). A
   frame without rows gives null, or 0 for counts and sums.
4. ``shifted``, only where a move is no fixed number of buckets (months at day grain, a
   month back from the 29th-31st being the month's last day) or moves a to-date period:
   each row is repeated at the days that look back to it (``arrayJoin``, up to four), then
   grouped again, so a row holds its own values and those of the day ``by`` earlier.
5. the answer: metrics over those values, the range applied after the windows (``WHERE``
   runs first, so the lookback must be read and cut here), measure conditions, order, limit.

Step 2 is left out when the pieces are one table (its rows are one per group and bucket
already) and no bucket needs filling. A comparison without a grain reads the range and the
range moved back as two tagged reads (``_b`` 0 and -1): a frame one tag back.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlglot import exp

from engine.dialect.aggregations import zero_when_empty
from engine.dialect.functions import bucket_call, call, grain_step
from engine.dialect.types import is_date_type
from engine.model.compiled import ComponentKey
from engine.query.normalize import compared_columns
from engine.query.request import Interval
from engine.serving.changes import Change, change_sql, changes
from engine.serving.clauses import alias_for, connect, filtered, instant_text, ordered, over_members
from engine.serving.plan import Piece
from engine.serving.reads import Read, atoms, base_measure, time_function
from engine.serving.sql import SqlBuilder
from engine.time.shifts import move_back, shift_buckets, size, window_buckets
from semantic.model import Duration, TimeFunction, parse_duration

#: grain -> the bucket's number (consecutive buckets differ by 1), for RANGE frames
_NUMBERS: dict[str, Callable[[exp.Expr], exp.Expr]] = {
    "minute": lambda b: call("intDiv", call("toUnixTimestamp", b), exp.Literal.number(60)),
    "hour": lambda b: call("intDiv", call("toUnixTimestamp", b), exp.Literal.number(3600)),
    "day": lambda b: call("toRelativeDayNum", b),
    "week": lambda b: call("intDiv", call("toRelativeDayNum", b), exp.Literal.number(7)),
    "month": lambda b: call("toRelativeMonthNum", b),
    "quarter": lambda b: call("intDiv", call("toRelativeMonthNum", b), exp.Literal.number(3)),
    "year": lambda b: call("toRelativeYearNum", b),
    # fiscal quarters and years are 3 and 12 months apart, wherever they start
    "fiscal_quarter": lambda b: call("intDiv", call("toRelativeMonthNum", b),
                                     exp.Literal.number(3)),
    "fiscal_year": lambda b: call("intDiv", call("toRelativeMonthNum", b),
                                  exp.Literal.number(12)),
}


def _forward(bucket: exp.Expr, by: Duration, grain: str) -> exp.Expr:
    """The buckets that ``by`` back from land on ``bucket`` (an array): the bucket ``by``
    later, or at day grain and a move in months, each of the four days from it whose month
    back is ``bucket`` (none when ``bucket`` is a 29th-31st no month back reaches; several
    when it is a month's last day)."""
    family, length = size(by)
    n = exp.Literal.number(length)
    if family == "clock":
        return exp.Array(expressions=[call("addMinutes", bucket, n)])
    if family == "days":
        return exp.Array(expressions=[call("addDays", bucket, n)])
    later = call("addMonths", bucket, n)
    if grain != "day":
        return exp.Array(expressions=[later])
    day = exp.to_identifier("_x")
    index = exp.to_identifier("_i")
    candidates = call("arrayMap", exp.Lambda(this=call("addDays", later.copy(),
                                                       exp.column(index)),
                                             expressions=[index]),
                      call("range", exp.Literal.number(4)))
    reaches = exp.EQ(this=call("subtractMonths", exp.column(day), n.copy()),
                     expression=bucket.copy())
    return call("arrayFilter", exp.Lambda(this=reaches, expressions=[day]), candidates)


def _preceding(n: int | None) -> dict[str, object]:
    """A frame bound ``n`` buckets back (None: unbounded)."""
    if n is None:
        return {"this": "UNBOUNDED", "side": "PRECEDING"}
    if n == 0:
        return {"this": "CURRENT ROW", "side": None}
    return {"this": exp.Literal.number(n), "side": "PRECEDING"}


class WindowedSqlBuilder(SqlBuilder):
    """Builds the statement of a query with time functions or a comparison."""

    def build_windowed(self, reads: tuple[tuple[Read, tuple[Piece, ...]], ...],
                       fetch_limit: int) -> tuple[exp.Select, dict[str, object],
                                                  tuple[str, ...]]:
        query = self.query
        self.atoms = atoms(self.source, query)
        measures = tuple(dict.fromkeys(base_measure(self.source, atom) for atom in self.atoms))
        keys = self.components(measures)
        pieces = tuple(p for _, read_pieces in reads for p in read_pieces)
        used = self.columns_of(pieces) | {"_b", "_here", "_s", "_group"}
        self.group_names = [alias_for(f"_d{i}", None, set(), used)
                            for i, name in enumerate(query.dimensions) if name != self.time]
        names = iter(self.group_names)
        dimension_names = ["_b" if name == self.time else next(names)
                           for name in query.dimensions]
        part_names = {key: alias_for(f"_c{i}", None, set(), used) for i, key in enumerate(keys)}
        self.value_names = {atom: alias_for(f"_v{i}", None, set(), used)
                            for i, atom in enumerate(self.atoms)}
        # a comparison is a frame moved back, unless it lands on other days than a fixed
        # number of buckets (months at day grain) or moves a to-date period: then a shift
        self.back = None if query.compare is None else 1 if query.grain is None else \
            shift_buckets(parse_duration(query.compare), query.grain)
        if any(self._clamped(atom) or (f := time_function(self.source, atom)) is not None and
               f.period is not None for atom in self.atoms):
            self.back = None
        compared = {} if query.compare is None else {
            atom: alias_for(f"_p{i}", None, set(), used) for i, atom in enumerate(self.atoms)}
        self.compared = compared
        #: the changes computed from the answer's rows (set by ``_answer``)
        self.changes: tuple[Change, ...] = ()
        # one branch already has one row per group and bucket: no regrouping unless filled
        branches = sum(len({p.rollup.name if p.rollup else None for p in read_pieces})
                       for _, read_pieces in reads)
        here = exp.alias_(exp.Literal.number(1), "_here")
        union: exp.Query | None = None
        for tag, (_read, read_pieces) in enumerate(reads):
            extra: tuple[exp.Expr, ...] = () if query.grain else (
                exp.alias_(exp.Literal.number(-tag), "_b"),)  # the moved range: -1
            if branches == 1 and not self._dense():
                extra += (here,)
            branch = self.partials(read_pieces, dimension_names, part_names, extra)
            union = branch if union is None else exp.union(union, branch, distinct=False,
                                                             copy=False)
        assert union is not None
        relation: exp.Query = union
        if branches > 1 or self._dense():
            relation = self._buckets(union, part_names, reads[0][0].interval)
        framed = compared if self.back is not None else {}
        values, moved = self._value_expressions(part_names, framed)
        clamped = [atom for atom in self.atoms if self._clamped(atom)]
        #: whether the relation has rows of buckets without rows (filled or shifted in),
        #: which the answer leaves out unless filling
        self.rows_without_data = self._dense() or bool(clamped) or \
            (bool(compared) and self.back is None)
        if not self.rows_without_data and query.fill is None:
            # the windows, the metrics over them and the range (QUALIFY: after the windows)
            # in one SELECT over the buckets
            statement = self._answer(relation, values, moved, qualify=True)
            return self._paged(statement, fetch_limit)
        relation = self._values(relation, values, moved)
        shifts: dict[Duration, list[str]] = {}
        for atom in clamped:  # one shift per offset, for every atom moved by it
            function = time_function(self.source, atom)
            assert function is not None and function.by is not None
            shifts.setdefault(function.by, []).append(atom)
        for by, shifted in shifts.items():
            relation = self._shifted(relation, by, [
                (self.value_names[atom], self.value_names[atom]) for atom in shifted])
        if compared and self.back is None:
            by = parse_duration(query.compare or "")
            relation = self._shifted(relation, by, [
                (self.value_names[atom], compared[atom]) for atom in self.atoms])
        columns: dict[str, exp.Expr] = {
            atom: exp.column(name) for atom, name in self.value_names.items()}
        before: dict[str, exp.Expr] = {
            atom: exp.column(name) for atom, name in compared.items()}
        statement = self._answer(relation, columns, before)
        return self._paged(statement, fetch_limit)

    def _paged(self, statement: exp.Select, fetch_limit: int) -> tuple[
            exp.Select, dict[str, object], tuple[str, ...]]:
        """The statement with its limit and offset, its parameters and its columns."""
        query = self.query
        if query.dimensions or query.offset:
            statement = statement.limit(exp.Literal.number(fetch_limit), copy=False)
        if query.offset:
            statement = statement.offset(exp.Literal.number(query.offset), copy=False)
        return statement, self.parameters, (*query.dimensions, *query.measures,
                                             *compared_columns(query))

    def _clamped(self, atom: str) -> bool:
        """Whether an offset moves day buckets by months (its frame is no fixed distance)."""
        function = time_function(self.source, atom)
        return function is not None and self._clamped_by(function)

    def _clamped_by(self, function: TimeFunction) -> bool:
        return function.by is not None and self.query.grain is not None and \
            shift_buckets(function.by, self.query.grain) is None

    def windowed_shape(self, reads: tuple[tuple[Read, tuple[Piece, ...]], ...],
                       fetch_limit: int) -> Hashable:
        """As ``shape``, with the reads (which bounds each has) and the comparison."""
        pieces = tuple(p for _, read_pieces in reads for p in read_pieces)
        interval = self.query.interval or (None, None)
        return ("windowed", self.query.compare, tuple(t is not None for t in interval),
                self.shape(pieces, fetch_limit),
                tuple((read.purpose, read.interval[0] is not None, read.interval[1] is not None,
                       len(read_pieces)) for read, read_pieces in reads))

    # 2. one row per group and bucket ----------------------------------------------------
    def _buckets(self, union: exp.Query, part_names: dict[ComponentKey, str],
                 interval: Interval) -> exp.Select:
        groups = [exp.column(n) for n in (*self.group_names, "_b")]
        selects: list[exp.Expr] = [g.copy() for g in groups]
        for key, alias in part_names.items():
            kind = self.source.components[key].kind
            merged = kind.merge_state(exp.column(alias))
            if kind.name in ("min", "max"):  # a filled bucket's NULL is no value; its 0 would be
                merged = call("toNullable", merged)
            selects.append(exp.alias_(merged, alias))
        selects.append(exp.alias_(exp.Literal.number(1), "_here"))
        pieces = exp.Subquery(this=union, alias=exp.TableAlias(this=exp.to_identifier("_p")))
        select = filtered(exp.select(*selects).from_(pieces), [], groups, [])
        if not self._dense():
            return select
        low, high, step = self._fill_bounds(interval)
        prefix = [exp.Ordered(this=exp.column(n), nulls_first=False) for n in self.group_names]
        bucket = exp.Ordered(this=exp.column("_b"), nulls_first=False,
                             with_fill=exp.WithFill(from_=low, to=high, step=step))
        return select.order_by(*prefix, bucket, copy=False)

    def _dense(self) -> bool:
        """Whether every bucket needs a row: to fill the answer, or for a comparison made by
        a shift to find a time function's value at a bucket without rows (a 7-day count of
        a day without rows is not 0)."""
        return self.query.grain is not None and (self.query.fill is not None or (
            self.query.compare is not None and self.back is None and any(
                time_function(self.source, atom) is not None for atom in self.atoms)))

    def _fill_bounds(self, interval: Interval) -> tuple[exp.Expr | None, exp.Expr | None,
                                                        exp.Expr]:
        """WITH FILL's FROM, TO and STEP: the read's first bucket (each group's first, when
        the read has no start) to the bucket after the answer's last (each group's last,
        when open)."""
        query = self.query
        assert query.grain is not None
        start, end = interval
        if start is None and query.interval is not None and query.interval[0] is not None:
            # cumulative: from the first bucket the answer or its comparison shows (the rows
            # before it stay, unfilled)
            start = query.interval[0]
            if query.compare is not None:
                start = move_back(start, parse_duration(query.compare), ZoneInfo(self.zone))
        step = grain_step(query.grain)
        return (self._bucket_value(start) if start else None,
                self._bucket_value(end) if end else None, step)

    def _bucket_value(self, t: datetime) -> exp.Expr:
        """A bucket boundary as the bucket column holds it: a date of the zone, or an
        instant (minute and hour buckets)."""
        assert self.query.grain is not None
        if self.query.grain in ("minute", "hour") and self._instants():
            return call("toDateTime", self._bind(instant_text(t)[:19], "String"),
                        exp.Literal.string("UTC"))
        return self._bind(t.astimezone(ZoneInfo(self.zone)).date().isoformat(), "Date")

    def _instants(self) -> bool:
        return self.source.time is not None and not is_date_type(self.source.time.type)

    # 3. measures and time functions over the buckets ------------------------------------
    def _window(self, function: TimeFunction | None, back: int = 0) -> exp.Window:
        """The window of a time function (None: the measure) at the bucket ``back`` buckets
        before each row's, over the buckets of its group: a frame of bucket numbers."""
        grain = self.query.grain
        partition: list[exp.Expr] = [exp.column(n) for n in self.group_names]
        bucket = exp.column("_b")
        number = _NUMBERS[grain](bucket) if grain else bucket
        distance = back
        if function is not None and function.by is not None and not self._clamped_by(function):
            assert grain is not None
            distance += shift_buckets(function.by, grain) or 0
        start: int | None = distance
        if function is not None and function.window is not None:
            assert grain is not None
            start = distance + window_buckets(function.window, grain) - 1
        elif function is not None and function.by is None:  # to date, cumulative
            start = None
        if function is not None and function.period is not None:
            assert back == 0, "a to-date value of another bucket is shifted, not framed"
            partition.append(bucket_call(function.period, bucket.copy(),
                                         self.zone if self._instant_buckets() else None,
                                         self.query.calendar))
        first, last = _preceding(start), _preceding(distance)
        spec = exp.WindowSpec(kind="RANGE", start=first["this"], start_side=first["side"],
                              end=last["this"], end_side=last["side"])
        return exp.Window(this=None, partition_by=partition,
                          order=exp.Order(expressions=[exp.Ordered(this=number)]), spec=spec)

    def _instant_buckets(self) -> bool:
        return self.query.grain in ("minute", "hour") and self._instants()

    def _value_expressions(self, part_names: dict[ComponentKey, str],
                           framed: dict[str, str]) -> tuple[dict[str, exp.Expr],
                                                            dict[str, exp.Expr]]:
        """Each atom's value at each row's bucket and, for a comparison made by frames, at
        the bucket ``back`` before it (for the atoms ``framed`` names)."""
        values = {atom: self._value(atom, part_names, 0) for atom in self.atoms}
        moved: dict[str, exp.Expr] = {}
        for atom in framed:
            assert self.back is not None
            moved[atom] = self._value(atom, part_names, self.back)
        return values, moved

    def _values(self, buckets: exp.Query, values: dict[str, exp.Expr],
                moved: dict[str, exp.Expr]) -> exp.Select:
        """The buckets with each atom's value (as ``value_names``) and those framed back (as
        ``compared``)."""
        selects: list[exp.Expr] = [exp.column(n) for n in (*self.group_names, "_b", "_here")]
        if self.query.fill is not None and self.group_names:
            # a group the answer has (a row in the range): the groups filled
            inside = self._in_range()
            counted: exp.Expr = call("if", connect(inside, exp.And), exp.column("_here"),
                                     exp.Literal.number(0)) if inside else exp.column("_here")
            selects.append(exp.alias_(exp.Window(
                this=call("max", counted),
                partition_by=[exp.column(n) for n in self.group_names]), "_group"))
        selects += [exp.alias_(value, self.value_names[atom]) for atom, value in values.items()]
        selects += [exp.alias_(value, self.compared[atom]) for atom, value in moved.items()]
        return exp.select(*selects).from_(exp.Subquery(
            this=buckets, alias=exp.TableAlias(this=exp.to_identifier("_buckets"))))

    def _value(self, atom: str, part_names: dict[ComponentKey, str], back: int) -> exp.Expr:
        """An atom at the bucket ``back`` before each row's: its measure finished from window
        functions over the frame; null over a frame without rows unless 0 (counts, sums)."""
        function = time_function(self.source, atom)
        measure = self.source.measures[base_measure(self.source, atom)]

        def windowed(expression: exp.Expr) -> exp.Expr:
            window = self._window(function, back)
            window.set("this", expression)
            return window

        # at the row's own bucket, a row holds the bucket's partials: a sum, min or max is
        # its value (no window); a state is merged by a window of that one row
        current = back == 0 and (function is None or self._clamped_by(function))
        parts = []
        for key in measure.components:
            kind = self.source.components[key].kind
            column = exp.column(part_names[key])
            parts.append(column if current and kind.simple else
                         windowed(kind.combine(column, measure.params)))
        value = measure.aggregation.finish(parts)
        # a measure of a filled bucket with fill: null
        blank = self.query.fill == "null" and back == 0 and function is None
        if not zero_when_empty(measure.aggregation) or blank:
            here: exp.Expr = exp.column("_here") if current else \
                windowed(call("max", exp.column("_here")))
            value = call("if", exp.EQ(this=here, expression=exp.Literal.number(0)),
                         exp.Null(), value)
        return value

    # 4. values of the bucket some time earlier ------------------------------------------
    def _shifted(self, relation: exp.Select, by: Duration,
                 columns: list[tuple[str, str]]) -> exp.Select:
        """``relation`` (groups, ``_b``, ``_here``, value columns) with each ``(column, as)``:
        ``as`` set to ``column`` of the bucket ``by`` earlier (at day grain a month back
        from the 29th-31st is the month's last day; null where that bucket has no row, 0
        for counts and sums). Each row is repeated at the buckets that look back to it
        (``arrayJoin``) and grouped again."""
        assert self.query.grain is not None
        bucket = exp.column("_b")
        later = exp.to_identifier("_y")
        arrays = [exp.Array(expressions=[exp.Tuple(expressions=[bucket.copy(),
                                                                exp.Literal.number(0)])]),
                  call("arrayMap", exp.Lambda(
                      this=exp.Tuple(expressions=[exp.column(later), exp.Literal.number(1)]),
                      expressions=[later]), _forward(bucket.copy(), by, self.query.grain))]
        carried = list(self.value_names.values())
        # renamed on the way in: ClickHouse reads an alias anywhere in its SELECT, so
        # ``anyIf(_v0, ...) AS _v0`` would refer to itself
        flags = ["_here", *(["_group"] if self.query.fill and self.group_names else [])]
        inner = {column: f"_i{i}" for i, column in enumerate((*flags, *carried))}
        rows = exp.select(*(exp.column(n) for n in self.group_names),
                          *(exp.alias_(exp.column(c), i) for c, i in inner.items()),
                          exp.alias_(call("arrayJoin", call("arrayConcat", *arrays)), "_s")).from_(
            exp.Subquery(this=relation, alias=exp.TableAlias(this=exp.to_identifier("_r"))))
        role = call("tupleElement", exp.column("_s"), exp.Literal.number(2))

        def when(number: int) -> exp.Expr:
            return exp.EQ(this=role.copy(), expression=exp.Literal.number(number))

        selects: list[exp.Expr] = [exp.column(n) for n in self.group_names]
        selects.append(exp.alias_(call("tupleElement", exp.column("_s"),
                                       exp.Literal.number(1)), "_b"))
        selects += [exp.alias_(call("maxIf", exp.column(inner[flag]), when(0)), flag)
                    for flag in flags]
        moved = dict((alias, column) for column, alias in columns)
        selects += [exp.alias_(call("anyIf", call("toNullable", exp.column(inner[column])),
                                    when(0)), column)
                    for column in carried if column not in moved]
        atom_of = {v: a for a, v in self.value_names.items()}
        for alias, column in moved.items():
            value: exp.Expr = call("anyIf", call("toNullable", exp.column(inner[column])),
                                   when(1))
            measure = self.source.measures[base_measure(self.source, atom_of[column])]
            if zero_when_empty(measure.aggregation):
                value = call("coalesce", value, exp.Literal.number(0))
            selects.append(exp.alias_(value, alias))
        groups = [exp.column(n) for n in self.group_names] + [exp.column("_b")]
        shifted = exp.Subquery(this=rows, alias=exp.TableAlias(this=exp.to_identifier("_rows")))
        return filtered(exp.select(*selects).from_(shifted), [], groups, [])

    # 5. the answer ----------------------------------------------------------------------
    def _in_range(self, ends: bool = True) -> list[exp.Expr]:
        """The answer's buckets: those of the range (the tag of the range, without grain);
        without ``ends`` its start only (buckets read end where the widened range ends)."""
        query = self.query
        if query.grain is None:
            return [exp.EQ(this=exp.column("_b"), expression=exp.Literal.number(0))]
        start, end = query.interval or (None, None)
        conditions: list[exp.Expr] = []
        if start is not None:
            conditions.append(exp.GTE(this=exp.column("_b"),
                                      expression=self._bucket_value(start)))
        if end is not None and ends:
            conditions.append(exp.LT(this=exp.column("_b"), expression=self._bucket_value(end)))
        return conditions

    def _finished(self, name: str, columns: dict[str, exp.Expr]) -> exp.Expr:
        """A measure or metric computed from the atoms' values (``columns``)."""
        if name in columns:
            return columns[name].copy()
        return over_members(self.source.metrics[name].expression,
                            lambda member: self._finished(member, columns))

    def _answer(self, relation: exp.Query, values: dict[str, exp.Expr],
                compared: dict[str, exp.Expr], qualify: bool = False) -> exp.Select:
        """The answer's columns, the range and measure conditions, the order: over
        ``relation`` (the rows of each group and bucket with the atoms' values as columns),
        or with ``qualify`` over the buckets themselves, ``values`` being the windows."""
        query = self.query
        used = {"_b", "_here", "_group", *self.group_names, *self.value_names.values(),
                *self.compared.values()}
        aliases: dict[str, str] = {}
        selects: list[exp.Expr] = []
        names = iter(self.group_names)
        def add(name: str, expression: exp.Expr) -> None:
            aliases[name] = alias_for(name, None, used, set())
            used.add(aliases[name])
            selects.append(exp.alias_(expression, aliases[name]))

        for name in query.dimensions:
            add(name, self._shown(name, exp.column("_b" if name == self.time else next(names))))
        for name in query.measures:
            add(name, self._finished(name, values))
        # the changes are computed from the answer's rows (``engine.serving.changes``) unless
        # the order needs them
        ordered_by = {sort.member for sort in query.order}
        self.changes = tuple(c for c in changes(query.measures if query.compare else ())
                             if c.column not in ordered_by)
        for name in query.measures if query.compare is not None else ():
            # the change and its ratio name the columns they are computed from (ClickHouse
            # reads an alias anywhere in its SELECT): each window is evaluated once
            current = exp.column(aliases[name])
            before = exp.column(alias_for(name + "__compare", None, used, set()))
            add(name + "__compare", self._finished(name, compared))
            for change in changes((name,)):
                if change not in self.changes:
                    add(change.column, change_sql(change, current.copy(), before.copy()))
        where: list[exp.Expr] = []
        if query.fill is None:
            if self.rows_without_data:
                where.append(exp.EQ(this=exp.column("_here"),
                                    expression=exp.Literal.number(1)))
        elif self.group_names:  # over no rows, WITH FILL fills one series of default groups
            where.append(exp.EQ(this=exp.column("_group"), expression=exp.Literal.number(1)))
        # over the buckets read (QUALIFY), none is past the range; shifted rows may be
        where += self._in_range(ends=not qualify)
        where += self._having(lambda m: self._finished(m, values))
        alias = "_buckets" if qualify else "_w"
        source = exp.Subquery(this=relation, alias=exp.TableAlias(this=exp.to_identifier(alias)))
        if qualify:
            select = exp.select(*selects).from_(source)
            if where:
                select.set("qualify", exp.Qualify(this=connect(where, exp.And)))
        else:
            select = filtered(exp.select(*selects).from_(source), where, [], [])
        self._finish_order(aliases)
        if self._order:
            select = select.order_by(*(ordered(alias, descending, nulls_first)
                                       for alias, descending, nulls_first in self._order),
                                     copy=False)
        return select
