"""The catalog BI tools and drivers read: ``pg_catalog`` and ``information_schema`` over the
model's tables, answered by an in-memory SQLite database per connection
(``server.sql.catalog.database``), from the tables of ``tables`` and the statements as
``rewrite`` makes them."""

from server.sql.catalog.database import (
    Catalog,
    CatalogAnswer,
    CatalogTimeout,
    UnknownColumn,
    UnknownFunction,
)
from server.sql.catalog.rewrite import InvalidValue, is_catalog
from server.sql.catalog.tables import SETTINGS, SYSTEM_OIDS, VERSION

__all__ = ["SETTINGS", "SYSTEM_OIDS", "VERSION", "Catalog", "CatalogAnswer", "CatalogTimeout",
           "InvalidValue", "UnknownColumn", "UnknownFunction", "is_catalog"]
