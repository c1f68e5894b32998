"""Rollups in the warehouse: their DDL (tables and materialized views), the race-free backfill,
the catalog of their states, and the migration ``semantic apply`` carries out."""
