"""Cube's filters as ours.

Leaves are ``{"member" (or "dimension"), "operator", "values"}``; groups ``{"and": [...]}`` or
``{"or": [...]}``, nested. Each operator keeps Cube's meaning: ``equals`` with several values is
``in``; ``notEquals`` and ``notIn`` also hold where the member is null (Cube writes
``<> v OR IS NULL``); ``set``/``notSet`` test for null; ``contains``, ``startsWith``,
``endsWith`` and their negations are ClickHouse's ``ilike`` with Cube's patterns. Date
operators on the time dimension become time bounds (at the top level, where they restrict every
row). Operators whose meaning we cannot reproduce exactly are refused with a clear error rather
than approximated.
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from engine.query.request import Filter, FilterGroup, FilterNode, QueryError
from semantic.suggest import shown
from server.cube.dates import Bounds, range_end, range_start, resolve_range
from server.cube.members import Cubes, Member

COMPARISONS = {"gt": "gt", "gte": "gte", "lt": "lt", "lte": "lte"}
DATE_OPERATORS = ("inDateRange", "notInDateRange", "onTheDate", "beforeDate",
                  "beforeOrOnDate", "afterDate", "afterOrOnDate")
#: Cube operators we refuse, and why
REFUSED = {
    "measureFilter": "the model's measures carry their own filters already",
    "notInDateRange": "a time range outside a range is two ranges; query them separately",
}
#: Cube's string operators: the LIKE pattern around the value (``contains`` escapes ``%``
#: and ``_`` in it, the others do not, as Cube's BaseFilter), and whether it is negated
LIKES = {"contains": ("%{}%", False), "notContains": ("%{}%", True),
         "startsWith": ("{}%", False), "notStartsWith": ("{}%", True),
         "endsWith": ("%{}", False), "notEndsWith": ("%{}", True)}
OPERATORS = ("equals", "notEquals", "in", "notIn", "gt", "gte", "lt", "lte", "set", "notSet",
             *LIKES, *DATE_OPERATORS, "measureFilter")
_WILDCARDS = re.compile(r"([_%])")
LEAF_KEYS = ("member", "dimension", "operator", "values")


class FilterReader:
    """Reads the filters of one query against its cube."""

    def __init__(self, cubes: Cubes, zone: ZoneInfo, now: datetime, max_depth: int) -> None:
        self.cubes = cubes
        self.max_depth = max_depth
        self.zone = zone
        self.now = now
        #: time bounds the date filters set (all hold)
        self.bounds: list[Bounds] = []
        #: members the filters name
        self.members: list[Member] = []

    def read(self, items: object, field: str = "filters") -> tuple[FilterNode, ...]:
        if not isinstance(items, list):
            raise QueryError(field, "'filters' is a list of filters")
        nodes = [self._node(item, f"{field}[{i}]", 0) for i, item in enumerate(items)]
        return tuple(node for node in nodes if node is not None)

    def _node(self, item: object, field: str, depth: int) -> FilterNode | None:
        if not isinstance(item, dict):
            raise QueryError(field, "a filter is {\"member\", \"operator\", \"values\"} or an "
                             "{\"and\": [...]} / {\"or\": [...]} group")
        groups = [key for key in ("and", "or") if key in item]
        if groups:
            if len(item) != 1:
                raise QueryError(field, "a filter group has exactly one key, 'and' or 'or'")
            op = groups[0]
            children = item[op]
            if depth >= self.max_depth:
                raise QueryError(field, f"filter groups may nest at most {self.max_depth} deep; "
                                 "set SEMANTIC_MAX_FILTER_DEPTH to allow more")
            if not isinstance(children, list) or not children:
                raise QueryError(f"{field}.{op}", f"'{op}' takes a non-empty list of filters")
            nodes = [self._node(child, f"{field}.{op}[{i}]", depth + 1)
                     for i, child in enumerate(children)]
            return FilterGroup(op, tuple(n for n in nodes if n is not None))
        return self._leaf(item, field, depth == 0)

    def _leaf(self, item: dict[str, object], field: str, top: bool) -> FilterNode | None:
        for key in item:
            if key not in LEAF_KEYS:
                raise QueryError(f"{field}.{shown(key)}", f"unknown filter key '{shown(key)}'; "
                                 f"a filter has {', '.join(LEAF_KEYS)}")
        if ("member" in item) == ("dimension" in item):
            raise QueryError(field, "a filter names its member with 'member' (or the older "
                             "'dimension'), exactly one of them")
        name_key = "member" if "member" in item else "dimension"
        operator = item.get("operator")
        if not isinstance(operator, str) or operator not in OPERATORS:
            raise QueryError(f"{field}.operator", f"unknown operator "
                             f"{shown(str(operator))}; Cube's operators are "
                             f"{', '.join(OPERATORS)}")
        if operator in REFUSED:
            raise QueryError(f"{field}.operator", f"operator '{operator}' is not supported: "
                             f"{REFUSED[operator]}")
        values = item.get("values", [])
        if not isinstance(values, list):
            raise QueryError(f"{field}.values", "'values' is a list")
        for value in values:
            if value is None or isinstance(value, dict | list):
                raise QueryError(f"{field}.values", "filter values are strings, numbers or "
                                 "booleans (test for null with 'set' / 'notSet')")
        texts = [_text(v) for v in values]
        member = self.cubes.resolve(item[name_key], f"{field}.{name_key}",
                                    ("dimension", "measure", "time"))
        self.members.append(member)
        if operator in DATE_OPERATORS:
            self._date(member, operator, texts, field, top)
            return None
        if member.kind == "time":
            raise QueryError(f"{field}.operator", f"'{member.key}' is the time dimension: "
                             "filter it with inDateRange, beforeDate, afterDate, ... or a "
                             "timeDimensions dateRange")
        if operator in ("set", "notSet"):
            return Filter(member.query_name, "is_not_null" if operator == "set" else "is_null")
        if not texts:
            raise QueryError(f"{field}.values", f"operator '{operator}' needs values")
        typed = tuple(_number(t, f"{field}.values") for t in texts) \
            if member.kind == "measure" else tuple(texts)
        if operator in LIKES:
            return _likes(member, operator, texts, f"{field}.member")
        if operator in COMPARISONS:
            if len(typed) != 1:
                raise QueryError(f"{field}.values", f"operator '{operator}' takes one value")
            return Filter(member.query_name, COMPARISONS[operator], typed)
        if operator in ("equals", "in"):
            return Filter(member.query_name, "eq" if len(typed) == 1 else "in", typed)
        negated = Filter(member.query_name, "ne" if len(typed) == 1 else "not_in", typed)
        if member.nullable:  # Cube: ``<> v OR IS NULL``
            return FilterGroup("or", (negated, Filter(member.query_name, "is_null")))
        return negated

    def _date(self, member: Member, operator: str, texts: list[str], field: str,
              top: bool) -> None:
        if member.kind != "time":
            raise QueryError(f"{field}.operator", f"date operators apply to the time "
                             f"dimension; '{member.key}' is not it")
        if not top:
            raise QueryError(field, "date filters restrict the time range of the whole query: "
                             "use them at the top level of 'filters', not inside 'and'/'or'")
        where = f"{field}.values"
        if not texts:
            raise QueryError(where, f"operator '{operator}' needs values")
        if operator in ("inDateRange", "onTheDate"):
            value: object = texts[0] if len(texts) == 1 and not _is_absolute(texts[0]) \
                else texts
            self.bounds.append(resolve_range(value, self.zone, self.now, where))
            return
        if len(texts) != 1:
            raise QueryError(where, f"operator '{operator}' takes one value")
        text = texts[0]
        if not _is_absolute(text):
            start, end = resolve_range(text, self.zone, self.now, where)
            self.bounds.append({"beforeDate": (None, start), "afterOrOnDate": (start, None),
                                "beforeOrOnDate": (None, end),
                                "afterDate": (end, None)}[operator])
        elif operator in ("beforeDate", "afterOrOnDate"):  # only where the range starts
            start = range_start(text, self.zone, where)
            self.bounds.append((None, start) if operator == "beforeDate" else (start, None))
        else:  # only where it ends
            end = range_end(text, self.zone, where)
            self.bounds.append((None, end) if operator == "beforeOrOnDate" else (end, None))


def normalized_filters(items: object) -> object:
    """Filters as Cube's gateway echoes them: ``member`` (not ``dimension``), values as
    strings."""
    if not isinstance(items, list):
        return items
    shown_items: list[object] = []
    for item in items:
        if isinstance(item, dict) and ("and" in item or "or" in item):
            shown_items.append({k: normalized_filters(v) for k, v in item.items()})
        elif isinstance(item, dict):
            leaf = {("member" if k == "dimension" else k): v for k, v in item.items()}
            if isinstance(leaf.get("values"), list):
                leaf["values"] = [_text(v) for v in leaf["values"]]
            shown_items.append(leaf)
        else:
            shown_items.append(item)
    return shown_items


def _likes(member: Member, operator: str, texts: list[str], field: str) -> FilterNode:
    """Cube's ``<col> [NOT] ILIKE '%' || v || '%'`` per value, OR-ed (AND-ed when negated,
    then ``OR <col> IS NULL``)."""
    if member.kind != "dimension" or member.type != "string":
        raise QueryError(field, f"operator '{operator}' applies to string dimensions; "
                         f"'{member.key}' is not one")
    pattern, negated = LIKES[operator]
    if operator in ("contains", "notContains"):
        texts = [_WILDCARDS.sub(r"\\\1", text) for text in texts]
    op = "not_ilike" if negated else "ilike"
    leaves = tuple(Filter(member.query_name, op, (pattern.format(text),)) for text in texts)
    node: FilterNode = leaves[0] if len(leaves) == 1 else \
        FilterGroup("and" if negated else "or", leaves)
    if negated and member.nullable:
        return FilterGroup("or", (node, Filter(member.query_name, "is_null")))
    return node


def _is_absolute(text: str) -> bool:
    return text[:4].isdigit() and text[4:5] == "-"


def _text(value: object) -> str:
    """A value as Cube passes it on: its string form (``true`` as ``true``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _number(text: str, field: str) -> int | float:
    """A value compared with a measure, read as a number."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        raise QueryError(field, f"a measure is compared with a number, got "
                         f"'{shown(text)}'") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise QueryError(field, f"a measure is compared with a finite number, got "
                         f"'{shown(text)}'")
    return number
