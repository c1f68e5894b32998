"""The catalog's tables (``pg_catalog`` and ``information_schema``, with the columns clients
read and their types), the fixed oids, and the settings ``SHOW`` answers."""

from __future__ import annotations

from server.sql.types import BOOL, FLOAT8, INT8, NAME, OID, TEXT, PgType

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

#: the SQLite types whose missing values are 0 (integers, booleans), not NULL
ZERO_KINDS = (_I, _B)

#: column name -> the type it is answered as (booleans as t/f, oids as oid)
COLUMN_TYPES: dict[str, PgType] = {}
for _table in (*PG_CATALOG.values(), *INFORMATION_SCHEMA.values()):
    for _name, _kind in _table:
        COLUMN_TYPES.setdefault(_name, {_B: BOOL, _F: FLOAT8}.get(
            _kind, OID if _name == "oid" or _name.endswith(("oid", "relid", "typid"))
            and _kind == _I else (INT8 if _kind == _I else TEXT)))
COLUMN_TYPES.update(relname=NAME, nspname=NAME, attname=NAME, typname=NAME, datname=NAME,
                     rolname=NAME, usename=NAME)


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
