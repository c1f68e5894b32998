"""Statements: the table or subquery a SELECT reads (CTEs, views of a table and answered
subqueries folded in), ``GROUP BY``, ``ORDER BY``, ``LIMIT``/``OFFSET``/``FETCH`` and the
``/v1/query`` body they make."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from sqlglot import exp

from server.sql.errors import (
    GROUPING_ERROR,
    SYNTAX_ERROR,
    UNDEFINED_COLUMN,
    UNDEFINED_TABLE,
    UNSUPPORTED,
    SqlError,
)
from server.sql.schema import Schema, Table
from server.sql.translate.builder import Builder, Item, Output, Param, Translated, parameter_index
from server.sql.translate.conditions import condition_filter, where_filters
from server.sql.translate.items import select_item
from server.sql.types import (
    INT8,
)

# -- statements ---------------------------------------------------------------------------


def _table(schema: Schema, node: exp.Expression) -> Table:
    if not isinstance(node, exp.Table):
        raise SqlError(UNSUPPORTED, f"FROM {node.sql('postgres')[:200]} cannot be answered")
    database = node.db
    if database and database != "public":
        raise SqlError(UNDEFINED_TABLE, f'relation "{database}.{node.name}" does not exist; '
                       "the model's tables are in the schema public")
    table = schema.get(node.name)
    if table is None:
        raise SqlError(UNDEFINED_TABLE, f'relation "{node.name}" does not exist',
                       hint=f"the tables: {', '.join(schema) or 'none'}")
    return table


def _is_view(select: exp.Select) -> bool:
    """A ``SELECT * [WHERE ...]`` of a table: the table itself (filtered), as tools wrap it."""
    return (len(select.expressions) == 1 and isinstance(select.expressions[0], exp.Star)
            and not any(select.args.get(k) for k in ("group", "having", "order", "limit",
                                                      "offset", "joins", "distinct")))


def translate(statement: exp.Expression, schema: Schema, max_rows: int) -> Translated:
    """The ``/v1/query`` body of a SELECT over the model's tables."""
    ctes: dict[str, exp.Expression] = {}
    with_ = statement.args.get("with_") or statement.args.get("with")
    if isinstance(with_, exp.With):
        if with_.args.get("recursive"):
            raise SqlError(UNSUPPORTED, "WITH RECURSIVE cannot be answered from the model")
        for cte in with_.expressions:
            ctes[cte.alias] = cte.this
    if isinstance(statement, exp.Subquery):
        statement = statement.this
    if not isinstance(statement, exp.Select):
        raise SqlError(UNSUPPORTED, f"{type(statement).__name__.upper()} statements cannot be "
                       "answered; the model's tables are read with SELECT")
    return _select(statement, schema, ctes, max_rows)


def _source(select: exp.Select, schema: Schema, ctes: Mapping[str, exp.Expression],
            max_rows: int) -> Translated | tuple[Table, exp.Expression | None, frozenset[str]]:
    """What a SELECT reads: an answered subquery, or a table (with the conditions of a view
    of it a tool wrapped, and the names its columns may be qualified with)."""
    from_ = select.args.get("from_") or select.args.get("from")
    if from_ is None:
        raise SqlError(UNSUPPORTED, "name a table: SELECT ... FROM events")
    if select.args.get("joins"):
        raise SqlError(UNSUPPORTED, "joins between tables cannot be answered exactly; a "
                       "source's joined dimensions are its own columns (\"user.country\")")
    node = from_.this
    if isinstance(node, exp.Table) and node.args.get("sample") is not None:
        raise SqlError(UNSUPPORTED, "TABLESAMPLE cannot be answered exactly")
    alias = node.alias
    if isinstance(node, exp.Table) and not node.db and node.name in ctes:
        body = ctes[node.name].copy()
        # the CTE's own body cannot name it (that would be WITH RECURSIVE)
        ctes = {k: v for k, v in ctes.items() if k != node.name}
        alias = alias or node.name
        node = exp.Subquery(this=body)
    if isinstance(node, exp.Subquery):
        inner = node.this
        if isinstance(inner, exp.Select) and _is_view(inner):
            inner_from = inner.args.get("from_") or inner.args.get("from")
            if inner_from is None or isinstance(inner_from.this, exp.Subquery):
                raise SqlError(UNSUPPORTED, "name a table: SELECT ... FROM events")
            table = _table(schema, inner_from.this)
            where = inner.args.get("where")
            names = {table.name, inner_from.this.alias, alias or node.alias} - {""}
            return table, where.this if where is not None else None, frozenset(names)
        if not isinstance(inner, exp.Select):
            raise SqlError(UNSUPPORTED, "a subquery in FROM must be a SELECT")
        return _select(inner, schema, ctes, max_rows)
    table = _table(schema, node)
    return table, None, frozenset({table.name, node.alias} - {""})


