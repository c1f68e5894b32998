"""The catalog BI tools and drivers read: ``pg_catalog`` and ``information_schema`` over the
model's tables, answered by an in-memory SQLite database.

Each connection gets its own small database (a few hundred rows: one table per source, one
column per dimension, time column, measure and metric, descriptions as comments). A catalog
statement is parsed by sqlglot as PostgreSQL, rewritten where SQLite differs (schema-qualified
functions, ``::regclass``, ``= ANY(...)``, arrays), rendered for SQLite and run there with the
functions introspection uses (``format_type``, ``pg_table_is_visible``, ``col_description``,
``version()``, ...). What SQLite cannot evaluate (array expressions in a column) is answered as
NULL in that column; a statement that still fails is answered with its columns and no rows,
so a tool's introspection goes on (logged at debug level).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp

from server.sql.catalog.rewrite import (
    check_constants,
    rewrite,
    without_column,
    without_failing,
)
from server.sql.catalog.tables import (
    COLUMN_TYPES,
    DATABASE_OID,
    FIRST_TABLE_OID,
    INFORMATION_SCHEMA,
    NAMESPACES,
    OWNER_OID,
    PG_CATALOG,
    SETTINGS,
    SYSTEM_OIDS,
    VERSION,
    ZERO_KINDS,
)
from server.sql.schema import Schema
from server.sql.translate import output_name
from server.sql.types import (
    BOOL,
    FLOAT8,
    INT8,
    SQL_NAMES,
    TEXT,
    TYPES,
    PgType,
    format_type,
)

logger = logging.getLogger(__name__)

_MISSING_FUNCTION = re.compile(r"no such function: (\w+)$")
_MISSING_COLUMN = re.compile(r"no such column: (?:(\w+)\.)?(\w+)$")


class CatalogTimeout(Exception):
    """A catalog statement ran longer than its statement timeout."""


class UnknownFunction(Exception):
    """A statement calls a function that is neither PostgreSQL's catalog's nor SQL's."""


class UnknownColumn(Exception):
    """A statement without a table names a column."""


@dataclass(frozen=True, slots=True)
class CatalogAnswer:
    names: tuple[str, ...]
    types: tuple[PgType, ...]
    rows: list[tuple[Any, ...]]


def _array_text(values: Iterable[object]) -> str:
    return "{" + ",".join("NULL" if v is None else str(v) for v in values) + "}"


class _ArrayAgg:
    def __init__(self) -> None:
        self.values: list[object] = []

    def step(self, value: object) -> None:
        self.values.append(value)

    def finalize(self) -> str:
        return _array_text(self.values)


