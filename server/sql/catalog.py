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

from server.sql.schema import Schema
from server.sql.translate import output_name
from server.sql.types import (
    BOOL,
    FLOAT8,
    INT8,
    NAME,
    OID,
    SQL_NAMES,
    TEXT,
    TYPES,
    PgType,
    format_type,
)

logger = logging.getLogger(__name__)

_MISSING_FUNCTION = re.compile(r"no such function: (\w+)$")
_MISSING_COLUMN = re.compile(r"no such column: (?:(\w+)\.)?(\w+)$")

SERVER_VERSION = "14.11"
VERSION = (f"PostgreSQL {SERVER_VERSION} (semantic: a semantic layer over ClickHouse) on "
           "x86_64-pc-linux-gnu, 64-bit")
NAMESPACES = {"pg_catalog": 11, "public": 2200, "information_schema": 13000}
FIRST_TABLE_OID = 16384
#: the catalog tables introspection names by ``'pg_catalog.pg_class'::regclass``
SYSTEM_OIDS = {"pg_class": 1259, "pg_type": 1247, "pg_attribute": 1249, "pg_proc": 1255,
               "pg_namespace": 2615, "pg_constraint": 2606, "pg_database": 1262,
               "pg_description": 2609, "pg_index": 2610, "pg_am": 2601, "pg_trigger": 2620,
               "pg_rewrite": 2618, "pg_attrdef": 2604, "pg_collation": 3456}
DATABASE_OID = 16383
OWNER_OID = 10

_I, _T, _B, _F = "INTEGER", "TEXT", "BOOLEAN", "REAL"