def _select(select: exp.Select, schema: Schema, ctes: Mapping[str, exp.Expression],
            max_rows: int) -> Translated:
    found = _source(select, schema, ctes, max_rows)
    if isinstance(found, Translated):
        return _outer(select, found, max_rows)
    source, extra_where, qualifiers = found
    builder = Builder(source, qualifiers=qualifiers)
    items = [select_item(builder, node) for node in select.expressions]
    builder.aliases = {i.name: i.member for i in items}
    measures = [i for i in items if i.kind == "measure"]
    grouped = _group_by(select, items, builder)
    distinct = select.args.get("distinct")
    if not measures and grouped is None and not distinct:
        raise SqlError(GROUPING_ERROR, "this would return raw rows, which the model does not "
                       "answer; add GROUP BY (or DISTINCT) over the columns, or a measure")
    if distinct is not None and (distinct.args.get("on") is not None or any(
            m not in {i.member for i in items} for m in grouped or ())):
        raise SqlError(UNSUPPORTED, "DISTINCT ON, or DISTINCT over fewer columns than are "
                       "grouped by, cannot be answered; group by the columns selected")
    where = select.args.get("where")
    condition = where.this if where is not None else None
    if extra_where is not None:
        condition = extra_where if condition is None else exp.and_(extra_where, condition)
    filters, bounds = where_filters(builder, condition)
    having = select.args.get("having")
    if having is not None:
        filters.append(condition_filter(builder, having.this, measures=True))
    dimensions = [i.member for i in items if i.kind == "dimension"]
    time = source.time
    # the grain's bucket is returned under the time column's name without being listed
    dimensions += [m for m in grouped or () if m not in dimensions
                   and not (time is not None and m == time.name)]
    body: dict[str, Any] = {"source": source.name,
                            "measures": list(dict.fromkeys(i.member for i in measures)),
                            "dimensions": list(dict.fromkeys(dimensions))}
    if builder.grain is not None:
        body["grain"] = builder.grain
    if filters:
        body["filters"] = filters
    if bounds.start is not None or bounds.end is not None:
        body["time_range"] = {k: v for k, v in (("from", bounds.start), ("to", bounds.end))
                              if v is not None}
    order = _order(select, items, builder)
    if order:
        body["order"] = order
    if builder.zone is not None:
        body["timezone"] = builder.zone
    limited, empty = _limits(select, body, builder, max_rows)
    outputs = tuple(Output(i.name, i.type, i.member, i.part) for i in items)
    return Translated(body, outputs, builder.parameters, limited, max_rows, empty)


def _group_by(select: exp.Select, items: list[Item], builder: Builder) -> list[str] | None:
    """The members grouped by (None without GROUP BY); every non-measure item must be one."""
    group = select.args.get("group")
    if group is None:
        if any(i.kind == "measure" for i in items) and any(i.kind != "measure" for i in items):
            shown = next(i for i in items if i.kind != "measure")
            raise SqlError(GROUPING_ERROR, f'column "{shown.name}" must appear in the GROUP BY '
                           "clause or be used in an aggregate function",
                           hint="add GROUP BY over the dimensions (GROUP BY 1, 2)")
        return None
    members: list[str] = []
    for node in group.expressions:
        item = _reference(node, items, builder)
        if item.kind == "measure":
            raise SqlError(GROUPING_ERROR, f"aggregate functions are not allowed in GROUP BY "
                           f"({item.name})")
        members.append(item.member)
    for item in items:
        if item.kind != "measure" and item.member not in members:
            raise SqlError(GROUPING_ERROR, f'column "{item.name}" must appear in the GROUP BY '
                           "clause or be used in an aggregate function")
    return members


