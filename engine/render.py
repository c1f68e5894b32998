"""The boundary where SQL expressions become ClickHouse text."""

from __future__ import annotations

from sqlglot import exp
from sqlglot.dialects.clickhouse import ClickHouse

# Every word sqlglot's ClickHouse tokenizer treats as a keyword: an identifier spelt like one
# (a dimension called `order`, a catalog column called `table`) is quoted when rendered.
_KEYWORDS = frozenset(word for key in ClickHouse.Tokenizer.KEYWORDS for word in key.split())


def _quote_keywords(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Identifier) and not node.quoted and node.name.upper() in _KEYWORDS:
        return exp.Identifier(this=node.name, quoted=True)
    return node


def render(expression: exp.Expression) -> str:
    """Render an expression as ClickHouse SQL, quoting identifiers that are keywords.

    >>> render(exp.select(exp.column("order")).from_("t"))
    'SELECT "order" FROM t'
    """
    return expression.transform(_quote_keywords, copy=True).sql(dialect="clickhouse")