#: the catalog tables, their columns and SQLite types (booleans are 0/1, answered as t/f)
PG_CATALOG: dict[str, tuple[tuple[str, str], ...]] = {
    "pg_namespace": (("oid", _I), ("nspname", _T), ("nspowner", _I), ("nspacl", _T)),
    "pg_class": (
        ("oid", _I), ("relname", _T), ("relnamespace", _I), ("reltype", _I), ("reloftype", _I),
        ("relowner", _I), ("relam", _I), ("relfilenode", _I), ("reltablespace", _I),
        ("relpages", _I), ("reltuples", _F), ("relallvisible", _I), ("reltoastrelid", _I),
        ("relhasindex", _B), ("relisshared", _B), ("relpersistence", _T), ("relkind", _T),
        ("relnatts", _I), ("relchecks", _I), ("relhasrules", _B), ("relhastriggers", _B),
        ("relhassubclass", _B), ("relrowsecurity", _B), ("relforcerowsecurity", _B),
        ("relispopulated", _B), ("relreplident", _T), ("relispartition", _B),
        ("relrewrite", _I), ("relfrozenxid", _I), ("relminmxid", _I), ("relacl", _T),
        ("reloptions", _T), ("relpartbound", _T), ("relhasoids", _B)),
    "pg_attribute": (
        ("attrelid", _I), ("attname", _T), ("atttypid", _I), ("attstattarget", _I),
        ("attlen", _I), ("attnum", _I), ("attndims", _I), ("attcacheoff", _I),
        ("atttypmod", _I), ("attbyval", _B), ("attstorage", _T), ("attalign", _T),
        ("attnotnull", _B), ("atthasdef", _B), ("atthasmissing", _B), ("attidentity", _T),
        ("attgenerated", _T), ("attisdropped", _B), ("attislocal", _B), ("attinhcount", _I),
        ("attcollation", _I), ("attacl", _T), ("attoptions", _T), ("attfdwoptions", _T),
        ("attcompression", _T)),
    "pg_type": (
        ("oid", _I), ("typname", _T), ("typnamespace", _I), ("typowner", _I), ("typlen", _I),
        ("typbyval", _B), ("typtype", _T), ("typcategory", _T), ("typispreferred", _B),
        ("typisdefined", _B), ("typdelim", _T), ("typrelid", _I), ("typelem", _I),
        ("typarray", _I), ("typinput", _T), ("typoutput", _T), ("typreceive", _T),
        ("typsend", _T), ("typbasetype", _I), ("typtypmod", _I), ("typndims", _I),
        ("typcollation", _I), ("typnotnull", _B), ("typdefault", _T), ("typalign", _T),
        ("typstorage", _T), ("typdefaultbin", _T), ("typacl", _T)),
    "pg_description": (("objoid", _I), ("classoid", _I), ("objsubid", _I),
                       ("description", _T)),
    "pg_database": (("oid", _I), ("datname", _T), ("datdba", _I), ("encoding", _I),
                    ("datcollate", _T), ("datctype", _T), ("datistemplate", _B),
                    ("datallowconn", _B), ("datconnlimit", _I), ("dattablespace", _I),
                    ("datacl", _T)),
    "pg_roles": (("oid", _I), ("rolname", _T), ("rolsuper", _B), ("rolinherit", _B),
                 ("rolcreaterole", _B), ("rolcreatedb", _B), ("rolcanlogin", _B),
                 ("rolreplication", _B), ("rolconnlimit", _I), ("rolvaliduntil", _T),
                 ("rolbypassrls", _B), ("rolconfig", _T)),
    "pg_user": (("usename", _T), ("usesysid", _I), ("usecreatedb", _B), ("usesuper", _B),
                ("userepl", _B), ("usebypassrls", _B), ("valuntil", _T), ("useconfig", _T)),
    "pg_am": (("oid", _I), ("amname", _T), ("amhandler", _T), ("amtype", _T)),
    "pg_tables": (("schemaname", _T), ("tablename", _T), ("tableowner", _T),
                  ("tablespace", _T), ("hasindexes", _B), ("hasrules", _B),
                  ("hastriggers", _B), ("rowsecurity", _B)),
    "pg_settings": (("name", _T), ("setting", _T), ("unit", _T), ("category", _T),
                    ("short_desc", _T), ("vartype", _T), ("source", _T)),
    "pg_index": (("indexrelid", _I), ("indrelid", _I), ("indnatts", _I), ("indnkeyatts", _I),
                 ("indisunique", _B), ("indisprimary", _B), ("indisexclusion", _B),
                 ("indimmediate", _B), ("indisclustered", _B), ("indisvalid", _B),
                 ("indisready", _B), ("indislive", _B), ("indisreplident", _B),
                 ("indkey", _T), ("indcollation", _T), ("indclass", _T), ("indoption", _T),
                 ("indexprs", _T), ("indpred", _T), ("indnullsnotdistinct", _B)),
    "pg_constraint": (("oid", _I), ("conname", _T), ("connamespace", _I), ("contype", _T),
                      ("condeferrable", _B), ("condeferred", _B), ("convalidated", _B),
                      ("conrelid", _I), ("contypid", _I), ("conindid", _I),
                      ("conparentid", _I), ("confrelid", _I), ("confupdtype", _T),
                      ("confdeltype", _T), ("confmatchtype", _T), ("conislocal", _B),
                      ("coninhcount", _I), ("connoinherit", _B), ("conkey", _T),
                      ("confkey", _T), ("conbin", _T)),
    "pg_attrdef": (("oid", _I), ("adrelid", _I), ("adnum", _I), ("adbin", _T)),
    "pg_collation": (("oid", _I), ("collname", _T), ("collnamespace", _I)),
    "pg_inherits": (("inhrelid", _I), ("inhparent", _I), ("inhseqno", _I),
                    ("inhdetachpending", _B)),
    "pg_enum": (("oid", _I), ("enumtypid", _I), ("enumsortorder", _F), ("enumlabel", _T)),
    "pg_proc": (("oid", _I), ("proname", _T), ("pronamespace", _I), ("prorettype", _I),
                ("prokind", _T), ("proargtypes", _T)),
    "pg_views": (("schemaname", _T), ("viewname", _T), ("viewowner", _T),
                 ("definition", _T)),
    "pg_matviews": (("schemaname", _T), ("matviewname", _T), ("matviewowner", _T),
                    ("definition", _T)),
    "pg_sequence": (("seqrelid", _I), ("seqtypid", _I), ("seqstart", _I),
                    ("seqincrement", _I), ("seqmax", _I), ("seqmin", _I), ("seqcache", _I),
                    ("seqcycle", _B)),
    "pg_extension": (("oid", _I), ("extname", _T), ("extowner", _I), ("extnamespace", _I),
                     ("extversion", _T)),
    "pg_policy": (("oid", _I), ("polname", _T), ("polrelid", _I), ("polcmd", _T),
                  ("polpermissive", _B), ("polroles", _T), ("polqual", _T),
                  ("polwithcheck", _T)),
    "pg_trigger": (("oid", _I), ("tgrelid", _I), ("tgname", _T), ("tgisinternal", _B),
                   ("tgenabled", _T), ("tgparentid", _I)),
    "pg_rewrite": (("oid", _I), ("rulename", _T), ("ev_class", _I), ("ev_type", _T)),
    "pg_statistic_ext": (("oid", _I), ("stxrelid", _I), ("stxname", _T),
                         ("stxnamespace", _I), ("stxkeys", _T), ("stxkind", _T),
                         ("stxstattarget", _I)),
    "pg_publication": (("oid", _I), ("pubname", _T), ("puballtables", _B)),
    "pg_publication_rel": (("oid", _I), ("prpubid", _I), ("prrelid", _I)),
    "pg_publication_namespace": (("oid", _I), ("pnpubid", _I), ("pnnspid", _I)),
    "pg_foreign_table": (("ftrelid", _I), ("ftserver", _I), ("ftoptions", _T)),
    "pg_foreign_server": (("oid", _I), ("srvname", _T)),
    "pg_partitioned_table": (("partrelid", _I), ("partstrat", _T), ("partnatts", _I)),
    "pg_tablespace": (("oid", _I), ("spcname", _T), ("spcowner", _I)),
    "pg_depend": (("classid", _I), ("objid", _I), ("objsubid", _I), ("refclassid", _I),
                  ("refobjid", _I), ("refobjsubid", _I), ("deptype", _T)),
    "pg_opclass": (("oid", _I), ("opcname", _T), ("opcmethod", _I)),
    "pg_event_trigger": (("oid", _I), ("evtname", _T)),
    "pg_stat_activity": (("datid", _I), ("datname", _T), ("pid", _I), ("usename", _T),
                         ("application_name", _T), ("state", _T), ("query", _T)),
    "pg_range": (("rngtypid", _I), ("rngsubtype", _I)),
    "pg_shdescription": (("objoid", _I), ("classoid", _I), ("description", _T)),
    "pg_locks": (("locktype", _T), ("pid", _I), ("mode", _T), ("granted", _B)),
}

