"""Catalog statements as the in-memory SQLite catalog runs them: which statements are the
catalog's, PostgreSQL's forms rewritten for SQLite, second chances for columns a newer client
names, and the constant expressions PostgreSQL refuses."""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from server.sql.catalog.tables import SYSTEM_OIDS, VERSION
from server.sql.translate import output_name


class InvalidValue(Exception):
    """A constant expression PostgreSQL refuses (SQLite would answer NULL or 0)."""

    def __init__(self, sqlstate: str, message: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


_NUMERIC_CASTS = ("int", "integer", "bigint", "smallint", "int2", "int4", "int8", "numeric",
                  "decimal", "real", "double precision", "float4", "float8")


def check_constants(statement: exp.Expression) -> None:
    """Refuse what PostgreSQL refuses in a statement without tables, where SQLite answers
    otherwise: a division by a zero constant, a text constant cast to a number that is
    not one."""
    for division in statement.find_all(exp.Div, exp.Mod):
        divisor = division.expression
        if isinstance(divisor, exp.Literal) and not divisor.is_string and \
                float(divisor.this) == 0:
            raise InvalidValue("22012", "division by zero")
    for cast in statement.find_all(exp.Cast):
        target = cast.to.sql("postgres").lower()
        if isinstance(cast.this, exp.Literal) and cast.this.is_string and \
                target in _NUMERIC_CASTS:
            try:
                float(cast.this.this)
            except ValueError:
                raise InvalidValue("22P02", f'invalid input syntax for type {target}: '
                                   f'"{cast.this.this[:100]}"') from None


def _reads_model(statement: exp.Expression, name: str, ctes: set[str]) -> bool:
    """Whether the CTE ``name`` reads a table outside the catalog (then the statement is
    over the model, wrapped)."""
    body = next((c.this for c in statement.find_all(exp.CTE) if c.alias == name), None)
    return body is not None and any(
        t.db not in ("pg_catalog", "information_schema") and not t.name.startswith("pg_")
        and not (t.name in ctes and not t.db and t.name != name)
        for t in body.find_all(exp.Table))


def is_catalog(statement: exp.Expression) -> bool:
    """Whether a statement reads only the catalog (or no table at all: ``SELECT version()``)."""
    tables = list(statement.find_all(exp.Table))
    ctes = {cte.alias for cte in statement.find_all(exp.CTE)}
    return all(t.db in ("pg_catalog", "information_schema") or t.name.startswith("pg_")
               or (t.name in ctes and not t.db) or (not t.name and t.this is not None)
               for t in tables) and not any(
        t.name in ctes and not t.db and _reads_model(statement, t.name, ctes) for t in tables)


def rewrite(statement: exp.Expression, values: Sequence[object], user: str,
            database: str) -> exp.Expression:
    """A PostgreSQL catalog statement as SQLite runs it: schema-qualified functions, casts to
    ``regclass``/``regtype``, ``= ANY(...)``, arrays, parameters and the session's names
    rewritten."""

    def literal(value: object) -> exp.Expression:
        if value is None:
            return exp.null()
        if isinstance(value, bool):
            return exp.Literal.number(int(value))
        if isinstance(value, int | float):
            return exp.Literal.number(value)
        return exp.Literal.string(str(value))

    def parameter(node: exp.Expression) -> exp.Expression:
        index = int(node.name) - 1 if node.name.isdigit() else -1
        return literal(values[index]) if 0 <= index < len(values) else exp.null()

    def listed(node: exp.Expression) -> list[exp.Expression] | None:
        """The values of ``ANY(...)``'s argument, when it is a list."""
        inner = node.this.this if isinstance(node.this, exp.Paren) else node.this
        if isinstance(inner, exp.Parameter | exp.Placeholder):
            inner = parameter(inner)
        if isinstance(inner, exp.Array):
            return list(inner.expressions)
        if isinstance(inner, exp.CurrentSchemas):
            return [exp.Literal.string("pg_catalog"), exp.Literal.string("public")]
        if isinstance(inner, exp.Literal) and inner.is_string and \
                inner.this.startswith("{"):
            return [exp.Literal.string(v.strip('"')) for v in
                    inner.this.strip("{}").split(",") if v]
        if isinstance(inner, exp.Cast):
            return listed(exp.Any(this=inner.this))
        return None

    def transform(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Dot) and isinstance(node.this, exp.Identifier | exp.Column) \
                and node.this.name == "pg_catalog" and isinstance(node.expression, exp.Func):
            function: exp.Expr = node.expression
            return function
        if isinstance(node, exp.Parameter | exp.Placeholder):
            return parameter(node)
        if isinstance(node, exp.CurrentUser | exp.SessionUser):
            return exp.Literal.string(user)
        if isinstance(node, exp.CurrentVersion):
            return exp.Literal.string(VERSION)
        if isinstance(node, exp.CurrentSchema):
            return exp.Literal.string("public")
        if isinstance(node, exp.CurrentDatabase | exp.CurrentCatalog):
            return exp.Literal.string(database)
        if isinstance(node, exp.ByteString):
            return exp.Literal.string(str(node.this))
        if isinstance(node, exp.EQ | exp.NEQ) and isinstance(node.expression,
                                                            exp.Any | exp.All):
            items = listed(node.expression)
            if items is None:
                return exp.false()
            if not items:
                return exp.false() if isinstance(node, exp.EQ) else exp.true()
            found = exp.In(this=node.this, expressions=items)
            return found if isinstance(node, exp.EQ) else exp.Not(this=found)
        if isinstance(node, exp.Cast):
            to = node.args.get("to")
            kind = _cast_kind(to)
            if kind == "regclass" and isinstance(node.this, exp.Literal) and \
                    node.this.is_string and not node.this.this.isdigit():
                name = node.this.this.rsplit(".", 1)[-1].strip('"')
                if name in SYSTEM_OIDS:
                    return exp.Literal.number(SYSTEM_OIDS[name])
                return exp.select("oid").from_("pg_catalog.pg_class").where(
                    exp.column("relname").eq(exp.Literal.string(name))).subquery()
            if kind == "regtype":
                formatted: exp.Expr = exp.func("format_type", node.this, exp.null())
                return formatted
            if kind in ("text", "name", "varchar", "char") and not _is_sqlite_cast(to):
                return exp.cast(node.this, "TEXT")
            if kind in ("int", "int2", "int4", "int8", "integer", "bigint", "smallint") \
                    and not _is_sqlite_cast(to):
                return exp.cast(node.this, "INTEGER")
            if kind in ("bool", "boolean") or not isinstance(to, exp.DataType) or \
                    to.this == exp.DType.USERDEFINED:
                inner: exp.Expression = node.this
                return inner
        if isinstance(node, exp.Array | exp.Explode | exp.ArrayContains):
            return exp.null()
        return node

    # a replaced node's children are not visited: again until nothing changes
    rewritten = statement.copy()
    for _ in range(6):
        before = rewritten.sql("postgres")
        changed = rewritten.transform(transform)
        assert isinstance(changed, exp.Expression)
        rewritten = changed
        if rewritten.sql("postgres") == before:
            break
    return rewritten


def _is_sqlite_cast(to: exp.Expression | None) -> bool:
    """Whether a cast is already to one of SQLite's own types (as rewritten)."""
    return isinstance(to, exp.DataType) and to.this in (exp.DType.TEXT, exp.DType.INT) and \
        to.args.get("kind") is None


def _cast_kind(to: exp.Expression | None) -> str:
    """The unqualified, lowercase name of a cast's type (``pg_catalog.regtype``: regtype)."""
    if to is None:
        return ""
    kind = to.args.get("kind") if isinstance(to, exp.DataType) else None
    text = (to.name if isinstance(to, exp.ObjectIdentifier) else
            kind.name if isinstance(kind, exp.Dot) else to.sql("postgres"))
    return text.lower().rsplit(".", 1)[-1]


def without_column(statement: exp.Expression, table: str, name: str) -> exp.Expression:
    """The statement with a column the catalog lacks read as NULL."""

    def drop(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and node.name == name and (
                not table or node.table == table):
            return exp.null()
        return node

    changed = statement.transform(drop)
    assert isinstance(changed, exp.Expression)
    return changed


def without_failing(statement: exp.Expression) -> exp.Expression:
    """The statement with every select item that is not a plain column or literal as NULL:
    a second chance for introspection whose columns SQLite cannot compute."""
    if not isinstance(statement, exp.Select):
        return statement
    simple = statement.copy()
    items = []
    for node in simple.expressions:
        inner = node.this if isinstance(node, exp.Alias) else node
        if isinstance(inner, exp.Column | exp.Literal | exp.Star | exp.Boolean):
            items.append(node)
        else:
            items.append(exp.alias_(exp.null(), output_name(node), quoted=True))
    simple.set("expressions", items)
    return simple