def _reference(node: exp.Expression, items: list[Item], builder: Builder) -> Item:
    """A GROUP BY or ORDER BY item: a position, an output name, or an expression."""
    if isinstance(node, exp.Literal) and not node.is_string and node.this.isdigit():
        position = int(node.this)
        if not 1 <= position <= len(items):
            raise SqlError(UNDEFINED_COLUMN, f"position {position} is not in select list")
        return items[position - 1]
    if isinstance(node, exp.Column) and not node.table:
        named = [i for i in items if i.name == node.name]
        if named:
            return named[0]
    key = node.sql("postgres")
    keyed = [i for i in items if i.key == key]
    if keyed:
        return keyed[0]
    return select_item(builder, node)


def _order(select: exp.Select, items: list[Item],
           builder: Builder) -> list[dict[str, str]]:
    order = select.args.get("order")
    if order is None:
        return []
    members: list[dict[str, str]] = []
    returned = {i.member for i in items}
    for ordered in order.expressions:
        item = _reference(ordered.this, items, builder)
        if item.member not in returned:
            raise SqlError(UNSUPPORTED, f"ORDER BY {item.name}: order by the columns returned")
        members.append(_ordering(item.member, ordered))
    return members


def _ordering(member: str, ordered: exp.Expression) -> dict[str, str]:
    """An ORDER BY item; NULLs come where PostgreSQL puts them (last ascending, first
    descending) unless ``NULLS FIRST``/``LAST`` says otherwise."""
    descending = bool(ordered.args.get("desc"))
    first = ordered.args.get("nulls_first")  # sqlglot sets PostgreSQL's default when unwritten
    nulls_first = descending if first is None else bool(first)
    found = {"member": member, "direction": "desc" if descending else "asc"}
    return {**found, "nulls": "first"} if nulls_first else found


def _integer(builder: Builder, node: exp.Expression | None, what: str) -> object:
    """A LIMIT or OFFSET: a whole number, a parameter, or None (``LIMIT ALL``, ``NULL``)."""
    while isinstance(node, exp.Paren | exp.Cast):
        node = node.this
    if node is None or isinstance(node, exp.Null) or (isinstance(node, exp.Var)
                                                      and node.name.upper() == "ALL"):
        return None
    if isinstance(node, exp.Placeholder | exp.Parameter):
        index = parameter_index(node)
        builder.parameters.setdefault(index, INT8)
        return Param(index)
    if isinstance(node, exp.Literal) and node.this.strip().isdigit():
        return int(node.this)
    raise SqlError(SYNTAX_ERROR, f"{what} must be a whole number")


def _limit_node(select: exp.Select) -> exp.Expression | None:
    limit = select.args.get("limit")
    if isinstance(limit, exp.Fetch):  # FETCH FIRST n ROWS ONLY
        options = limit.args.get("limit_options")
        if options is not None and (options.args.get("percent") or
                                    options.args.get("with_ties")):
            raise SqlError(UNSUPPORTED, "FETCH ... PERCENT or WITH TIES cannot be answered")
        count = limit.args.get("count")
        return count if count is not None else exp.Literal.number(1)
    return limit.expression if limit is not None else None