INFORMATION_SCHEMA: dict[str, tuple[tuple[str, str], ...]] = {
    "schemata": (("catalog_name", _T), ("schema_name", _T), ("schema_owner", _T)),
    "tables": (("table_catalog", _T), ("table_schema", _T), ("table_name", _T),
               ("table_type", _T), ("is_insertable_into", _T), ("is_typed", _T)),
    "columns": (("table_catalog", _T), ("table_schema", _T), ("table_name", _T),
                ("column_name", _T), ("ordinal_position", _I), ("column_default", _T),
                ("is_nullable", _T), ("data_type", _T), ("character_maximum_length", _I),
                ("numeric_precision", _I), ("numeric_scale", _I), ("datetime_precision", _I),
                ("udt_catalog", _T), ("udt_schema", _T), ("udt_name", _T),
                ("is_identity", _T), ("is_generated", _T), ("is_updatable", _T)),
    "views": (("table_catalog", _T), ("table_schema", _T), ("table_name", _T),
              ("view_definition", _T)),
    "table_constraints": (("constraint_catalog", _T), ("constraint_schema", _T),
                          ("constraint_name", _T), ("table_schema", _T), ("table_name", _T),
                          ("constraint_type", _T)),
    "key_column_usage": (("constraint_schema", _T), ("constraint_name", _T),
                         ("table_schema", _T), ("table_name", _T), ("column_name", _T),
                         ("ordinal_position", _I)),
    "referential_constraints": (("constraint_schema", _T), ("constraint_name", _T),
                                ("unique_constraint_schema", _T),
                                ("unique_constraint_name", _T)),
    "routines": (("routine_schema", _T), ("routine_name", _T), ("routine_type", _T),
                 ("data_type", _T)),
    "character_sets": (("character_set_name", _T),),
}