class Catalog:
    """The catalog of one connection: the tables of ``schema`` for ``user`` in ``database``."""

    def __init__(self, schema: Schema, user: str, database: str,
                 setting: Callable[[str], str | None]) -> None:
        self.user = user
        self.database = database
        self.setting = setting
        self.db = sqlite3.connect(":memory:", check_same_thread=False)
        self.db.execute("ATTACH ':memory:' AS pg_catalog")
        self.db.execute("ATTACH ':memory:' AS information_schema")
        for prefix, tables in (("pg_catalog", PG_CATALOG),
                               ("information_schema", INFORMATION_SCHEMA)):
            for name, columns in tables.items():
                cols = ", ".join(f'"{c}" {kind}' for c, kind in columns)
                self.db.execute(f'CREATE TABLE {prefix}."{name}" ({cols})')
        self.descriptions: dict[tuple[int, int], str] = {}
        self._register()
        self._fill(schema)

    # -- contents -------------------------------------------------------------------------

    def _insert(self, table: str, rows: Sequence[dict[str, Any]]) -> None:
        prefix = "pg_catalog" if table in PG_CATALOG else "information_schema"
        columns = dict(PG_CATALOG.get(table) or INFORMATION_SCHEMA[table])
        for row in rows:
            full = {c: row.get(c, 0 if kind in ZERO_KINDS else None)
                    for c, kind in columns.items()}
            marks = ", ".join("?" * len(full))
            self.db.execute(f'INSERT INTO {prefix}."{table}" VALUES ({marks})',
                            list(full.values()))

    def _fill(self, schema: Schema) -> None:
        self._insert("pg_namespace", [{"oid": oid, "nspname": name, "nspowner": OWNER_OID}
                                      for name, oid in NAMESPACES.items()])
        self._insert("pg_database", [{"oid": DATABASE_OID, "datname": self.database,
                                      "datdba": OWNER_OID, "encoding": 6, "datcollate": "C",
                                      "datctype": "C", "datallowconn": 1,
                                      "datconnlimit": -1}])
        self._insert("pg_roles", [{"oid": OWNER_OID, "rolname": self.user, "rolinherit": 1,
                                   "rolcanlogin": 1, "rolconnlimit": -1}])
        self._insert("pg_user", [{"usename": self.user, "usesysid": OWNER_OID}])
        self._insert("pg_am", [{"oid": 2, "amname": "heap", "amtype": "t"}])
        self._insert("pg_tablespace", [{"oid": 1663, "spcname": "pg_default",
                                        "spcowner": OWNER_OID}])
        self._insert("pg_type", [{
            "oid": t.oid, "typname": t.name, "typnamespace": NAMESPACES["pg_catalog"],
            "typowner": OWNER_OID, "typlen": t.size, "typbyval": int(0 < t.size <= 8),
            "typtype": "b", "typcategory": t.category, "typisdefined": 1, "typdelim": ",",
            "typalign": "d" if t.size == 8 else "i", "typstorage": "p" if t.size > 0 else "x",
            "typinput": f"{t.name}in", "typoutput": f"{t.name}out",
            "typreceive": f"{t.name}recv", "typsend": f"{t.name}send", "typtypmod": -1}
            for t in TYPES])
        self._insert("schemata", [
            {"catalog_name": self.database, "schema_name": name, "schema_owner": self.user}
            for name in NAMESPACES])
        for index, table in enumerate(schema.values()):
            oid = FIRST_TABLE_OID + index
            self._insert("pg_class", [{
                "oid": oid, "relname": table.name, "relnamespace": NAMESPACES["public"],
                "relowner": OWNER_OID, "relam": 2, "relfilenode": oid, "relpersistence": "p",
                "relkind": "r", "relnatts": len(table.columns), "relispopulated": 1,
                "relreplident": "d", "reltuples": -1}])
            self._insert("pg_tables", [{"schemaname": "public", "tablename": table.name,
                                        "tableowner": self.user}])
            self._insert("tables", [{"table_catalog": self.database, "table_schema": "public",
                                     "table_name": table.name, "table_type": "BASE TABLE",
                                     "is_insertable_into": "NO", "is_typed": "NO"}])
            if table.description:
                self._describe(oid, 0, table.description)
            for number, column in enumerate(table.columns, start=1):
                self._insert("pg_attribute", [{
                    "attrelid": oid, "attname": column.name, "atttypid": column.type.oid,
                    "attlen": column.type.size, "attnum": number, "attndims": 0,
                    "atttypmod": -1, "attcacheoff": -1, "attstattarget": -1,
                    "attbyval": int(0 < column.type.size <= 8), "attstorage": "p",
                    "attalign": "i", "attislocal": 1, "attidentity": "", "attgenerated": ""}])
                self._insert("columns", [{
                    "table_catalog": self.database, "table_schema": "public",
                    "table_name": table.name, "column_name": column.name,
                    "ordinal_position": number, "is_nullable": "YES",
                    "data_type": format_type(column.type.oid), "udt_catalog": self.database,
                    "udt_schema": "pg_catalog", "udt_name": column.type.name,
                    "is_identity": "NO", "is_generated": "NEVER", "is_updatable": "NO"}])
                if column.description:
                    self._describe(oid, number, f"{column.kind}: {column.description}")
                else:
                    self._describe(oid, number, column.kind)
        self._insert("pg_settings", [
            {"name": name, "setting": self.setting(name) or "", "vartype": "string",
             "source": "default"} for name in SETTINGS])

    def _describe(self, oid: int, number: int, text: str) -> None:
        self.descriptions[(oid, number)] = text
        self._insert("pg_description", [{"objoid": oid, "classoid": SYSTEM_OIDS["pg_class"],
                                         "objsubid": number,
                                         "description": text}])

    # -- functions ------------------------------------------------------------------------

    def _register(self) -> None:
        db = self.db
        constant: dict[str, object] = {
            "pg_table_is_visible": 1, "pg_type_is_visible": 1, "pg_function_is_visible": 1,
            "pg_get_expr": None, "pg_get_constraintdef": None, "pg_get_indexdef": None,
            "pg_get_triggerdef": None, "pg_get_viewdef": None, "pg_get_partkeydef": None,
            "pg_get_ruledef": None, "pg_get_functiondef": None, "pg_get_serial_sequence": None,
            "pg_get_statisticsobjdef_columns": None, "pg_get_function_result": None,
            "pg_get_function_arguments": None, "pg_get_function_identity_arguments": None,
            "shobj_description": None, "pg_encoding_to_char": "UTF8",
            "has_table_privilege": 1, "has_schema_privilege": 1,
            "has_database_privilege": 1, "has_column_privilege": 1,
            "has_any_column_privilege": 1, "has_function_privilege": 1,
            "pg_is_in_recovery": 0, "pg_total_relation_size": 0, "pg_relation_size": 0,
            "pg_table_size": 0, "pg_indexes_size": 0, "pg_size_pretty": "0 bytes",
            "txid_current": 1, "pg_backend_pid": 0, "version": VERSION,
            "pg_postmaster_start_time": None, "inet_server_addr": None,
            "inet_server_port": None, "pg_get_userbyid": self.user, "to_regclass": None,
            "pg_relation_is_publishable": 0, "pg_get_keywords": None, "unnest": None,
            "pg_char_to_encoding": 6, "pg_tablespace_location": None,
        }
        for name, value in constant.items():
            db.create_function(name, -1, lambda *args, value=value: value,
                               deterministic=True)
        db.create_function("format_type", -1, lambda oid=None, *rest:
                           format_type(int(oid)) if oid is not None else None)
        db.create_function("obj_description", -1, lambda oid=None, *rest:
                           self.descriptions.get((int(oid), 0)) if oid is not None else None)
        db.create_function("col_description", 2, lambda oid, number:
                           self.descriptions.get((int(oid), int(number)))
                           if oid is not None and number is not None else None)
        db.create_function("regexp", 2, lambda pattern, value:
                           value is not None and pattern is not None
                           and re.search(pattern, str(value)) is not None)
        db.create_function("array_to_string", -1, lambda value=None, sep=",", *rest:
                           value.strip("{}").replace(",", sep) if isinstance(value, str)
                           else None)
        db.create_function("current_setting", -1, lambda name=None, *rest:
                           self.setting(str(name)))
        db.create_function("set_config", 3, lambda name, value, local: value)
        db.create_function("json_build_object", -1, lambda *args: json.dumps(
            dict(zip(args[::2], args[1::2], strict=False))))
        db.create_function("quote_ident", 1, lambda value: value)
        db.create_function("to_regtype", 1, lambda name: SQL_NAMES[name].oid
                           if isinstance(name, str) and name in SQL_NAMES else None)
        db.create_function("now", 0, lambda: dt.datetime.now(dt.UTC).isoformat(" "))
        db.create_aggregate("array_agg", 1, _ArrayAgg)  # type: ignore[arg-type]

    # -- statements -----------------------------------------------------------------------

    def _types(self, statement: exp.Expression, rows: list[tuple[Any, ...]],
               count: int) -> tuple[PgType, ...]:
        items = statement.expressions if isinstance(statement, exp.Select) else []
        types: list[PgType] = []
        for index in range(count):
            node = items[index] if index < len(items) else None
            node = node.this if isinstance(node, exp.Alias) else node
            typed: PgType | None = None
            if isinstance(node, exp.Column):
                typed = COLUMN_TYPES.get(node.name)
            elif isinstance(node, exp.Predicate | exp.Not | exp.Connector | exp.Boolean):
                typed = BOOL
            elif isinstance(node, exp.Count):
                typed = INT8
            if typed is None:  # from every value: a CASE may mix kinds
                seen = {type(row[index]) for row in rows if row[index] is not None}
                typed = INT8 if seen == {int} else FLOAT8 if seen and seen <= {int, float} \
                    else TEXT
            types.append(typed)
        return tuple(types)

    def _run(self, text: str, lenient: bool) -> sqlite3.Cursor:
        """Run ``text``; in a statement over catalog tables (``lenient``), a function of
        PostgreSQL this catalog lacks answers NULL (it is registered as such on first use);
        elsewhere only catalog-named ones do (``pg_...``, ``..._description``), and any other
        unknown function is an error."""
        for _ in range(8):
            try:
                return self.db.execute(text)
            except sqlite3.OperationalError as exc:
                missing = _MISSING_FUNCTION.match(str(exc))
                if missing is None:
                    raise
                name = missing.group(1).lower()
                if not lenient and not name.startswith(("pg_", "has_", "to_reg")) and \
                        not name.endswith(("_description", "_is_visible")):
                    raise UnknownFunction(f"function {name}() does not exist") from None
                self.db.create_function(name, -1, lambda *args: None)
        return self.db.execute(text)

    def answer(self, statement: exp.Expression, values: Sequence[object] = (),
               timeout: float = 10.0) -> CatalogAnswer:
        """A catalog statement's answer (its column names, types and rows), within
        ``timeout`` seconds (a recursive or cross-joined statement is stopped there)."""
        deadline = time.monotonic() + timeout
        self.db.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        try:
            return self._answer(statement, values)
        finally:
            self.db.set_progress_handler(None, 0)

    def _answer(self, statement: exp.Expression, values: Sequence[object]) -> CatalogAnswer:
        rewritten = rewrite(statement, values, self.user, self.database)
        select = rewritten if isinstance(rewritten, exp.Select) else None
        if select is not None and not select.args.get("from_") and \
                not select.args.get("from"):
            column = next(select.find_all(exp.Column), None)
            if column is not None:
                raise UnknownColumn(f'column "{column.name}" does not exist (name a table: '
                                    "SELECT ... FROM events)")
            check_constants(statement)
        attempts = [rewritten, without_failing(rewritten)]
        while attempts:
            attempt = attempts.pop(0)
            try:
                cursor = self._run(attempt.sql("sqlite", identify=True),
                                   lenient=any(True for _ in attempt.find_all(exp.Table)))
            except UnknownFunction:
                raise
            except (sqlite3.Error, sqlglot.errors.SqlglotError, ValueError,
                    OverflowError) as exc:
                if str(exc) == "interrupted":
                    raise CatalogTimeout("canceling statement due to statement timeout (a "
                                         "catalog statement)") from None
                missing = _MISSING_COLUMN.match(str(exc))
                if missing is not None and len(attempts) < 16 and select is not None:
                    # a column of a newer PostgreSQL than this catalog has: NULL
                    attempts.insert(0, without_column(attempt, missing.group(1) or "",
                                                       missing.group(2)))
                    continue
                logger.debug("catalog statement not evaluated (%s): %s", exc,
                             statement.sql("postgres")[:500])
                continue
            names = tuple(d[0] for d in cursor.description or ())
            if select is not None and len(select.expressions) == len(names) and not any(
                    isinstance(e, exp.Star) for e in select.expressions):
                names = tuple(output_name(e) for e in statement.expressions)
            rows = cursor.fetchall()
            types = self._types(attempt, rows, len(names))
            return CatalogAnswer(names, types, rows)
        names = tuple(output_name(e) for e in select.expressions) if select else ()
        return CatalogAnswer(names, (TEXT,) * len(names), [])
