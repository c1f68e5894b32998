"""Data in: rows checked against column types, staged loads, source tables from files, and the
demo data set."""