#: column name -> the type it is answered as (booleans as t/f, oids as oid)
_COLUMN_TYPES: dict[str, PgType] = {}
for _table in (*PG_CATALOG.values(), *INFORMATION_SCHEMA.values()):
    for _name, _kind in _table:
        _COLUMN_TYPES.setdefault(_name, {_B: BOOL, _F: FLOAT8}.get(
            _kind, OID if _name == "oid" or _name.endswith(("oid", "relid", "typid"))
            and _kind == _I else (INT8 if _kind == _I else TEXT)))
_COLUMN_TYPES.update(relname=NAME, nspname=NAME, attname=NAME, typname=NAME, datname=NAME,
                     rolname=NAME, usename=NAME)


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


def is_catalog(statement: exp.Expression) -> bool:
    """Whether a statement reads only the catalog (or no table at all: ``SELECT version()``)."""
    tables = list(statement.find_all(exp.Table))
    ctes = {cte.alias for cte in statement.find_all(exp.CTE)}
    return all(t.db in ("pg_catalog", "information_schema") or t.name.startswith("pg_")
               or (t.name in ctes and not t.db) or (not t.name and t.this is not None)
               for t in tables) and not any(
        t.name in ctes and not t.db and _reads_model(statement, t.name, ctes) for t in tables)


class InvalidValue(Exception):
    """A constant expression PostgreSQL refuses (SQLite would answer NULL or 0)."""

    def __init__(self, sqlstate: str, message: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


_NUMERIC_CASTS = ("int", "integer", "bigint", "smallint", "int2", "int4", "int8", "numeric",
                  "decimal", "real", "double precision", "float4", "float8")


def _check_constants(statement: exp.Expression) -> None:
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
            full = {c: row.get(c, 0 if kind in (_I, _B) else None)
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

    def _rewrite(self, statement: exp.Expression, values: Sequence[object]) -> exp.Expression:
        user, database = self.user, self.database

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

    def _types(self, statement: exp.Expression, rows: list[tuple[Any, ...]],
               count: int) -> tuple[PgType, ...]:
        items = statement.expressions if isinstance(statement, exp.Select) else []
        types: list[PgType] = []
        for index in range(count):
            node = items[index] if index < len(items) else None
            node = node.this if isinstance(node, exp.Alias) else node
            typed: PgType | None = None
            if isinstance(node, exp.Column):
                typed = _COLUMN_TYPES.get(node.name)
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
        rewritten = self._rewrite(statement, values)
        select = rewritten if isinstance(rewritten, exp.Select) else None
        if select is not None and not select.args.get("from_") and \
                not select.args.get("from"):
            column = next(select.find_all(exp.Column), None)
            if column is not None:
                raise UnknownColumn(f'column "{column.name}" does not exist (name a table: '
                                    "SELECT ... FROM events)")
            _check_constants(statement)
        attempts = [rewritten, _without_failing(rewritten)]
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
                    attempts.insert(0, _without_column(attempt, missing.group(1) or "",
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


def _without_column(statement: exp.Expression, table: str, name: str) -> exp.Expression:
    """The statement with a column the catalog lacks read as NULL."""

    def drop(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and node.name == name and (
                not table or node.table == table):
            return exp.null()
        return node

    changed = statement.transform(drop)
    assert isinstance(changed, exp.Expression)
    return changed


def _without_failing(statement: exp.Expression) -> exp.Expression:
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


#: settings ``SHOW`` and ``current_setting`` answer (a session's ``SET`` changes them)
SETTINGS: dict[str, str] = {
    "server_version": SERVER_VERSION, "server_version_num": "140011",
    "server_encoding": "UTF8", "client_encoding": "UTF8", "datestyle": "ISO, MDY",
    "timezone": "UTC", "intervalstyle": "postgres", "integer_datetimes": "on",
    "standard_conforming_strings": "on", "is_superuser": "off",
    "transaction_isolation": "read committed", "transaction_read_only": "on",
    "default_transaction_read_only": "on", "search_path": '"$user", public',
    "max_identifier_length": "63", "lc_collate": "C", "lc_ctype": "C",
    "application_name": "", "extra_float_digits": "1", "statement_timeout": "0",
    "max_index_keys": "32",
}