def _limits(select: exp.Select, body: dict[str, Any], builder: Builder,
            max_rows: int) -> tuple[bool, bool]:
    """The body's limit and offset; whether the statement bounds its rows itself, and
    whether it asks for none (``LIMIT 0``)."""
    offset = select.args.get("offset")
    count = _integer(builder, _limit_node(select), "LIMIT")
    skip = _integer(builder, offset.expression if offset is not None else None, "OFFSET")
    if skip is not None:
        body["offset"] = skip
    if count == 0:
        body["limit"] = 1
        return True, True
    if isinstance(count, int) and count > max_rows:  # more than an answer may have: all of it
        count = None
    body["limit"] = count
    return count is not None, False


def _outer(select: exp.Select, inner: Translated, max_rows: int) -> Translated:
    """A query over an answered subquery: columns of it, its order, a part of its rows."""
    for key in ("where", "group", "having", "joins"):
        if select.args.get(key):
            raise SqlError(UNSUPPORTED, f"{key.upper()} over a subquery that aggregates cannot "
                           "be answered; put it inside the subquery")
    by_name = {o.name: o for o in inner.outputs}
    outputs: list[Output] = []
    for node in select.expressions:
        if isinstance(node, exp.Star):
            outputs += inner.outputs
            continue
        name = node.alias if isinstance(node, exp.Alias) else None
        column = node.this if isinstance(node, exp.Alias) else node
        if not isinstance(column, exp.Column) or column.name not in by_name:
            raise SqlError(UNSUPPORTED, f"{node.sql('postgres')[:200]}: over a subquery, select "
                           f"its columns ({', '.join(by_name)})")
        outputs.append(replace(by_name[column.name], name=name or column.name))
    if select.args.get("distinct") is not None and len(outputs) < len(inner.outputs):
        raise SqlError(UNSUPPORTED, "DISTINCT over some of a subquery's columns cannot be "
                       "answered; select DISTINCT inside it")
    body = dict(inner.body)
    cut = inner.limited or bool(body.get("offset"))
    order = select.args.get("order")
    if order is not None:
        if cut:
            raise SqlError(UNSUPPORTED, "ORDER BY over a subquery with LIMIT or OFFSET cannot be "
                           "answered; order inside the subquery")
        members = []
        for ordered in order.expressions:
            node = ordered.this
            found = by_name.get(node.name) if isinstance(node, exp.Column) else None
            if isinstance(node, exp.Literal) and node.this.isdigit() and \
                    1 <= int(node.this) <= len(outputs):
                found = outputs[int(node.this) - 1]
            if found is None:
                raise SqlError(UNSUPPORTED, f"ORDER BY {node.sql('postgres')[:200]}: order by "
                               "the subquery's columns")
            members.append(_ordering(found.member, ordered))
        body["order"] = members
    builder = Builder(Table("", None, ()), dict(inner.parameters))
    offset = select.args.get("offset")
    count = _integer(builder, _limit_node(select), "LIMIT")
    skip = _integer(builder, offset.expression if offset is not None else None, "OFFSET")
    if count is None and skip is None:
        return replace(inner, body=body, outputs=tuple(outputs),
                       parameters=builder.parameters)
    inner_count = body.get("limit") if inner.limited else None
    inner_skip = body.get("offset") or 0
    if any(isinstance(v, Param) for v in (count, skip)) and (inner.limited or inner_skip) or \
            isinstance(inner_count, Param) or isinstance(inner_skip, Param):
        raise SqlError(UNSUPPORTED, "LIMIT and OFFSET both inside and outside a subquery must "
                       "be numbers; write them in one place")
    skip = skip or 0
    if isinstance(inner_count, int):  # the outer rows are a part of the inner ones
        left = inner_count - skip if isinstance(skip, int) else inner_count
        count = left if count is None else min(count, left) if isinstance(count, int) else count
    if isinstance(skip, int) and isinstance(inner_skip, int):
        skip = inner_skip + skip
    if skip:
        body["offset"] = skip
    empty = inner.empty or count == 0 or (isinstance(count, int) and count < 0)
    if isinstance(count, int) and count > max_rows:
        count = None
    body["limit"] = 1 if empty else count
    return Translated(body, tuple(outputs), builder.parameters, count is not None or empty,
                      max_rows, empty)
